/**
 * The library's error types. Every error caused by what a caller passed in (a missing or
 * malformed file, a bad option, a dataset problem) is an `InputError`: its message says what is
 * wrong and what to do, and is meant to be shown as it is. Anything else thrown by the library
 * is a bug. The CLI maps `InputError` to exit code 2 without a stack trace (src/cli/main.ts).
 */
export class InputError extends Error {
  override name = 'InputError';
}
