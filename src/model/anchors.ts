/**
 * The anchors of a config at a padded input size, computed once and kept: per level for
 * post-processing, concatenated with a spatial index for target assignment. Both the detect
 * path and training batches get them here.
 */
import { anchorsForImage, concatLevels } from '../detection/anchors.js';
import { AnchorIndex } from '../detection/anchor_index.js';
import { type RetinaNetConfig, anchorConfig } from './config.js';

/** Anchors of one padded image size, xyxy in input pixels. */
export interface AnchorSet {
  /** Per level P3..P7, location-major, 4 values per anchor. */
  levels: Float32Array[];
  /** All levels concatenated: [A, 4] flat. */
  all: Float32Array;
  /** Spatial index over `all` for fast matching (built on first use). */
  index(): AnchorIndex;
}

const MAX_CACHED = 16;
const cache = new Map<string, AnchorSet>();

/** The anchors of `cfg` for a padded input of `paddedH` x `paddedW` pixels (cached). */
export function anchorsFor(cfg: RetinaNetConfig, paddedH: number, paddedW: number): AnchorSet {
  const key = `${JSON.stringify(cfg.anchors)}@${paddedH}x${paddedW}`;
  let set = cache.get(key);
  if (set) {
    // Most recently used last, so the oldest entry is evicted first.
    cache.delete(key);
    cache.set(key, set);
    return set;
  }
  const levels = anchorsForImage(paddedH, paddedW, anchorConfig(cfg));
  const all = concatLevels(levels);
  let index: AnchorIndex | undefined;
  set = { levels, all, index: () => (index ??= new AnchorIndex(all)) };
  if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value!);
  cache.set(key, set);
  return set;
}
