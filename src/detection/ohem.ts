/**
 * Online hard example mining (OHEM; Shrivastava et al. 2016) for a dense detector, as the focal
 * loss paper's baseline (Lin et al. 2017, section 5.1 and Table 1d): every anchor of an image is
 * an example scored by its loss; greedy non-maximum suppression in descending loss removes
 * examples that overlap a harder one; the highest-loss survivors form the image's minibatch.
 * The 'OHEM 1:3' variant (SSD's) keeps positives and negatives in a 1:3 ratio.
 *
 * Host-side and framework-free: the trainer's OHEM hook (src/train/ohem.ts) scores the anchors
 * with a forward pass and feeds the selection to the loss as the per-anchor `valid` weights.
 */
import { argsortDesc } from './argsort.js';

export interface HardExampleOptions {
  /** Examples per image (the paper's batch size B). */
  batchSize: number;
  /** IoU above which a lower-loss example is suppressed (the paper: 0.7 or 0.5); >= 1 turns NMS off. */
  nmsThresh: number;
  /**
   * 'OHEM 1:3': at most B/4 positives (the hardest after NMS), then three negatives per positive
   * taken. Without it positives and negatives compete on loss alone.
   */
  ratio?: boolean;
}

/** IoU of box i and box j of flat xyxy arrays (float64). */
function iou(boxes: Float32Array, i: number, j: number): number {
  const a = 4 * i;
  const b = 4 * j;
  const w = Math.min(boxes[a + 2]!, boxes[b + 2]!) - Math.max(boxes[a]!, boxes[b]!);
  if (!(w > 0)) return 0;
  const h = Math.min(boxes[a + 3]!, boxes[b + 3]!) - Math.max(boxes[a + 1]!, boxes[b + 1]!);
  if (!(h > 0)) return 0;
  const inter = w * h;
  const areaA = (boxes[a + 2]! - boxes[a]!) * (boxes[a + 3]! - boxes[a + 1]!);
  const areaB = (boxes[b + 2]! - boxes[b]!) * (boxes[b + 3]! - boxes[b + 1]!);
  return inter / (areaA + areaB - inter);
}

/**
 * Picks the hard examples of one image. `losses[i]` is anchor i's loss, `boxes` its box (4 per
 * anchor: the predicted box, or the anchor itself), `valid[i]` 0 for anchors that take no part
 * (ignored by the matcher), `positive[i]` 1 for foreground anchors. Returns the chosen anchor
 * indices in the order they were taken (by descending loss; with `ratio`, positives first).
 *
 * Examples are visited in descending loss (ties: lower index first). An example is taken when
 * no example already taken overlaps it by more than `nmsThresh` and its kind still has room:
 *
 * - without `ratio`: the first B such examples, positive or negative. This is exactly greedy NMS
 *   over all examples followed by the top B, since an example visited after the B-th is never
 *   taken.
 * - with `ratio`: positives first, up to floor(B / 4), suppressed by taken positives; then 3
 *   negatives per positive taken, suppressed by everything taken. An example skipped for lack of
 *   room suppresses nothing (full NMS over all ~10^4-10^5 examples would cost O(N^2) per image).
 */
export function selectHardExamples(
  losses: ArrayLike<number>,
  boxes: Float32Array,
  valid: ArrayLike<number>,
  positive: ArrayLike<number>,
  opts: HardExampleOptions,
): Int32Array {
  const n = losses.length;
  if (boxes.length !== 4 * n || valid.length !== n || positive.length !== n) throw new RangeError(`selectHardExamples: ${n} losses, ${boxes.length / 4} boxes, ${valid.length} valid, ${positive.length} positive flags`);
  if (!(Number.isInteger(opts.batchSize) && opts.batchSize >= 1)) throw new RangeError(`selectHardExamples: batchSize must be an integer >= 1, got ${opts.batchSize}`);
  const scores = Float32Array.from(losses);
  let m = 0;
  const candidates = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    if (!(valid[i]! > 0)) continue;
    if (Number.isNaN(scores[i])) throw new RangeError(`selectHardExamples: the loss of anchor ${i} is NaN`);
    candidates[m++] = i;
  }
  const order = argsortDesc(scores, candidates.subarray(0, m));
  const taken: number[] = [];
  const suppressed = (i: number): boolean => {
    if (opts.nmsThresh >= 1) return false;
    for (const j of taken) if (iou(boxes, i, j) > opts.nmsThresh) return true;
    return false;
  };
  const take = (want: (i: number) => boolean, limit: number): void => {
    for (let r = 0; r < m && taken.length < limit; r++) {
      const i = order[r]!;
      if (!want(i) || suppressed(i)) continue;
      taken.push(i);
    }
  };
  if (!opts.ratio) {
    take(() => true, opts.batchSize);
  } else {
    take((i) => positive[i]! > 0, Math.floor(opts.batchSize / 4));
    const pos = taken.length;
    take((i) => !(positive[i]! > 0), pos + 3 * pos);
  }
  return Int32Array.from(taken);
}
