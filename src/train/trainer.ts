/**
 * The training loop: SGD with momentum and weight decay on the focal loss + box loss, the
 * paper's warmup and step schedule, a JSONL log, atomic resumable checkpoints, validation with
 * COCO AP (keeping the best weights), a clean stop on Ctrl-C and on a non-finite loss.
 */
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Executable, SessionCache } from '../engine/runtime.js';
import { Graph, type Tensor } from '../engine/graph.js';
import { grad } from '../engine/autodiff.js';
import { lossTargetInputs, retinanetLoss } from '../detection/losses.js';
import type { CocoStats } from '../eval/coco.js';
import type { RetinaNet } from '../model/model.js';
import { evaluateModel } from '../model/evaluate.js';
import { buildRetinaNet } from '../model/retinanet.js';
import { ProgressBar } from '../cli/progress.js';
import { BatchSampler, type PreparedBatch } from './batches.js';
import { BatchPrefetcher } from './prefetch.js';
import { type TrainState, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { writeAtomic } from '../core/atomic.js';
import { lossCurveSvg } from './plot.js';
import { type LrSchedule, learningRate, paperSchedule } from './schedule.js';
import { Sgd } from './sgd.js';
import { TimeBudget } from './time_budget.js';
import type { SampleSource } from '../data/source.js';

export interface TrainOptions {
  iters: number;
  batchSize: number;
  /** Base learning rate (paper: 0.01 for 16 images per batch). */
  lr: number;
  momentum: number;
  weightDecay: number;
  /** Linear warmup length; default min(500, iters / 10). */
  warmupIters?: number;
  /** Iterations where the rate drops x0.1; default 2/3 and 8/9 of `iters`. */
  steps?: number[];
  /** Clip the global gradient norm to this value. */
  clipGradNorm?: number;
  /** Horizontal flip augmentation. */
  flip: boolean;
  /** Scale jitter: short sides to choose from per batch. */
  minSizes?: number[];
  /** Training batches are padded to multiples of this (bounds compiled graph shapes). */
  padTo: number;
  seed: number;
  threads?: number;
  outDir: string;
  /** Save a checkpoint every N iterations (and at the end). */
  checkpointEvery: number;
  /** Validate every N iterations (and at the end) when a validation source is given. */
  valEvery: number;
  /** Print nothing but errors. */
  quiet?: boolean;
  /** Prepare batches in a worker thread (default true). */
  prefetchWorker?: boolean;
  /**
   * Pause after this many iterations as Ctrl-C would (checkpoint saved, run resumable); the
   * schedule still spans `iters`. For time-boxed sessions and tests.
   */
  stopAt?: number;
  /**
   * Train for this many seconds (as the log's `time` counts them) instead of a fixed length:
   * `iters` becomes a cap, and the run's length, with its warmup and x0.1 points, is fitted to
   * the measured step time (src/train/time_budget.ts).
   */
  timeBudget?: number;
}

/** One step of the JSONL log. */
export interface StepRecord {
  iter: number;
  loss: number;
  loss_cls: number;
  loss_box: number;
  lr: number;
  num_fg: number;
  /** Seconds since the run started (resumed runs continue the count). */
  time: number;
}

export interface TrainResult {
  iterations: number;
  stopped: 'done' | 'interrupted' | 'nan';
  message?: string;
  best?: { ap: number; iteration: number };
  lastVal?: CocoStats;
  records: StepRecord[];
}

export class NonFiniteLossError extends Error {
  override name = 'NonFiniteLossError';
}

export interface TrainExecutable {
  exe: Executable;
  names: string[];
  release(): Promise<void>;
}

/**
 * Compiles the training graph (losses + gradients of every trainable parameter) for one batch
 * shape. Frozen parameters are baked in as constants: ONNX Runtime then folds the frozen
 * BatchNorms into the frozen convs and picks its constant-weight conv kernels for them. A change
 * to a frozen value after compiling therefore needs a new graph (the trainer never makes one).
 */
export function buildTrainGraph(model: RetinaNet, n: number, h: number, w: number, numAnchors: number, threads?: number): Promise<TrainExecutable> {
  const cfg = model.config;
  const g = new Graph();
  const images = g.input('images', 'float32', [n, 3, h, w]);
  const out = buildRetinaNet(g, model.store, images, cfg);
  const targets = lossTargetInputs(g, n, numAnchors, cfg.loss.box);
  const loss = retinanetLoss(out.clsLogits, out.boxDeltas, targets, {
    classification: cfg.loss.classification,
    alpha: cfg.loss.alpha,
    gamma: cfg.loss.gamma,
    box: cfg.loss.box,
  });
  const names = model.store.trainableNames();
  const params: Tensor[] = names.map((nm) => g.inputs.get(nm)!);
  const grads = grad(loss.total, params);
  return Executable.create(g, [loss.classification, loss.box, ...grads], { threads, bake: model.store.frozenValues() }).then((exe) => ({ exe, names, release: () => exe.release() }));
}

/** Feeds of the training graph for one batch: parameters, images and loss targets. */
export function trainFeeds(model: RetinaNet, batch: PreparedBatch): Map<string, Float32Array | BigInt64Array> {
  const feeds = new Map<string, Float32Array | BigInt64Array>(model.store.values);
  feeds.set('images', batch.images);
  feeds.set('labels', batch.targets.labels);
  feeds.set('valid', batch.targets.valid);
  feeds.set('foreground', batch.targets.foreground);
  feeds.set('boxTargets', batch.targets.boxTargets);
  feeds.set('normalizer', batch.targets.normalizer);
  feeds.set('anchors', batch.anchors);
  return feeds;
}

/**
 * L2 norm of all gradients together. Four partial sums: one running sum is bound by the latency
 * of a float64 add (~2x slower on 13M values).
 */
export function globalNorm(grads: readonly Float32Array[]): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  for (const g of grads) {
    const n4 = g.length - (g.length % 4);
    let i = 0;
    for (; i < n4; i += 4) {
      const a = g[i]!;
      const b = g[i + 1]!;
      const c = g[i + 2]!;
      const d = g[i + 3]!;
      s0 += a * a;
      s1 += b * b;
      s2 += c * c;
      s3 += d * d;
    }
    for (; i < g.length; i++) s0 += g[i]! * g[i]!;
  }
  return Math.sqrt(s0 + s1 + s2 + s3);
}

