/**
 * The producer's side of a run: submits a run's shards to the queue (or re-attaches to a run by
 * its id), follows it until every shard is done, and rebuilds from the per-image outcomes exactly
 * the output a single process would have written (data/shard.ts `mergeShards`, the same code as
 * `retinanet merge`).
 *
 * Finished shards are also appended to a journal file on the producer's machine. Should Redis
 * come back empty (restarted without persistence), the producer puts the run back: the record,
 * every journaled outcome, and the jobs of the shards not finished, so nothing finished is lost
 * while the producer or its journal survives. With Redis' AOF on, Redis keeps them itself.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type JobsOptions, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { InputError } from '../core/errors.js';
import { type MergedShards, type ShardResults, mergeShards } from '../data/shard.js';
import type { CocoResult } from '../eval/types.js';
import { type RedisTarget, bullConnection, connectRedis } from './connection.js';
import { type ImageOutcome, QUEUE_NAME, type RunImage, type RunSpec, SHARD_JOB, type ShardJobData, parseOutcome, parseRunSpec, runKeys, shardCount, shardImages, shardJobId } from './run.js';

/** Where a run stands. */
export interface RunProgress {
  /** Images in the run. */
  total: number;
  /** Images with an outcome (across every worker, shards in progress included). */
  done: number;
  /** Images of finished shards that failed (unreadable and the like). */
  failed: number;
  shards: number;
  shardsDone: number;
  shardsFailed: number;
}

/** Something the producer did or saw that a user may want to know. */
export interface RunNote {
  kind: 'redis-lost' | 'redis-back' | 'resubmitted' | 'requeued' | 'retried' | 'shard-failed';
  message: string;
}

/** A shard that failed for good (its worker refused it, it stalled too often, it kept erroring). */
export interface ShardFailure {
  shard: number;
  reason: string;
}

/** A finished run: every image's outcome, and the shards that failed. */
export interface RunOutcome {
  outcomes: Map<number, ImageOutcome>;
  failedShards: ShardFailure[];
}

export interface WaitOptions {
  signal?: AbortSignal;
  /** Milliseconds between looks at Redis (default 500). */
  pollMs?: number;
  onProgress?: (p: RunProgress) => void;
  onNote?: (n: RunNote) => void;
}

/** Options of a shard job: retried on errors (3 attempts), gone from Redis once completed. */
const JOB_OPTIONS: Omit<JobsOptions, 'jobId'> = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: true,
  removeOnFail: { age: 7 * 24 * 3600 },
};

/** Whether two specs are the same run (same model, options, images and shards). */
function sameRun(a: RunSpec, b: RunSpec): boolean {
  return a.kind === b.kind && a.hash === b.hash && a.shardSize === b.shardSize && a.idsFromGroundTruth === b.idsFromGroundTruth && JSON.stringify(a.images) === JSON.stringify(b.images);
}

/** A journal of finished shards: a JSON line with the run, then one line per image outcome. */
class Journal {
  constructor(readonly file: string) {}

  /** The journaled run and outcomes when the journal is of run `id` (else nothing). */
  read(id: string): { spec: RunSpec; outcomes: Map<number, ImageOutcome> } | undefined {
    if (!existsSync(this.file)) return undefined;
    const lines = readFileSync(this.file, 'utf8').split('\n');
    let head: { run?: unknown; spec?: unknown };
    try {
      head = JSON.parse(lines[0] ?? '') as typeof head;
    } catch {
      return undefined;
    }
    if (head.run !== id) return undefined;
    const spec = parseRunSpec(JSON.stringify(head.spec), id);
    const outcomes = new Map<number, ImageOutcome>();
    for (const line of lines.slice(1)) {
      if (line === '') continue;
      try {
        const { i, o } = JSON.parse(line) as { i: number; o: unknown };
        const outcome = parseOutcome(JSON.stringify(o));
        if (Number.isInteger(i) && outcome) outcomes.set(i, outcome);
      } catch {
        // A torn last line (the producer was killed while writing): that shard is fetched again.
      }
    }
    return { spec, outcomes };
  }

  start(id: string, spec: RunSpec, outcomes: ReadonlyMap<number, ImageOutcome>): void {
    mkdirSync(path.dirname(this.file), { recursive: true });
    writeFileSync(this.file, [JSON.stringify({ run: id, spec }), ...[...outcomes].map(([i, o]) => JSON.stringify({ i, o }))].join('\n') + '\n');
  }

