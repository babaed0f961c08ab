/**
 * Deterministic shards of a set of images, for running one job as N independent processes
 * (Kubernetes indexed jobs, Slurm arrays, xargs): shard K of N holds the images whose key (file
 * name or image id) hashes to K - 1 modulo N. The hash depends on the key alone, so an image's
 * shard does not change when others are added or removed, and every image is in exactly one.
 */
import { InputError } from '../core/errors.js';

/** Shard `index` (1-based) of `count`. */
export interface Shard {
  index: number;
  count: number;
}

/** Parses `K/N` (1 <= K <= N). */
export function parseShard(text: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!(count >= 1 && index >= 1 && index <= count)) throw new InputError(`a shard is K/N with 1 <= K <= N, e.g. 2/8; got '${text}'`);
  return { index, count };
}

/** 32-bit FNV-1a of a string's UTF-16 code units: fast, stable across platforms and versions. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Whether the item with `key` belongs to `shard`. */
export function inShard(key: string, shard: Shard): boolean {
  return fnv1a(key) % shard.count === shard.index - 1;
}

/** What a shard's run records beside its results so that `merge` can rebuild a single run's output. */
export interface ShardManifest {
  shard: string;
  /** Whether image ids came from a ground truth (`detect --gt`, `eval --data`): then no `.images.json` is merged. */
  idsFromGroundTruth: boolean;
  /** The shard's images with their position in the whole (unsharded) input. */
  images: { index: number; id: number; file_name: string; width?: number; height?: number }[];
}

/** `out.json` -> `out.shard.json`. */
export function shardManifestPath(resultsFile: string): string {
  return resultsFile.replace(/\.json$/, '') + '.shard.json';
}
