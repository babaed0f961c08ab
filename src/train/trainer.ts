/**
 * The trainer, in the shape of detectron2's `SimpleTrainer` + hooks: a step is
 * data -> loss -> gradients -> update (SGD with momentum and weight decay, optional clipping),
 * and everything else a run does — the learning-rate schedule and time budget, the NaN guard,
 * the JSONL log, validation with the best weights kept, checkpoints — is a hook (hooks.ts).
 * A run stops when its iterations are done, on an `AbortSignal` (after finishing the step and
 * saving a checkpoint), at `stopAt`, or on a non-finite loss. It prints nothing: progress and
 * warnings reach the caller through hooks.
 */
import path from 'node:path';
import { SessionCache } from '../engine/runtime.js';
import type { CocoStats } from '../eval/coco.js';
import type { SampleSource } from '../data/source.js';
import type { RetinaNet } from '../model/model.js';
import { InputError } from '../core/errors.js';
import { BatchSampler, type PreparedBatch } from './batches.js';
import { BatchPrefetcher } from './prefetch.js';
import { type TrainState, loadCheckpoint } from './checkpoint.js';
import type { StepRecord } from './log.js';
import { type TrainRecipe, paperRecipe } from './recipe.js';
import { Sgd } from './sgd.js';
import { type TrainExecutable, buildTrainGraph } from './train_graph.js';
import { type StepLosses, trainStep } from './step.js';
import { defaultHooks } from './hooks.js';
import { largestBatchShape, sessionBudget, trainSessionBytes } from './memory.js';

export type { StepRecord } from './log.js';
export type { StepLosses } from './step.js';

/** Options of a run: a recipe (missing fields from `paperRecipe`) plus what and how long to run. */
export interface TrainOptions extends Partial<TrainRecipe> {
  /** Iterations (default: 12 epochs of the training set). With `timeBudget`, a cap. */
  iters?: number;
  /** Seed of the batch order and augmentation (default 0). */
  seed?: number;
  /** ONNX Runtime threads (default: all cores). */
  threads?: number;
  /** Validation set: COCO AP is computed every `valEvery` iterations and at the end. */
  val?: SampleSource;
  /** Iterations between validations (default: one epoch). */
  valEvery?: number;
  /**
   * Output folder. When given: `log.jsonl`, `results.csv` / `results.png` / `results.svg`, `checkpoint/` (resumable),
   * `best.safetensors` (with a validation set) and `model.safetensors`, each with its sidecar.
   * Without it the run keeps everything in memory.
   */
  outDir?: string;
  /** Iterations between checkpoints (default 500; also at the end and when stopped). */
  checkpointEvery?: number;
  /** Prepare batches in a worker thread (default true). */
  prefetchWorker?: boolean;
  /**
   * Memory budget in bytes. Before the first step the run estimates the memory of its largest
   * possible step and refuses (MemoryBudgetError) when it cannot fit; compiled sessions are then
   * evicted by their estimated size to stay within it. Default: no budget (at most 4 sessions).
   */
  maxMemory?: number;
  /**
   * An image that cannot be read stops the run (an InputError) instead of being skipped with a
   * warning and replaced by the next readable one.
   */
  strict?: boolean;
  /**
   * Pause after this many iterations as an abort would (checkpoint saved, run resumable); the
   * schedule still spans `iters`. For time-boxed sessions and tests.
   */
  stopAt?: number;
  /**
   * Train for this many seconds (as the log's `time` counts them) instead of a fixed length:
   * `iters` becomes a cap, and the run's length, with its warmup and x0.1 points, is fitted to
   * the measured step time (src/train/time_budget.ts).
   */
  timeBudget?: number;
  /** Hooks of the caller (progress, printing), run after the log and before validation and checkpoints. */
  hooks?: TrainHook[];
  /** Extra fields saved in the checkpoint's options (the CLI saves its flags there, for --resume). */
  extraState?: Record<string, unknown>;
}

