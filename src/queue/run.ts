/**
 * A run on the queue: its images cut into shards, each shard a BullMQ job; what is kept in Redis
 * for it; and each image's outcome. Results are keyed by image (a Redis hash per run: image
 * index -> outcome), so a shard that runs twice (a worker killed mid-shard, a lost lock)
 * overwrites its own entries and never duplicates a detection.
 *
 * Redis keys of run ID (prefix `retinanet:run:`): `ID` the RunSpec (JSON), `ID:results` the
 * outcomes (hash), `ID:done` the shards whose every image has an outcome (set). Jobs are on the
 * BullMQ queue `retinanet`, job id `ID-s<k>`.
 */
import { InputError } from '../core/errors.js';
import type { CocoResult } from '../eval/types.js';
import type { JobOptions, ModelSpec } from './model_spec.js';

/** The BullMQ queue every run's shards are put on. */
export const QUEUE_NAME = 'retinanet';
/** The job name of a shard. */
export const SHARD_JOB = 'shard';

/** An image of a run: its position in the whole input, its COCO image id, its file (absolute). */
export interface RunImage {
  index: number;
  id: number;
  file: string;
}

/** Everything a run is: stored in Redis under its id, so a producer can re-attach to it. */
export interface RunSpec {
  /** 'detect' (results and an image list) or 'eval' (results scored on a dataset by the producer). */
  kind: 'detect' | 'eval';
  model: ModelSpec;
  options: JobOptions;
  /** contentHash(model, options). */
  hash: string;
  /** Whether image ids come from a ground truth (then no `.images.json` is written). */
  idsFromGroundTruth: boolean;
  /** Images per shard. */
  shardSize: number;
  /** Every image, in input order. */
  images: RunImage[];
  /** When it was submitted (ISO 8601). */
  created: string;
}

/** What a shard's job carries: enough to run it without reading the RunSpec. */
export interface ShardJobData {
  run: string;
  /** 1-based shard number and the number of shards. */
  shard: number;
  shards: number;
  hash: string;
  model: ModelSpec;
  options: JobOptions;
  images: RunImage[];
}

/** One image's outcome: its detections (as COCO results), or why it could not be processed. */
export type ImageOutcome =
  | { ok: true; id: number; file_name: string; width: number; height: number; results: CocoResult[] }
  | { ok: false; id: number; file_name: string; error: string };

/** Redis key names of a run. */
export function runKeys(runId: string): { spec: string; results: string; done: string } {
  const base = `retinanet:run:${runId}`;
  return { spec: base, results: `${base}:results`, done: `${base}:done` };
}

/** The BullMQ job id of shard `k` of a run. */
export function shardJobId(runId: string, k: number): string {
  return `${runId}-s${k}`;
}

/** Run ids: letters, digits, '.', '_', '-' (they are part of Redis keys and job ids). */
export function checkRunId(id: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/.test(id)) throw new InputError(`a run id is 1-80 letters, digits, '.', '_' or '-' (starting with a letter or digit), got '${id}'`);
  return id;
}

/** A new run id: the time and 6 random hex digits, e.g. 20250304-101112-a1b2c3. */
export function newRunId(now = new Date()): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  const stamp = `${now.getUTCFullYear()}${p(now.getUTCMonth() + 1)}${p(now.getUTCDate())}-${p(now.getUTCHours())}${p(now.getUTCMinutes())}${p(now.getUTCSeconds())}`;
  return `${stamp}-${Math.floor(Math.random() * 0x1000000)
    .toString(16)
    .padStart(6, '0')}`;
}

/** The images of shard `k` (1-based): consecutive runs of `shardSize` images of the input. */
export function shardImages(spec: Pick<RunSpec, 'images' | 'shardSize'>, k: number): RunImage[] {
  return spec.images.slice((k - 1) * spec.shardSize, k * spec.shardSize);
}

/** Number of shards of a run. */
export function shardCount(spec: Pick<RunSpec, 'images' | 'shardSize'>): number {
  return Math.max(1, Math.ceil(spec.images.length / spec.shardSize));
}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isNat = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;

function checkImages(v: unknown, where: string): RunImage[] {
  if (!Array.isArray(v) || !v.every((im) => isRecord(im) && isNat(im['index']) && typeof im['id'] === 'number' && typeof im['file'] === 'string')) {
    throw new InputError(`${where}: "images" must be a list of {index, id, file}`);
  }
  return v as RunImage[];
}

function checkModel(v: unknown, where: string): ModelSpec {
  if (!isRecord(v) || typeof v['spec'] !== 'string' || typeof v['file'] !== 'string' || typeof v['weightsSha256'] !== 'string' || !(v['sidecarSha256'] === null || typeof v['sidecarSha256'] === 'string')) {
    throw new InputError(`${where}: "model" must name the weights and their SHA-256`);
  }
  return v as unknown as ModelSpec;
}

function checkOptions(v: unknown, where: string): JobOptions {
  if (!isRecord(v) || !Array.isArray(v['categoryIds']) || !v['categoryIds'].every((c) => typeof c === 'number')) throw new InputError(`${where}: "options" must hold the category ids`);
  for (const k of ['scoreThresh', 'nmsThresh', 'detectionsPerImg', 'maxPixels']) {
    if (v[k] !== undefined && typeof v[k] !== 'number') throw new InputError(`${where}: options.${k} must be a number`);
  }
  return v as unknown as JobOptions;
}

/** A shard job's data, checked (it comes over the network). */
export function parseShardJob(data: unknown): ShardJobData {
  const where = 'shard job';
  if (!isRecord(data) || typeof data['run'] !== 'string' || !isNat(data['shard']) || !isNat(data['shards']) || typeof data['hash'] !== 'string') {
    throw new InputError(`${where}: not a retinanet shard (run, shard, shards, hash expected)`);
  }
  return { run: data['run'], shard: data['shard'], shards: data['shards'], hash: data['hash'], model: checkModel(data['model'], where), options: checkOptions(data['options'], where), images: checkImages(data['images'], where) };
}

/** A RunSpec read from Redis, checked. */
export function parseRunSpec(text: string, runId: string): RunSpec {
  const where = `run ${runId}`;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new InputError(`${where}: its record in Redis is not JSON`);
  }
  if (!isRecord(v) || (v['kind'] !== 'detect' && v['kind'] !== 'eval') || typeof v['hash'] !== 'string' || !isNat(v['shardSize']) || (v['shardSize'] as number) < 1) {
    throw new InputError(`${where}: its record in Redis is not a retinanet run`);
  }
  return {
    kind: v['kind'],
    model: checkModel(v['model'], where),
    options: checkOptions(v['options'], where),
    hash: v['hash'],
    idsFromGroundTruth: v['idsFromGroundTruth'] === true,
    shardSize: v['shardSize'] as number,
    images: checkImages(v['images'], where),
    created: typeof v['created'] === 'string' ? v['created'] : '',
  };
}

/** An image outcome read from Redis, checked; undefined when malformed. */
export function parseOutcome(text: string): ImageOutcome | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isRecord(v) || typeof v['id'] !== 'number' || typeof v['file_name'] !== 'string') return undefined;
  if (v['ok'] === true) {
    if (typeof v['width'] !== 'number' || typeof v['height'] !== 'number' || !Array.isArray(v['results'])) return undefined;
    return v as unknown as ImageOutcome;
  }
  if (v['ok'] === false && typeof v['error'] === 'string') return v as unknown as ImageOutcome;
  return undefined;
}