/** The per-step records of a `log.jsonl` text (validation records left out). */
export function parseStepLog(text: string): StepRecord[] {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Partial<StepRecord> & { type?: string })
    .filter((r) => r.type !== 'val' && r.loss_cls !== undefined) as StepRecord[];
}

/** Trains `model` in place; writes log, checkpoints and final weights under `opts.outDir`. */
export class Trainer {
  private readonly sgd: Sgd;
  private schedule: LrSchedule;
  /** Iterations this run will do: `iters`, or what fits the time budget. */
  private planned: number;
  /** The length the schedule's warmup and x0.1 points are placed for. */
  private scheduleIters: number;
  /** Time budget runs: the schedule no longer follows `planned` (its first x0.1 point was reached). */
  private scheduleFrozen = false;
  private readonly sessions = new SessionCache<TrainExecutable>(4);
  private iteration = 0;
  private elapsedBefore = 0;
  private best: { ap: number; iteration: number } | undefined;
  private interrupted = false;
  private readonly logFile: string;
  private readonly checkpointDir: string;

  constructor(
    readonly model: RetinaNet,
    readonly train: SampleSource,
    readonly val: SampleSource | undefined,
    readonly opts: TrainOptions,
    /** Extra fields saved in the checkpoint's options (e.g. the CLI flags, for --resume). */
    private readonly extraState: Record<string, unknown> = {},
  ) {
    this.sgd = new Sgd({ momentum: opts.momentum, weightDecay: opts.weightDecay });
    this.planned = opts.iters;
    this.scheduleIters = opts.iters;
    this.schedule = this.scheduleFor(opts.iters);
    this.logFile = path.join(opts.outDir, 'log.jsonl');
    this.checkpointDir = path.join(opts.outDir, 'checkpoint');
  }

  private scheduleFor(iters: number): LrSchedule {
    const base = paperSchedule(this.opts.lr, iters, this.opts.warmupIters);
    return this.opts.steps ? { ...base, steps: this.opts.steps } : base;
  }

