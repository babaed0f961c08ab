/**
 * The shape every `retinanet` sub-command implements. Commands parse their own flags
 * (with `node:util` parseArgs) so each file holds one command and its help text.
 */
export interface Command {
  /** Sub-command name as typed by the user, e.g. `eval`. */
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Full help text shown by `retinanet <name> --help`. */
  help: string;
  /**
   * Help of a sub-command named in `argv` (e.g. `bench paper --help`), when it has its own;
   * undefined for the command's `help`.
   */
  helpFor?(argv: string[]): Promise<string | undefined>;
  /** Runs the command; resolves to the process exit code. */
  run(argv: string[]): Promise<number>;
}

import { InputError } from '../core/errors.js';

/**
 * An error in what the user typed (a bad flag, a missing file). Like every library
 * `InputError`, the CLI prints its message without a stack trace and exits with code 2.
 */
export class UserError extends InputError {
  override name = 'UserError';
}