/** The options with every default filled in. */
export type ResolvedTrainOptions = TrainRecipe &
  Required<Pick<TrainOptions, 'iters' | 'seed' | 'checkpointEvery' | 'valEvery' | 'prefetchWorker'>> &
  Pick<TrainOptions, 'threads' | 'val' | 'outDir' | 'stopAt' | 'timeBudget' | 'hooks' | 'extraState' | 'strict' | 'maxMemory'>;

export interface TrainResult {
  iterations: number;
  stopped: 'done' | 'interrupted' | 'nan';
  /** Why a 'nan' run stopped. */
  message?: string;
  best?: { ap: number; iteration: number };
  lastVal?: CocoStats;
  /** The last checkpoint written (iteration and folder), when the run has an `outDir`. */
  lastCheckpoint?: { iteration: number; dir: string };
  /** The records of this run's steps (a resumed run: those after the resume). */
  records: StepRecord[];
}

/**
 * Something that happens around steps. Hooks run in the order of `Trainer.hooks`; every method
 * is optional. A hook that throws `NonFiniteLossError` from `afterLoss` ends the run as 'nan'
 * without updating the weights; any other error propagates.
 */
export interface TrainHook {
  /** Before the first step of this run (after any resume). */
  beforeTrain?(t: Trainer): Promise<void> | void;
  /** Before each step: sets what the step reads (`t.lr`). */
  beforeStep?(t: Trainer): void;
  /**
   * Before the training graph runs on a batch (after `beforeStep`): may rewrite the batch's
   * loss-target feeds in place, e.g. OHEM's choice of anchors through the `valid` weights
   * (src/train/ohem.ts). No standard hook has one, so a run without such a hook feeds the
   * batch exactly as prepared.
   */
  beforeForward?(t: Trainer, batch: PreparedBatch): Promise<void> | void;
  /** After the losses are known, before the update. */
  afterLoss?(t: Trainer, losses: StepLosses): void;
  /** After each step: the parameters are updated and `t.iteration` counts the step. */
  afterStep?(t: Trainer, record: StepRecord): Promise<void> | void;
  /** After a validation; `time` is the run's seconds when it started. */
  afterValidation?(t: Trainer, stats: CocoStats, time: number): Promise<void> | void;
  /** A warning about the data (a dropped box, a skipped image). */
  onWarning?(t: Trainer, message: string): void;
  /** After the last step, whatever ended the run. */
  afterTrain?(t: Trainer, result: TrainResult): Promise<void> | void;
  /**
   * When an error ends the run (a failed step, a worker that died, a failed write): the
   * checkpoint hook saves the last completed step here. The error is rethrown after the hooks.
   */
  onError?(t: Trainer, error: unknown): Promise<void> | void;
  /** Fields this hook adds to a checkpoint's state. */
  state?(t: Trainer): Partial<TrainState>;
  /** Restores this hook from a checkpoint's state (`Trainer.resume`). */
  loadState?(t: Trainer, state: TrainState): Promise<void> | void;
}

export class NonFiniteLossError extends Error {
  override name = 'NonFiniteLossError';
}

/** Trains `model` in place on `train`. */
export class Trainer {
  readonly opts: ResolvedTrainOptions;
  readonly sgd: Sgd;
  readonly hooks: TrainHook[];
  /** Steps completed (a resumed run starts at the checkpoint's). */
  iteration = 0;
  /** Steps this run will do: `iters`, or what fits the time budget (hooks may change it). */
  planned: number;
  /** Learning rate of the next step (set by the schedule hook). */
  lr: number;
  /** Best validation AP so far. */
  best: { ap: number; iteration: number } | undefined;
  lastVal: CocoStats | undefined;
  lastCheckpoint: { iteration: number; dir: string } | undefined;
  /** Data warnings seen in this run. */
  warnings = 0;
  private sessions = new SessionCache<TrainExecutable>(4);
  private elapsedBefore = 0;
  private startedAt = performance.now();
  private signal: AbortSignal | undefined;