  /** Restores parameters, momentum and progress from `outDir/checkpoint`; the log is cut back to it. */
  async resume(): Promise<TrainState> {
    const { state, params, momentum } = await loadCheckpoint(this.checkpointDir);
    for (const [name, v] of params) {
      const cur = this.model.store.values.get(name);
      if (!cur || cur.length !== v.length) throw new Error(`checkpoint tensor ${name} does not fit the model`);
      cur.set(v);
    }
    for (const [name, v] of momentum) this.sgd.momentum.set(name, Float32Array.from(v));
    this.iteration = state.iteration;
    this.elapsedBefore = state.elapsed;
    this.best = state.best;
    if (state.plan) {
      this.planned = state.plan.planned;
      this.scheduleIters = state.plan.scheduleIters;
      this.scheduleFrozen = state.plan.scheduleFrozen;
      this.schedule = this.scheduleFor(this.scheduleIters);
    }
    if (existsSync(this.logFile)) {
      const lines = (await readFile(this.logFile, 'utf8')).split('\n').filter((l) => l.trim() && (JSON.parse(l) as { iter: number }).iter <= state.iteration);
      await writeFile(this.logFile, lines.map((l) => l + '\n').join(''));
    }
    return state;
  }

  private state(elapsed: number): Omit<TrainState, 'weightsFile' | 'optimizerFile' | 'version'> {
    return {
      iteration: this.iteration,
      config: this.model.config,
      classNames: [...this.train.classNames],
      categoryIds: [...this.train.categoryIds],
      options: { ...this.opts, ...this.extraState },
      best: this.best,
      elapsed,
      plan: { planned: this.planned, scheduleIters: this.scheduleIters, scheduleFrozen: this.scheduleFrozen },
    };
  }

  private async checkpoint(elapsed: number): Promise<void> {
    await saveCheckpoint(this.checkpointDir, this.state(elapsed), this.model.store.values, this.model.parameterShapes(), this.sgd.momentum);
  }

  private async validate(elapsed: number): Promise<CocoStats | undefined> {
    if (!this.val) return undefined;
    const { result } = await evaluateModel(this.model, this.val, { threads: this.opts.threads, feedParams: true });
    const stats = result.stats;
    await appendFile(this.logFile, JSON.stringify({ iter: this.iteration, type: 'val', ...stats, time: elapsed }) + '\n');
    if (!this.best || stats.AP > this.best.ap) {
      this.best = { ap: stats.AP, iteration: this.iteration };
      await this.model.saveWeights(path.join(this.opts.outDir, 'best.safetensors'), {
        classNames: this.train.classNames,
        categoryIds: this.train.categoryIds,
        iteration: this.iteration,
        AP: stats.AP,
      });
    }
    return stats;
  }

  /**
   * After each step of a time-budget run: the run's length re-fitted to the time left, and the
   * schedule with it until its first x0.1 point.
   */
  private refit(budget: TimeBudget, elapsed: number): void {
    this.planned = budget.fit(this.iteration, elapsed);
    if (this.scheduleFrozen || !budget.steady()) return;
    this.scheduleIters = this.planned;
    this.schedule = this.scheduleFor(this.planned);
    if (this.iteration >= (this.schedule.steps[0] ?? Infinity)) this.scheduleFrozen = true;
  }

