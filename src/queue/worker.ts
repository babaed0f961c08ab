/**
 * A queue worker: takes shards off the BullMQ queue, detects on their images with the run's
 * model (loaded once per content hash and kept for the next shards) and writes each image's
 * outcome to the run's results hash as soon as it is done. A shard started again (its worker was
 * killed, its lock lost) skips the images that already have an outcome. An image that cannot be
 * decoded or detected on gets a failed outcome with its reason; it is not retried.
 */
import os from 'node:os';
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import path from 'node:path';
import { type Job, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { InputError } from '../core/errors.js';
import { loadImage } from '../io/image.js';
import { type Detector, loadDetector } from '../model/detector.js';
import { toCocoResults } from '../model/evaluate.js';
import { RetinaNet, defaultMaxMemory } from '../model/model.js';
import { findPretrained, isWeightsUrl, resolveWeights } from '../model/pretrained.js';
import { type RedisTarget, bullConnection, connectRedis } from './connection.js';
import { ModelMismatchError, type ModelSpec, modelOverrides, verifyModel } from './model_spec.js';
import { type ImageOutcome, QUEUE_NAME, type ShardJobData, parseShardJob, runKeys } from './run.js';

/** What a worker reports (the library prints nothing; the CLI prints these). */
export type WorkerEvent =
  | { type: 'shard-start'; run: string; shard: number; shards: number; images: number; alreadyDone: number; attempt: number }
  | { type: 'shard-done'; run: string; shard: number; shards: number; images: number; processed: number; failed: number; seconds: number }
  | { type: 'shard-failed'; run: string; shard: number; shards: number; error: string; final: boolean }
  | { type: 'image-failed'; run: string; file: string; error: string }
  | { type: 'model-loaded'; file: string; hash: string; seconds: number }
  | { type: 'error'; message: string };

export interface QueueWorkerOptions {
  /** Shards processed at once (default 1). Decoding and Redis traffic overlap; inference runs one image at a time per model. */
  concurrency?: number;
  /** ONNX Runtime threads per inference (default: all cores). */
  threads?: number;
  /**
   * A shard whose worker stops renewing its lock for this long (killed, hung, disconnected) is
   * given to another worker; default 30 s. Every worker checks for such shards this often.
   */
  stallTimeoutMs?: number;
  /** Times a shard may stall before it is failed instead (default 3): a shard that kills every worker is not retried for ever. */
  maxStalledCount?: number;
  /** Memory budget of each model's compiled sessions in bytes (default: 80% of the machine's memory). */
  maxMemory?: number;
  /** Models kept loaded at once (default 2); the least recently used is released beyond. */
  maxModels?: number;
  /** This worker's name in job records (default host:pid). */
  name?: string;
  /** Resolves a NAME or URL of the weights list to a file on this machine when the producer's path is not here (default: the weights cache). */
  resolveWeights?: (spec: string) => Promise<string>;
  onEvent?: (event: WorkerEvent) => void;
  /**
   * Awaited after each image's outcome is stored in Redis, before the next image of the shard
   * (throttling, or stopping a worker at a known point in tests). Its errors fail the shard.
   */
  afterImage?: (image: { run: string; shard: number; index: number; file: string }) => Promise<void> | void;
}

/** A loaded model and the queue of its inferences (one at a time: sessions are shared). */
interface LoadedModel {
  detector: Detector;
  busy: Promise<unknown>;
}

/** What a shard job returns (stored by BullMQ as the job's return value). */
export interface ShardSummary {
  images: number;
  processed: number;
  failed: number;
  worker: string;
}

export class QueueWorker {
  private readonly models = new Map<string, Promise<LoadedModel>>();
  private worker: Worker | undefined;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly redis: Redis,
    private readonly opts: QueueWorkerOptions,
    readonly name: string,
  ) {}

  /** Connects to the queue at `target` (InputError when Redis cannot be reached) and starts taking shards. */
  static async start(target: RedisTarget, opts: QueueWorkerOptions = {}): Promise<QueueWorker> {
    const redis = await connectRedis(target);
    redis.on('error', () => undefined); // reconnects on its own; BullMQ's connections report
    const name = opts.name ?? `${os.hostname()}:${process.pid}`;
    const w = new QueueWorker(redis, opts, name);
    const stall = opts.stallTimeoutMs ?? 30_000;
    w.worker = new Worker(QUEUE_NAME, (job: Job) => w.process(job), {
      connection: bullConnection(target),
      concurrency: opts.concurrency ?? 1,
      lockDuration: stall,
      stalledInterval: stall,
      maxStalledCount: opts.maxStalledCount ?? 3,
      name,
      autorun: true,
    });
    w.worker.on('error', (err) => w.emit({ type: 'error', message: err.message }));
    w.worker.on('failed', (job, err) => {
      if (!job) return;
      const d = job.data as Partial<ShardJobData>;
      const final = job.finishedOn !== undefined && (err instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1));
      w.emit({ type: 'shard-failed', run: String(d.run), shard: Number(d.shard), shards: Number(d.shards), error: err.message, final });
    });
    await w.worker.waitUntilReady();
    return w;
  }

  private emit(e: WorkerEvent): void {
    this.opts.onEvent?.(e);
  }

  /** The weights (and config) files of `model` on this machine, checked against its content hashes. */
  private async localFiles(model: ModelSpec): Promise<{ file: string; configFile?: string }> {
    let file = model.file;
    if (!existsSync(file)) {
      if (!isWeightsUrl(model.spec) && !findPretrained(model.spec)) {
        throw new ModelMismatchError(`weights ${file} not found on worker ${this.name}: workers read the run's weights at the producer's path (shared storage)`);
      }
      file = this.opts.resolveWeights ? await this.opts.resolveWeights(model.spec) : (await resolveWeights(model.spec)).file;
    }
    const configFile = model.configFile;
    if (configFile !== undefined && !existsSync(configFile)) throw new ModelMismatchError(`config ${configFile} not found on worker ${this.name}`);
    await verifyModel(model, file, configFile);
    return { file, configFile };
  }

  /** The model of a shard, verified against the run's content hash, loaded on first use. */
  private async model(data: ShardJobData): Promise<LoadedModel> {
    const { file, configFile } = await this.localFiles(data.model);
    const key = data.hash;
    let m = this.models.get(key);
    if (m) {
      // Most recently used last.
      this.models.delete(key);
      this.models.set(key, m);
      return m;
    }
    while (this.models.size >= Math.max(1, this.opts.maxModels ?? 2)) {
      const [oldest, victim] = this.models.entries().next().value as [string, Promise<LoadedModel>];
      this.models.delete(oldest);
      await victim.then(async (v) => {
        await v.busy.catch(() => undefined);
        await v.detector.dispose();
      }).catch(() => undefined);
    }
    const t0 = performance.now();
    m = (async () => {
      const detector = await loadDetector(file, modelOverrides(data.model, configFile));
      if (detector instanceof RetinaNet) await detector.setMemoryBudget(this.opts.maxMemory ?? defaultMaxMemory());
      this.emit({ type: 'model-loaded', file, hash: key, seconds: (performance.now() - t0) / 1000 });
      return { detector, busy: Promise.resolve() };
    })();
    this.models.set(key, m);
    m.catch(() => this.models.delete(key));
    return m;
  }

  /** Runs `fn` after the model's previous inference has finished. */
  private static exclusive<T>(m: LoadedModel, fn: () => Promise<T>): Promise<T> {
    const next = m.busy.then(fn, fn);
    m.busy = next.catch(() => undefined);
    return next;
  }

  private async process(job: Job): Promise<ShardSummary> {
    let data: ShardJobData;
    try {
      data = parseShardJob(job.data);
    } catch (err) {
      throw new UnrecoverableError((err as Error).message);
    }
    const t0 = performance.now();
    const keys = runKeys(data.run);
    const existing = data.images.length > 0 ? await this.redis.hmget(keys.results, ...data.images.map((im) => String(im.index))) : [];
    const todo = data.images.filter((_, i) => existing[i] === null || existing[i] === undefined);
    this.emit({ type: 'shard-start', run: data.run, shard: data.shard, shards: data.shards, images: data.images.length, alreadyDone: data.images.length - todo.length, attempt: job.attemptsStarted ?? job.attemptsMade + 1 });
    let failed = 0;
    if (todo.length > 0) {
      let model: LoadedModel;
      try {
        model = await this.model(data);
      } catch (err) {
        // Another model at the run's path, or none: this worker must not run the shard.
        if (err instanceof InputError) throw new UnrecoverableError(`worker ${this.name} refused shard ${data.shard}/${data.shards}: ${err.message}`);
        throw err;
      }
      const o = data.options;
      for (const im of todo) {
        const file_name = path.basename(im.file);
        let outcome: ImageOutcome;
        try {
          const image = await loadImage(im.file, o.maxPixels !== undefined ? { maxPixels: o.maxPixels } : {});
          const [det] = await QueueWorker.exclusive(model, () =>
            model.detector.detect([image], { threads: this.opts.threads, scoreThresh: o.scoreThresh, nmsThresh: o.nmsThresh, detectionsPerImg: o.detectionsPerImg }),
          );
          const all = toCocoResults(det!, im.id, o.categoryIds);
          const results = o.dropNegative ? all.filter((r) => r.category_id >= 0) : all;
          outcome = { ok: true, id: im.id, file_name, width: image.width, height: image.height, results };
        } catch (err) {
          // The image's failure (unreadable, degenerate, an error in the graph for its size): recorded, not retried.
          const error = err instanceof InputError ? err.message : `${im.file}: ${(err as Error).message}`;
          outcome = { ok: false, id: im.id, file_name, error };
          failed++;
          this.emit({ type: 'image-failed', run: data.run, file: im.file, error });
        }
        await this.redis.hset(keys.results, String(im.index), JSON.stringify(outcome));
        await this.opts.afterImage?.({ run: data.run, shard: data.shard, index: im.index, file: im.file });
      }
    }
    await this.redis.sadd(keys.done, String(data.shard));
    const seconds = (performance.now() - t0) / 1000;
    this.emit({ type: 'shard-done', run: data.run, shard: data.shard, shards: data.shards, images: data.images.length, processed: todo.length, failed, seconds });
    return { images: data.images.length, processed: todo.length, failed, worker: this.name };
  }

  /**
   * Stops taking shards. Without `force`, waits for the shards in progress to finish; with it,
   * returns at once (their locks expire and other workers take them after the stall timeout).
   */
  close(force = false): Promise<void> {
    this.closing ??= (async () => {
      await this.worker?.close(force);
      for (const m of this.models.values()) await m.then((v) => v.detector.dispose()).catch(() => undefined);
      this.models.clear();
      this.redis.disconnect();
    })();
    return this.closing;
  }
}
