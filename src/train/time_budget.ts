import { median } from '../core/stats.js';

/**
 * Training for a wall-clock budget instead of a fixed number of iterations. The paper's
 * schedule is defined by the run's length (warmup = length / 10, x0.1 at 2/3 and 8/9), so the
 * length is re-fitted after every step from the measured step time: iterations done plus the
 * remaining seconds over the step time. The warmup and the x0.1 points follow the fitted length
 * from the second step on (the first one compiles the graph: a length fitted to it would be far
 * too short, with no warmup left) until the first x0.1 point is reached; from there they are
 * frozen (a drop in the rate must never be undone by a later estimate) and only the end keeps
 * moving, so the run stops at the budget however the machine's speed drifts.
 */

export class TimeBudget {
  private readonly durations: number[] = [];

  /**
   * @param seconds training time to spend, as the log's `time` counts it (graph compiles,
   *   validations and checkpoints included)
   * @param cap most iterations to run whatever the time (Infinity for none)
   * @param window how many recent steps the step time is the median of
   */
  constructor(
    readonly seconds: number,
    readonly cap = Infinity,
    private readonly window = 25,
  ) {
    if (!(seconds > 0)) throw new RangeError(`time budget must be > 0 seconds, got ${seconds}`);
  }

  /** Records one step's duration in seconds. */
  record(seconds: number): void {
    this.durations.push(seconds);
  }

  /** Whether a step other than the first (compiling) one has been timed. */
  steady(): boolean {
    return this.durations.length > 1;
  }

  /**
   * Seconds per step: the median of recent steps, leaving out a process's first step (it
   * compiles the graph) once there are others; undefined before any step.
   */
  stepSeconds(): number | undefined {
    if (this.durations.length === 0) return undefined;
    const steady = this.durations.length > 1 ? this.durations.slice(1) : this.durations;
    return median(steady.slice(-this.window));
  }

  /**
   * Length of the run that fits the budget, after `done` iterations and `elapsed` seconds:
   * at least `done` (never shorter than what ran), at most the cap.
   */
  fit(done: number, elapsed: number): number {
    // Until a steady step is timed, the only one known includes the compile: it says nothing
    // about how many steps fit, so take one more while any time is left.
    if (!this.steady()) return Math.min(this.cap, elapsed < this.seconds ? done + 1 : Math.max(done, 1));
    const step = this.stepSeconds()!;
    const more = Math.max(0, Math.round((this.seconds - elapsed) / Math.max(step, 1e-9)));
    return Math.min(this.cap, done + more);
  }
}