  /** Runs until the planned iterations (or the time budget) are done, Ctrl-C, or a non-finite loss. */
  async run(): Promise<TrainResult> {
    const o = this.opts;
    await mkdir(o.outDir, { recursive: true });
    const sampler = new BatchSampler(this.train, o.batchSize, o.seed);
    const batchOpts = { config: this.model.config, flip: o.flip, minSizes: o.minSizes, padTo: o.padTo, seed: o.seed, boxLoss: this.model.config.loss.box };
    const prefetcher = new BatchPrefetcher(this.train, batchOpts, o.prefetchWorker ?? true);
    const prepare = (iter: number): Promise<PreparedBatch> => prefetcher.prepare(iter, sampler.batchAt(iter));
    const onSigint = (): void => {
      this.interrupted = true;
      if (!o.quiet) process.stderr.write('\ninterrupt: finishing this step and saving a checkpoint (Ctrl-C again to abort)\n');
      process.once('SIGINT', () => process.exit(130));
    };
    process.once('SIGINT', onSigint);
    const start = performance.now();
    const elapsed = (): number => this.elapsedBefore + (performance.now() - start) / 1000;
    const budget = o.timeBudget !== undefined ? new TimeBudget(o.timeBudget, o.iters) : undefined;
    // A budget run prepares batches up to its cap: its planned length may still grow.
    const lastPrepared = (): number => (budget ? o.iters : this.planned);
    const bar = o.quiet ? undefined : new ProgressBar(this.planned, 'train', process.stderr, this.iteration);
    const records: StepRecord[] = [];
    let lastVal: CocoStats | undefined;
    let lastGoodCheckpoint = this.iteration;
    let next = this.iteration < this.planned ? prepare(this.iteration) : undefined;
    let imagesSeen = 0;
    let lastTime = this.elapsedBefore;
    try {
      while (this.iteration < this.planned && next) {
        const batch = await next;
        // Decode and assign targets for the next step while this one runs.
        next = this.iteration + 1 < lastPrepared() ? prepare(this.iteration + 1) : undefined;
        next?.catch(() => undefined);
        for (const w of batch.warnings) if (!o.quiet) process.stderr.write(`warning: ${w}\n`);
        const [n, , h, w] = batch.shape;
        const numAnchors = batch.anchors.length / 4;
        const train = await this.sessions.get(`${n}x${h}x${w}`, () => buildTrainGraph(this.model, n, h, w, numAnchors, o.threads));
        const out = (await train.exe.run(trainFeeds(this.model, batch))) as Float32Array[];
        const lossCls = out[0]![0]!;
        const lossBox = out[1]![0]!;
        const lr = learningRate(this.schedule, this.iteration);
        if (!Number.isFinite(lossCls) || !Number.isFinite(lossBox)) {
          throw new NonFiniteLossError(
            `loss became ${Number.isNaN(lossCls + lossBox) ? 'NaN' : 'infinite'} at step ${this.iteration} (classification ${lossCls}, box ${lossBox}); ` +
              `weights were not updated; the last good checkpoint (step ${lastGoodCheckpoint}) is in ${this.checkpointDir}. Try a lower --lr or --clip-grad.`,
          );
        }
        const grads = out.slice(2);
        let gradScale = 1;
        if (o.clipGradNorm !== undefined) {
          const norm = globalNorm(grads);
          if (norm > o.clipGradNorm) gradScale = o.clipGradNorm / norm;
        }
        this.sgd.step(this.model.store.values, new Map(train.names.map((nm, i) => [nm, grads[i]!])), lr, gradScale);
        const numFg = batch.targets.numForeground.reduce((a, b) => a + b, 0);
        const rec: StepRecord = { iter: this.iteration, loss: lossCls + lossBox, loss_cls: lossCls, loss_box: lossBox, lr, num_fg: numFg, time: elapsed() };
        records.push(rec);
        await appendFile(this.logFile, JSON.stringify(rec) + '\n');
        this.iteration++;
        imagesSeen += n;
        if (budget) {
          budget.record(rec.time - lastTime);
          this.refit(budget, elapsed());
          bar?.setTotal(this.planned);
        }
        lastTime = rec.time;
        const ips = imagesSeen / ((performance.now() - start) / 1000);
        bar?.update(this.iteration, `loss ${rec.loss.toFixed(3)} (cls ${lossCls.toFixed(3)} box ${lossBox.toFixed(3)}) lr ${lr.toPrecision(2)} ${ips.toFixed(1)} img/s`);
        const finished = this.iteration >= this.planned;
        if (this.val && (this.iteration % o.valEvery === 0 || finished)) lastVal = await this.validate(elapsed());
        if (o.stopAt !== undefined && this.iteration >= o.stopAt && !finished) this.interrupted = true;
        if (this.iteration % o.checkpointEvery === 0 || finished || this.interrupted) {
          await this.checkpoint(elapsed());
          lastGoodCheckpoint = this.iteration;
        }
        if (this.interrupted) break;
      }
    } catch (err) {
      if (err instanceof NonFiniteLossError) {
        bar?.done();
        return { iterations: this.iteration, stopped: 'nan', message: err.message, best: this.best, lastVal, records };
      }
      throw err;
    } finally {
      process.removeListener('SIGINT', onSigint);
      await prefetcher.close();
    }
    bar?.done();
    await this.model.saveWeights(path.join(o.outDir, 'model.safetensors'), {
      classNames: this.train.classNames,
      categoryIds: this.train.categoryIds,
      iteration: this.iteration,
    });
    await this.writeLossPlot();
    await this.sessions.clear();
    return { iterations: this.iteration, stopped: this.interrupted ? 'interrupted' : 'done', best: this.best, lastVal, records };
  }

  /** Writes `loss.svg` from the whole log (including iterations before a resume). */
  async writeLossPlot(): Promise<void> {
    if (!existsSync(this.logFile)) return;
    const recs = parseStepLog(await readFile(this.logFile, 'utf8'));
    await writeAtomic(path.join(this.opts.outDir, 'loss.svg'), lossCurveSvg(recs));
  }
}
