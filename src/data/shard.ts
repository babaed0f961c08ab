/**
 * Deterministic shards of a set of images, for running one job as N independent processes
 * (Kubernetes indexed jobs, Slurm arrays, xargs): shard K of N holds the images whose key (file
 * name or image id) hashes to K - 1 modulo N. The hash depends on the key alone, so an image's
 * shard does not change when others are added or removed, and every image is in exactly one.
 */
import { InputError } from '../core/errors.js';
import type { CocoResult } from '../eval/types.js';

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

/** One shard's output as `merge` reads it: its results and the manifest written beside them. */
export interface ShardResults {
  /** Where it came from, for messages (a file name, or a queue shard). */
  name: string;
  manifest: ShardManifest;
  results: readonly CocoResult[];
}

/** An image of the merged output's image list (`.images.json`). */
export interface MergedImage {
  id: number;
  file_name: string;
  width?: number;
  height?: number;
}

/** The output of a single run rebuilt from its shards. */
export interface MergedShards {
  /** Every result, images in the order of the whole input, each image's in the order its shard wrote them. */
  results: CocoResult[];
  /** The images processed, in input order (what a run without ids from a ground truth writes as `.images.json`). */
  images: MergedImage[];
  /** Whether image ids came from a ground truth (then no `.images.json` is written). */
  idsFromGroundTruth: boolean;
  /** Number of shards N. */
  count: number;
}

/**
 * Joins the outputs of every shard of a run into exactly the output of a single run: results in
 * the whole input's image order (the manifests' `index`), the image list likewise. Every shard of
 * the N must be given once; an image in two shards, shards of different N, or results on an
 * image no manifest lists are InputErrors.
 */
export function mergeShards(shards: readonly ShardResults[]): MergedShards {
  if (shards.length === 0) throw new InputError('no shards to merge');
  const parsed = shards.map((s) => ({ ...s, shard: parseShard(s.manifest.shard) }));
  const n = parsed[0]!.shard.count;
  const seen = new Map<number, string>();
  for (const s of parsed) {
    if (s.shard.count !== n) throw new InputError(`${s.name} is shard ${s.manifest.shard}, but ${parsed[0]!.name} is of ${n} shards`);
    const other = seen.get(s.shard.index);
    if (other) throw new InputError(`${s.name} and ${other} are both shard ${s.manifest.shard}`);
    seen.set(s.shard.index, s.name);
  }
  const missing = Array.from({ length: n }, (_, k) => k + 1).filter((k) => !seen.has(k));
  if (missing.length > 0) throw new InputError(`shard(s) ${missing.map((k) => `${k}/${n}`).join(', ')} missing: every shard's results are needed`);

  // Images in the order of the whole input; each image's detections in the order its run wrote them.
  const images = parsed.flatMap((s) => s.manifest.images.map((im) => ({ ...im, from: s.name })));
  images.sort((a, b) => a.index - b.index);
  for (let i = 1; i < images.length; i++) {
    if (images[i]!.index === images[i - 1]!.index) throw new InputError(`image ${images[i]!.file_name} is in two shards (${images[i - 1]!.from}, ${images[i]!.from})`);
  }
  const byImage = new Map<number, CocoResult[]>();
  for (const s of parsed) {
    for (const r of s.results) {
      const list = byImage.get(r.image_id);
      if (list) list.push(r);
      else byImage.set(r.image_id, [r]);
    }
  }
  const results = images.flatMap((im) => byImage.get(im.id) ?? []);
  if (results.length !== parsed.reduce((a, s) => a + s.results.length, 0)) throw new InputError('some results are on images no shard manifest lists; were the files mixed up?');
  return {
    results,
    images: images.map(({ id, file_name, width, height }) => ({ id, file_name, width, height })),
    idsFromGroundTruth: parsed[0]!.manifest.idsFromGroundTruth,
    count: n,
  };
}