  constructor(
    readonly model: RetinaNet,
    readonly train: SampleSource,
    options: TrainOptions = {},
  ) {
    const recipe = paperRecipe(options);
    const perEpoch = Math.max(1, Math.floor(train.length / recipe.batchSize));
    this.opts = {
      ...options,
      ...recipe,
      iters: options.iters ?? 12 * perEpoch,
      seed: options.seed ?? 0,
      checkpointEvery: options.checkpointEvery ?? 500,
      valEvery: options.valEvery ?? perEpoch,
      prefetchWorker: options.prefetchWorker ?? true,
    };
    this.sgd = new Sgd({ momentum: this.opts.momentum, weightDecay: this.opts.weightDecay });
    this.planned = this.opts.iters;
    this.lr = this.opts.lr;
    // The model now stands for the training set's classes: its saved weights say so.
    model.classNames = [...train.classNames];
    model.categoryIds = [...train.categoryIds];
    this.hooks = defaultHooks(this.opts);
  }

  /** Seconds of training so far, resumed runs included. */
  elapsed(): number {
    return this.elapsedBefore + (performance.now() - this.startedAt) / 1000;
  }

  /** Whether the planned iterations are done. */
  finished(): boolean {
    return this.iteration >= this.planned;
  }

  /** Whether the run should stop after this step although it has not finished (abort, `stopAt`). */
  stopRequested(): boolean {
    if (this.finished()) return false;
    return this.signal?.aborted === true || (this.opts.stopAt !== undefined && this.iteration >= this.opts.stopAt);
  }

  /** Reports a data warning to the hooks. */
  warn(message: string): void {
    this.warnings++;
    for (const h of this.hooks) h.onWarning?.(this, message);
  }

  /** Runs the hooks' `afterValidation` (called by the validation hook). */
  async emitValidation(stats: CocoStats, time: number): Promise<void> {
    this.lastVal = stats;
    for (const h of this.hooks) await h.afterValidation?.(this, stats, time);
  }

  /** Everything a checkpoint holds besides tensors. */
  checkpointState(): Omit<TrainState, 'weightsFile' | 'optimizerFile' | 'version'> {
    const { val: _val, hooks: _hooks, extraState, ...options } = this.opts;
    let state: Omit<TrainState, 'weightsFile' | 'optimizerFile' | 'version'> = {
      iteration: this.iteration,
      config: this.model.config,
      classNames: [...this.train.classNames],
      categoryIds: [...this.train.categoryIds],
      options: { ...options, ...extraState },
      best: this.best,
      elapsed: this.elapsed(),
    };
    for (const h of this.hooks) state = { ...state, ...h.state?.(this) };
    return state;
  }

  /**
   * Restores parameters, momentum and progress from a checkpoint folder (default
   * `outDir/checkpoint`), and each hook's state (the log is cut back to the checkpoint).
   */
  async resume(dir = this.opts.outDir !== undefined ? path.join(this.opts.outDir, 'checkpoint') : undefined): Promise<TrainState> {
    if (dir === undefined) throw new InputError('resume needs a checkpoint folder (or an outDir holding checkpoint/)');
    const { state, params, momentum } = await loadCheckpoint(dir);
    for (const [name, v] of params) {
      const cur = this.model.store.values.get(name);
      if (!cur || cur.length !== v.length) throw new InputError(`checkpoint tensor ${name} does not fit the model`);
      cur.set(v);
    }
    for (const [name, v] of momentum) this.sgd.momentum.set(name, Float32Array.from(v));
    this.iteration = state.iteration;
    this.elapsedBefore = state.elapsed;
    this.best = state.best;
    for (const h of this.hooks) await h.loadState?.(this, state);
    return state;
  }

