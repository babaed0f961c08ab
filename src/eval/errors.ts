import { InputError } from '../core/errors.js';

/**
 * Thrown when evaluation inputs are malformed (bad JSON shape, results on unknown images...):
 * an `InputError`, so the CLI reports it with exit code 2 and library callers can tell bad
 * input from bugs.
 */
export class EvalInputError extends InputError {
  override name = 'EvalInputError';
}
