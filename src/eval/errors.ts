/**
 * Thrown when evaluation inputs are malformed (bad JSON shape, results on unknown images...).
 * The CLI turns it into a `UserError`; library callers can catch it to tell bad input from bugs.
 */
export class EvalInputError extends Error {
  override name = 'EvalInputError';
}