  /** One step on a prepared batch: loss and gradients from the graph, then the SGD update. */
  private async step(batch: PreparedBatch): Promise<StepRecord> {
    const [n, , h, w] = batch.shape;
    const numAnchors = batch.anchors.length / 4;
    const bytes = this.opts.maxMemory !== undefined ? trainSessionBytes(this.model, n, h, w) : 0;
    const train = await this.sessions.get(`${n}x${h}x${w}`, () => buildTrainGraph(this.model, n, h, w, numAnchors, this.opts.threads), bytes);
    const losses = await trainStep(this.model, train, batch, this.sgd, this.lr, this.opts.clipGradNorm, (l) => {
      for (const hk of this.hooks) hk.afterLoss?.(this, l);
    });
    const numFg = batch.targets.numForeground.reduce((a, b) => a + b, 0);
    const record: StepRecord = {
      iter: this.iteration,
      loss: losses.classification + losses.box,
      loss_cls: losses.classification,
      loss_box: losses.box,
      lr: this.lr,
      num_fg: numFg,
      time: this.elapsed(),
      ...(batch.skipped > 0 ? { skipped: batch.skipped } : {}),
    };
    this.iteration++;
    return record;
  }

  /** Runs until the planned iterations are done, `signal` aborts, `stopAt`, or a non-finite loss. */
  async run(opts: { signal?: AbortSignal } = {}): Promise<TrainResult> {
    const o = this.opts;
    this.signal = opts.signal;
    this.startedAt = performance.now();
    const sampler = new BatchSampler(this.train, o.batchSize, o.seed);
    const batchOpts = { config: this.model.config, flip: o.flip, minSizes: o.minSizes, padTo: o.padTo, seed: o.seed, boxLoss: this.model.config.loss.box, strict: o.strict };
    const prefetcher = new BatchPrefetcher(this.train, batchOpts, o.prefetchWorker);
    const prepare = (iter: number): Promise<PreparedBatch> => prefetcher.prepare(iter, sampler.batchAt(iter));
    // A budget run prepares batches up to its cap: its planned length may still grow.
    const lastPrepared = (): number => (o.timeBudget !== undefined ? o.iters : this.planned);
    const records: StepRecord[] = [];
    let result: TrainResult;
    try {
      if (o.maxMemory !== undefined) {
        // Refused before any work when the largest step this recipe can make cannot fit.
        const budget = sessionBudget(this.model, o.maxMemory, largestBatchShape(this.model, o.batchSize, o.padTo, o.minSizes));
        await this.sessions.clear();
        this.sessions = new SessionCache<TrainExecutable>(8, budget);
      }
      for (const h of this.hooks) await h.beforeTrain?.(this);
      let next = this.iteration < this.planned ? prepare(this.iteration) : undefined;
      while (this.iteration < this.planned && next) {
        const batch = await next;
        // Decode and assign targets for the next step while this one runs.
        next = this.iteration + 1 < lastPrepared() ? prepare(this.iteration + 1) : undefined;
        next?.catch(() => undefined);
        for (const w of batch.warnings) this.warn(w);
        for (const h of this.hooks) h.beforeStep?.(this);
        for (const h of this.hooks) if (h.beforeForward) await h.beforeForward(this, batch);
        const record = await this.step(batch);
        records.push(record);
        for (const h of this.hooks) await h.afterStep?.(this, record);
        if (this.stopRequested()) break;
      }
      result = this.result(this.finished() ? 'done' : 'interrupted', records);
    } catch (err) {
      if (!(err instanceof NonFiniteLossError)) {
        await prefetcher.close();
        await this.sessions.clear();
        // Parameters, momentum and `iteration` always agree (a step updates them together),
        // so the last completed step can be saved whatever failed.
        for (const h of this.hooks) {
          try {
            await h.onError?.(this, err);
          } catch {
            // The run's own error is the one to report.
          }
        }
        throw err;
      }
      result = { ...this.result('nan', records), message: err.message };
    } finally {
      await prefetcher.close();
    }
    for (const h of this.hooks) await h.afterTrain?.(this, result);
    await this.sessions.clear();
    return result;
  }

  private result(stopped: TrainResult['stopped'], records: StepRecord[]): TrainResult {
    return { iterations: this.iteration, stopped, best: this.best, lastVal: this.lastVal, lastCheckpoint: this.lastCheckpoint, records };
  }
}