  append(entries: readonly [number, ImageOutcome][]): void {
    if (entries.length > 0) appendFileSync(this.file, entries.map(([i, o]) => JSON.stringify({ i, o })).join('\n') + '\n');
  }

  remove(): void {
    rmSync(this.file, { force: true });
  }
}

export interface OpenRunOptions {
  /** The journal file of finished shards (default: none). */
  journal?: string;
}

export class QueueRun {
  private readonly keys: ReturnType<typeof runKeys>;
  private readonly outcomes = new Map<number, ImageOutcome>();
  private readonly doneShards = new Set<number>();
  private readonly journal: Journal | undefined;

  private constructor(
    private readonly redis: Redis,
    private readonly queue: Queue,
    /** The run's id. */
    readonly id: string,
    /** What the run is. */
    readonly spec: RunSpec,
    /** Whether this call put the run on the queue (false: it re-attached to a run already there). */
    readonly submitted: boolean,
    journal: string | undefined,
    journaled: ReadonlyMap<number, ImageOutcome>,
  ) {
    this.keys = runKeys(id);
    this.journal = journal ? new Journal(journal) : undefined;
    for (const [i, o] of journaled) this.outcomes.set(i, o);
    this.journal?.start(id, spec, this.outcomes);
  }

  /** Number of shards. */
  get shards(): number {
    return shardCount(this.spec);
  }

  private static async connect(target: RedisTarget): Promise<{ redis: Redis; queue: Queue }> {
    const redis = await connectRedis(target);
    redis.on('error', () => undefined); // reconnects on its own; wait() reports a lost connection
    const queue = new Queue(QUEUE_NAME, { connection: bullConnection(target) });
    queue.on('error', () => undefined);
    return { redis, queue };
  }

  /**
   * Puts a run on the queue under `runId`, or re-attaches to it when a run of that id is there
   * already: it must be the same run (model, options, images, shard size), else InputError.
   */
  static async submit(target: RedisTarget, runId: string, spec: RunSpec, opts: OpenRunOptions = {}): Promise<QueueRun> {
    const { redis, queue } = await QueueRun.connect(target);
    try {
      const stored = await redis.get(runKeys(runId).spec);
      if (stored !== null) {
        const existing = parseRunSpec(stored, runId);
        if (!sameRun(existing, spec)) throw new InputError(`run ${runId} is already on the queue with other images, model or options: choose another run id, or re-attach to it without giving images and weights`);
      }
      const journaled = opts.journal ? new Journal(opts.journal).read(runId) : undefined;
      const run = new QueueRun(redis, queue, runId, stored !== null ? parseRunSpec(stored, runId) : spec, stored === null, opts.journal, journaled && sameRun(journaled.spec, spec) ? journaled.outcomes : new Map());
      await run.ensureOnQueue(stored === null);
      return run;
    } catch (err) {
      await queue.close().catch(() => undefined);
      redis.disconnect();
      throw err;
    }
  }

  /** Re-attaches to run `runId` (from Redis, else from its journal); InputError when neither knows it. */
  static async attach(target: RedisTarget, runId: string, opts: OpenRunOptions = {}): Promise<QueueRun> {
    const { redis, queue } = await QueueRun.connect(target);
    try {
      const stored = await redis.get(runKeys(runId).spec);
      const journaled = opts.journal ? new Journal(opts.journal).read(runId) : undefined;
      if (stored === null && !journaled) throw new InputError(`no run '${runId}' on the queue at ${target.display}${opts.journal ? ` nor in ${opts.journal}` : ''}: give the images and weights again to submit it`);
      const spec = stored !== null ? parseRunSpec(stored, runId) : journaled!.spec;
      const run = new QueueRun(redis, queue, runId, spec, false, opts.journal, journaled && sameRun(journaled.spec, spec) ? journaled.outcomes : new Map());
      await run.ensureOnQueue(stored === null);
      return run;
    } catch (err) {
      await queue.close().catch(() => undefined);
      redis.disconnect();
      throw err;
    }
  }

  private jobData(k: number): ShardJobData {
    const s = this.spec;
    return { run: this.id, shard: k, shards: this.shards, hash: s.hash, model: s.model, options: s.options, images: shardImages(s, k) };
  }

  private async addJobs(ks: readonly number[]): Promise<void> {
    for (let i = 0; i < ks.length; i += 500) {
      await this.queue.addBulk(ks.slice(i, i + 500).map((k) => ({ name: SHARD_JOB, data: this.jobData(k), opts: { ...JOB_OPTIONS, jobId: shardJobId(this.id, k) } })));
    }
  }

