/**
 * Fine-tuning in a browser tab: the training step of the Node trainer (the same training graph,
 * target assignment, schedule and SGD: src/train/step.ts) run on onnxruntime-web, against images
 * and boxes held in memory or a dataset in the in-memory file tree. No files, no worker threads,
 * no hooks: each step's record goes to `onStep`, and the page saves the weights when it wants.
 */
import { SessionCache } from '../engine/runtime.js';
import type { SampleSource } from '../data/source.js';
import type { RetinaNet as Model } from '../model/model.js';
import { BatchSampler, type BatchOptions, prepareBatch } from '../train/batches.js';
import type { StepRecord } from '../train/log.js';
import { type TrainRecipe, paperRecipe } from '../train/recipe.js';
import { type LrSchedule, learningRate, paperSchedule } from '../train/schedule.js';
import { Sgd } from '../train/sgd.js';
import { trainStep } from '../train/step.js';
import { type TrainExecutable, buildTrainGraph } from '../train/train_graph.js';

/** A fine-tuning run: the paper's recipe (`paperRecipe`) with any field given, plus its length. */
export interface FineTuneOptions extends Partial<TrainRecipe> {
  /** Steps to run. */
  iters: number;
  /** Seed of the batch order and augmentation (default 0). */
  seed?: number;
}

/** Why a run ended. */
export type FineTuneStop = 'done' | 'aborted' | 'nan';

/** Runs training steps on a model in place (see `RetinaNet.fineTune` for the usual entry). */
export class BrowserTrainer {
  /** Steps done. */
  iteration = 0;
  /** One record per step, as the Node trainer logs them. */
  readonly records: StepRecord[] = [];
  readonly recipe: TrainRecipe;
  readonly iters: number;
  private readonly sgd: Sgd;
  private readonly schedule: LrSchedule;
  private readonly sampler: BatchSampler;
  private readonly batchOptions: BatchOptions;
  private readonly sessions = new SessionCache<TrainExecutable>(2);
  private readonly startedAt = performance.now();

  constructor(
    readonly model: Model,
    readonly source: SampleSource,
    options: FineTuneOptions,
  ) {
    this.recipe = paperRecipe(options);
    this.iters = options.iters;
    const seed = options.seed ?? 0;
    this.sgd = new Sgd({ momentum: this.recipe.momentum, weightDecay: this.recipe.weightDecay });
    const base = paperSchedule(this.recipe.lr, this.iters, this.recipe.warmupIters);
    this.schedule = this.recipe.steps ? { ...base, steps: this.recipe.steps } : base;
    this.sampler = new BatchSampler(source, this.recipe.batchSize, seed);
    const r = this.recipe;
    this.batchOptions = { config: model.config, flip: r.flip, minSizes: r.minSizes, padTo: r.padTo, seed, boxLoss: model.config.loss.box };
    model.classNames = [...source.classNames];
    model.categoryIds = [...source.categoryIds];
  }

  /** The learning rate of the next step. */
  get lr(): number {
    return learningRate(this.schedule, this.iteration);
  }

  /** One step: the next batch, its losses and gradients, the SGD update. */
  async step(): Promise<StepRecord> {
    const iter = this.iteration;
    const batch = await prepareBatch(this.source, iter, this.sampler.batchAt(iter), this.batchOptions);
    const [n, , h, w] = batch.shape;
    const train = await this.sessions.get(`${n}x${h}x${w}`, () => buildTrainGraph(this.model, n, h, w, batch.anchors.length / 4));
    const lr = this.lr;
    const losses = await trainStep(this.model, train, batch, this.sgd, lr, this.recipe.clipGradNorm, ({ classification, box }) => {
      if (!Number.isFinite(classification) || !Number.isFinite(box)) {
        throw new NonFiniteLoss(`loss became ${Number.isNaN(classification + box) ? 'NaN' : 'infinite'} at step ${iter} (classification ${classification}, box ${box}); weights were not updated`);
      }
    });
    const record: StepRecord = {
      iter,
      loss: losses.classification + losses.box,
      loss_cls: losses.classification,
      loss_box: losses.box,
      lr,
      num_fg: batch.targets.numForeground.reduce((a, b) => a + b, 0),
      time: (performance.now() - this.startedAt) / 1000,
      ...(batch.skipped > 0 ? { skipped: batch.skipped } : {}),
    };
    this.iteration++;
    this.records.push(record);
    return record;
  }

  /**
   * Steps until `iters` are done or `signal` aborts (after the step in progress). `onStep` gets
   * each record; the page stays responsive between steps.
   */
  async run(opts: { signal?: AbortSignal; onStep?: (record: StepRecord) => void } = {}): Promise<{ stopped: FineTuneStop; message?: string }> {
    try {
      while (this.iteration < this.iters) {
        if (opts.signal?.aborted) return { stopped: 'aborted' };
        opts.onStep?.(await this.step());
        // Let the page draw (the loss curve) between steps.
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
      return { stopped: 'done' };
    } catch (err) {
      if (err instanceof NonFiniteLoss) return { stopped: 'nan', message: err.message };
      throw err;
    } finally {
      await this.dispose();
    }
  }

  /**
   * Releases the training sessions, and the model's inference sessions, which were compiled with
   * the weights of before (the next detection compiles with the trained ones).
   */
  async dispose(): Promise<void> {
    await this.sessions.clear();
    await this.model.dispose();
  }
}

class NonFiniteLoss extends Error {
  override name = 'NonFiniteLoss';
}
