/**
 * Packs per-image target assignments into the dense feeds that `retinanetLoss` reads
 * (see RetinaNetTargets): labels, ignore mask, foreground mask, box targets and normaliser.
 */
import type { AssignedTargets } from './targets.js';
import type { BoxLoss } from './losses.js';

/**
 * The dense loss-target feeds, by name: each is a graph input of the training graph under the
 * same name (see `lossTargetInputs`), with its element type and its shape for N images of A
 * anchors. The one list every producer and consumer of these feeds reads.
 */
export const LOSS_TARGET_FEEDS = {
  labels: { dtype: 'int64', shape: (n: number, a: number) => [n, a] },
  valid: { dtype: 'float32', shape: (n: number, a: number) => [n, a] },
  foreground: { dtype: 'float32', shape: (n: number, a: number) => [n, a] },
  boxTargets: { dtype: 'float32', shape: (n: number, a: number) => [n, a, 4] },
  normalizer: { dtype: 'float32', shape: (n: number) => [n] },
} as const;

/** Names of the loss-target feeds, in declaration order. */
export type LossTargetName = keyof typeof LOSS_TARGET_FEEDS;
export const LOSS_TARGET_NAMES = Object.keys(LOSS_TARGET_FEEDS) as LossTargetName[];

/** Host buffers for one batch of N images with A anchors each. */
export interface LossTargetFeeds {
  /** int64 [N, A]: class of the matched box for foreground anchors, else -1. */
  labels: BigInt64Array;
  /** float [N, A]: 0 where the anchor is ignored (between thresholds). */
  valid: Float32Array;
  /** float [N, A]: 1 for foreground anchors. */
  foreground: Float32Array;
  /** float [N, A, 4]: encoded deltas (l1, smooth_l1) or matched gt boxes in pixels (giou). */
  boxTargets: Float32Array;
  /** float [N]: 1 / (max(1, num_foreground_n) * N). */
  normalizer: Float32Array;
  /** Foreground anchors per image. */
  numForeground: number[];
}

/** Builds the loss feeds for a batch from each image's assignment (all over the same A anchors). */
export function packLossTargets(assigned: readonly AssignedTargets[], numAnchors: number, boxLoss: BoxLoss = 'l1'): LossTargetFeeds {
  const n = assigned.length;
  const labels = new BigInt64Array(n * numAnchors).fill(-1n);
  const valid = new Float32Array(n * numAnchors).fill(1);
  const foreground = new Float32Array(n * numAnchors);
  const boxTargets = new Float32Array(n * numAnchors * 4);
  const normalizer = new Float32Array(n);
  const numForeground: number[] = [];
  assigned.forEach((t, b) => {
    if (t.matchedIdxs.length !== numAnchors) throw new RangeError(`image ${b}: ${t.matchedIdxs.length} matches for ${numAnchors} anchors`);
    const base = b * numAnchors;
    for (let i = 0; i < numAnchors; i++) if (t.matchedIdxs[i] === -2) valid[base + i] = 0;
    // Position of each kept gt box within cleanGtBoxes, for the giou targets.
    const cleanSlot = new Map<number, number>();
    t.keptGt.forEach((orig, slot) => cleanSlot.set(orig, slot));
    t.foreground.forEach((a, k) => {
      labels[base + a] = BigInt(t.labels[k]!);
      foreground[base + a] = 1;
      const o = (base + a) * 4;
      if (boxLoss === 'giou') {
        const slot = cleanSlot.get(t.matchedIdxs[a]!)!;
        boxTargets.set(t.cleanGtBoxes.subarray(4 * slot, 4 * slot + 4), o);
      } else {
        boxTargets.set(t.regressionTargets.subarray(4 * k, 4 * k + 4), o);
      }
    });
    numForeground.push(t.foreground.length);
    normalizer[b] = 1 / (Math.max(1, t.foreground.length) * n);
  });
  return { labels, valid, foreground, boxTargets, normalizer, numForeground };
}