  /** Whether every image of shard k has an outcome here. */
  private shardComplete(k: number): boolean {
    return shardImages(this.spec, k).every((im) => this.outcomes.has(im.index));
  }

  /**
   * Makes Redis hold the run: its record and the outcomes known here (when `fresh`, i.e. Redis
   * lacks the run), and a job for every shard not finished (failed jobs are retried: re-attaching
   * is how a user retries them).
   */
  private async ensureOnQueue(fresh: boolean): Promise<{ added: number; retried: number }> {
    if (fresh) {
      await this.redis.set(this.keys.spec, JSON.stringify(this.spec));
      const entries = [...this.outcomes];
      for (let i = 0; i < entries.length; i += 1000) {
        const chunk = entries.slice(i, i + 1000);
        await this.redis.hset(this.keys.results, Object.fromEntries(chunk.map(([idx, o]) => [String(idx), JSON.stringify(o)])));
      }
    }
    for (let k = 1; k <= this.shards; k++) if (this.shardComplete(k)) this.doneShards.add(k);
    if (this.doneShards.size > 0) await this.redis.sadd(this.keys.done, ...[...this.doneShards].map(String));
    const toAdd: number[] = [];
    let retried = 0;
    for (let k = 1; k <= this.shards; k++) {
      if (this.doneShards.has(k)) continue;
      const state = await this.queue.getJobState(shardJobId(this.id, k));
      if (state === 'unknown') toAdd.push(k);
      else if (state === 'failed') {
        await (await this.queue.getJob(shardJobId(this.id, k)))?.retry('failed');
        retried++;
      }
    }
    await this.addJobs(toAdd);
    return { added: toAdd.length, retried };
  }

  /** Takes in the outcomes of shards the workers have finished; returns the shards whose outcomes were lost. */
  private async collect(): Promise<number[]> {
    const done = (await this.redis.smembers(this.keys.done)).map(Number).filter((k) => Number.isInteger(k) && k >= 1 && k <= this.shards && !this.doneShards.has(k));
    const lost: number[] = [];
    for (const k of done) {
      const images = shardImages(this.spec, k);
      const raw = await this.redis.hmget(this.keys.results, ...images.map((im) => String(im.index)));
      const got = raw.map((r) => (r === null ? undefined : parseOutcome(r)));
      if (got.some((o) => o === undefined)) {
        // Marked done, but outcomes are missing (Redis lost writes): the shard runs again.
        await this.redis.srem(this.keys.done, String(k));
        lost.push(k);
        continue;
      }
      const entries = images.map((im, j) => [im.index, got[j]!] as [number, ImageOutcome]);
      for (const [i, o] of entries) this.outcomes.set(i, o);
      this.journal?.append(entries);
      this.doneShards.add(k);
    }
    return lost;
  }

  private progress(failedShards: ReadonlyMap<number, string>, inRedis: number): RunProgress {
    let failed = 0;
    for (const o of this.outcomes.values()) if (!o.ok) failed++;
    return { total: this.spec.images.length, done: Math.max(inRedis, this.outcomes.size), failed, shards: this.shards, shardsDone: this.doneShards.size, shardsFailed: failedShards.size };
  }

