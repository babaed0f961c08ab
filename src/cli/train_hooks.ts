/**
 * What the CLI adds to a training run: a progress bar with the losses, rate and speed,
 * warnings and validation results printed as they come, and Ctrl-C / SIGTERM turned into an
 * abort that finishes the step and saves a checkpoint.
 */
import type { CocoStats } from '../eval/coco.js';
import type { StepRecord, TrainHook, TrainResult, Trainer } from '../train/trainer.js';
import { ProgressBar } from './progress.js';
import { InputError } from '../core/errors.js';
import { MemoryBudgetError, gib } from '../train/memory.js';

/** Progress bar, warnings and validation lines on stderr (`quiet`: warnings only). */
export function progressHook(quiet: boolean): TrainHook {
  let bar: ProgressBar | undefined;
  let start = 0;
  let images = 0;
  return {
    beforeTrain(t: Trainer) {
      start = performance.now();
      if (!quiet) bar = new ProgressBar(t.planned, 'train', process.stderr, t.iteration);
    },
    afterStep(t: Trainer, rec: StepRecord) {
      images += t.opts.batchSize;
      bar?.setTotal(t.planned);
      const ips = images / ((performance.now() - start) / 1000);
      bar?.update(t.iteration, `loss ${rec.loss.toFixed(3)} (cls ${rec.loss_cls.toFixed(3)} box ${rec.loss_box.toFixed(3)}) lr ${rec.lr.toPrecision(2)} ${ips.toFixed(1)} img/s`);
    },
    afterValidation(t: Trainer, stats: CocoStats) {
      const line = `validation at iteration ${t.iteration}: AP ${stats.AP.toFixed(3)}, AP50 ${stats.AP50.toFixed(3)}`;
      if (bar) bar.log(line);
      else if (!quiet) process.stderr.write(line + '\n');
    },
    onWarning(_t: Trainer, message: string) {
      if (bar) bar.log(`warning: ${message}`);
      else process.stderr.write(`warning: ${message}\n`);
    },
    afterTrain() {
      bar?.done();
    },
    onError() {
      bar?.done();
    },
  };
}

/**
 * An AbortSignal raised by the first Ctrl-C or SIGTERM (the run finishes its step and saves a
 * checkpoint); a second Ctrl-C exits at once with code 130. `dispose` removes the handlers.
 */
export function interruptSignal(quiet: boolean): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals): void => {
    if (controller.signal.aborted) {
      if (name === 'SIGINT') process.exit(130);
      return;
    }
    controller.abort();
    if (!quiet) process.stderr.write(`\n${name === 'SIGINT' ? 'interrupt' : name}: finishing this step and saving a checkpoint (Ctrl-C again to abort)\n`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    dispose() {
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
    },
  };
}

/**
 * Runs `trainer` with Ctrl-C / SIGTERM turned into a graceful stop (see {@link interruptSignal}).
 * When an error ends the run, the error says which step was checkpointed and how to continue.
 */
export async function runInterruptible(trainer: Trainer, quiet: boolean, resumeHint?: string): Promise<TrainResult> {
  const interrupt = interruptSignal(quiet);
  try {
    return await trainer.run({ signal: interrupt.signal });
  } catch (err) {
    if (err instanceof MemoryBudgetError) {
      throw new InputError(
        `a training step on ${err.shape[0]} image(s) of ${err.shape[1]}x${err.shape[2]} needs about ${gib(err.needBytes)} GiB, over the --max-memory budget of ${gib(err.budgetBytes)} GiB: lower --batch, --min-size/--max-size (or --scale-jitter), or raise --max-memory`,
      );
    }
    const saved = trainer.lastCheckpoint;
    const note = saved ? ` The last completed step (${saved.iteration}) is checkpointed in ${saved.dir}${resumeHint ? `; continue with: ${resumeHint}` : ''}.` : ' No checkpoint was saved.';
    const what = (err instanceof Error ? err.message : String(err)).replace(/\.$/, '');
    if (err instanceof InputError) throw new InputError(`${what}.${note}`);
    throw new TrainingFailedError(`training stopped at step ${trainer.iteration} by an error: ${what}.${note}`, err);
  } finally {
    interrupt.dispose();
  }
}

/** An unexpected error ended a run; the message says what was saved. main.ts prints it in one line (exit 1). */
export class TrainingFailedError extends Error {
  override name = 'TrainingFailedError';
  constructor(
    message: string,
    override readonly cause: unknown,
  ) {
    super(message);
  }
}
