import { InputError } from '../../core/errors.js';

/** One thing wrong with a dataset, located as precisely as the format allows. */
export interface DatasetProblem {
  /** The annotation (or image) file at fault. */
  file: string;
  /** 1-based line in `file`, when known (CSV, YOLO, VOC XML). */
  line?: number;
  message: string;
}

/** A dataset that cannot be read, or (in strict mode) has a problem. */
export class DatasetError extends InputError {
  override name = 'DatasetError';
  constructor(
    message: string,
    /** Raised by strict mode at a problem a lenient read would have skipped. */
    readonly strict = false,
  ) {
    super(message);
  }
}

/** `file:line: message`, the way compilers point at a spot. */
export function formatProblem(p: DatasetProblem): string {
  return `${p.file}${p.line !== undefined ? `:${p.line}` : ''}: ${p.message}`;
}

/**
 * Collects problems while a reader runs. In strict mode the first problem throws a
 * {@link DatasetError}; otherwise the reader skips the faulty item and the problem is kept as a warning.
 */
export class ProblemLog {
  readonly problems: DatasetProblem[] = [];
  constructor(readonly strict: boolean) {}

  /** Records a problem (throws in strict mode). */
  report(file: string, line: number | undefined, message: string): void {
    const p: DatasetProblem = line === undefined ? { file, message } : { file, line, message };
    if (this.strict) {
      // What a lenient read would have done ("; skipped", "; clipped") did not happen.
      const stopped = { ...p, message: `${p.message.replace(/; (?:[\w ]+ )?(?:skipped|clipped)$/, '')} (strict mode: stopped at the first problem)` };
      throw new DatasetError(formatProblem(stopped), true);
    }
    this.problems.push(p);
  }
}

/** Fails regardless of strictness: the dataset as a whole is unusable (missing annotation file, bad JSON...). */
export function fatal(file: string, message: string, line?: number): never {
  throw new DatasetError(formatProblem(line === undefined ? { file, message } : { file, line, message }));
}