  /**
   * Follows the run until every shard is done or has failed for good. An abort `signal` stops
   * the waiting only (the workers go on; attach again to collect the results).
   */
  async wait(opts: WaitOptions = {}): Promise<RunOutcome> {
    const pollMs = opts.pollMs ?? 500;
    const note = (kind: RunNote['kind'], message: string): void => opts.onNote?.({ kind, message });
    const failedShards = new Map<number, string>();
    let lostConnection = false;
    const onClose = (): void => {
      if (!lostConnection) note('redis-lost', 'lost the connection to Redis; waiting for it to come back (workers wait too)');
      lostConnection = true;
    };
    const onReady = (): void => {
      if (lostConnection) note('redis-back', 'Redis is back');
      lostConnection = false;
    };
    this.redis.on('close', onClose);
    this.redis.on('ready', onReady);
    let lastJobCheck = 0;
    try {
      for (;;) {
        if (opts.signal?.aborted) throw opts.signal.reason instanceof Error ? opts.signal.reason : new Error('aborted');
        if ((await this.redis.exists(this.keys.spec)) === 0) {
          // Redis came back without the run (no persistence): put back what is known here.
          const { added } = await this.ensureOnQueue(true);
          note('resubmitted', `Redis no longer holds run ${this.id} (restarted without persistence?): put it back with the ${this.outcomes.size} image outcome(s) collected here; ${added} shard(s) queued again`);
        }
        const lost = await this.collect();
        if (lost.length > 0) {
          await this.addJobs(lost.filter((k) => !failedShards.has(k)));
          note('requeued', `shard(s) ${lost.join(', ')} lost outcomes in Redis and run again`);
        }
        const now = Date.now();
        if (now - lastJobCheck >= Math.max(2000, 4 * pollMs)) {
          lastJobCheck = now;
          for (let k = 1; k <= this.shards; k++) {
            if (this.doneShards.has(k) || failedShards.has(k)) continue;
            const id = shardJobId(this.id, k);
            const state = await this.queue.getJobState(id);
            if (state === 'failed') {
              const reason = (await this.queue.getJob(id))?.failedReason ?? 'failed';
              failedShards.set(k, reason);
              note('shard-failed', `shard ${k}/${this.shards} failed: ${reason}`);
            } else if (state === 'unknown' || state === 'completed') {
              // Gone (a completed job is removed) though not done here: done in the meantime, or lost.
              if ((await this.redis.sismember(this.keys.done, String(k))) === 1) continue;
              if (state === 'completed') await (await this.queue.getJob(id))?.remove().catch(() => undefined);
              await this.addJobs([k]);
              note('requeued', `shard ${k}/${this.shards} had no job on the queue (lost with Redis' data?): queued again`);
            }
          }
        }
        opts.onProgress?.(this.progress(failedShards, await this.redis.hlen(this.keys.results)));
        if (this.doneShards.size + failedShards.size >= this.shards) break;
        await sleep(pollMs);
      }
    } finally {
      this.redis.off('close', onClose);
      this.redis.off('ready', onReady);
    }
    return { outcomes: new Map(this.outcomes), failedShards: [...failedShards].map(([shard, reason]) => ({ shard, reason })).sort((a, b) => a.shard - b.shard) };
  }

  /**
   * Ends the producer's part once its output is written: the journal is removed and the run's
   * keys in Redis expire after `keepSeconds` (default one day: re-attaching within it fetches the
   * results again).
   */
  async finish(keepSeconds = 24 * 3600): Promise<void> {
    for (const key of Object.values(this.keys)) await this.redis.expire(key, keepSeconds);
    this.journal?.remove();
  }

  /** Closes the connections (the run stays on the queue). */
  async close(): Promise<void> {
    await this.queue.close().catch(() => undefined);
    this.redis.disconnect();
  }
}

/** The output of a run rebuilt from its outcomes: what a single process would have written. */
export interface AssembledRun {
  /** Results and image list, merged as `retinanet merge` merges shards. */
  merged: MergedShards;
  /** Indices (input positions) of the images processed. */
  processed: number[];
  /** Images that failed, with their reason (unreadable, or their shard failed). */
  failures: { image: RunImage; error: string }[];
}

/**
 * Rebuilds a run's output from per-image outcomes: one shard manifest per queue shard, joined by
 * `mergeShards`. Images without an outcome (their shard failed) are failures with `missing`'s
 * reason for their shard.
 */
export function assembleRun(spec: RunSpec, outcomes: ReadonlyMap<number, ImageOutcome>, failedShards: readonly ShardFailure[] = []): AssembledRun {
  const n = shardCount(spec);
  const shardReason = new Map(failedShards.map((f) => [f.shard, f.reason]));
  const parts: ShardResults[] = [];
  const failures: AssembledRun['failures'] = [];
  const processed: number[] = [];
  for (let k = 1; k <= n; k++) {
    const images: ShardResults['manifest']['images'] = [];
    const results: CocoResult[] = [];
    for (const im of shardImages(spec, k)) {
      const o = outcomes.get(im.index);
      if (!o) failures.push({ image: im, error: `${im.file}: not processed (shard ${k}/${n} failed: ${shardReason.get(k) ?? 'no outcome'})` });
      else if (!o.ok) failures.push({ image: im, error: o.error });
      else {
        images.push({ index: im.index, id: o.id, file_name: o.file_name, width: o.width, height: o.height });
        results.push(...o.results);
        processed.push(im.index);
      }
    }
    parts.push({ name: `queue shard ${k}/${n}`, manifest: { shard: `${k}/${n}`, idsFromGroundTruth: spec.idsFromGroundTruth, images }, results });
  }
  failures.sort((a, b) => a.image.index - b.image.index);
  processed.sort((a, b) => a - b);
  return { merged: mergeShards(parts), processed, failures };
}
