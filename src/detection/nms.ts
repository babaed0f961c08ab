/**
 * Greedy non-maximum suppression on flat xyxy box arrays, reproducing torchvision's CPU `nms`
 * kernel and `batched_nms` (including which of its two strategies it picks), in float32.
 */
import { type BoxArray, numBoxes } from './boxes.js';

const f = Math.fround;

/**
 * Indices of `idx` sorted by descending score, ties by ascending index: the order of
 * torchvision's kernel, which sorts with `stable=true`.
 */
function sortByScoreDesc(idx: Int32Array, scores: ArrayLike<number>): Int32Array {
  return idx.sort((a, b) => scores[b]! - scores[a]! || a - b);
}

/**
 * Greedy suppression over `order` (already sorted best first); writes kept indices into `keep`
 * from `keepLen` on and returns the new length. `areas` is indexed like `boxes`.
 */
function greedy(
  boxes: BoxArray,
  areas: Float32Array,
  order: Int32Array,
  iouThreshold: number,
  suppressed: Uint8Array,
  keep: Int32Array,
  keepLen: number,
): number {
  const n = order.length;
  for (let a = 0; a < n; a++) {
    const i = order[a]!;
    if (suppressed[i] === 1) continue;
    keep[keepLen++] = i;
    const o = 4 * i;
    const ix1 = boxes[o]!, iy1 = boxes[o + 1]!, ix2 = boxes[o + 2]!, iy2 = boxes[o + 3]!;
    const iarea = areas[i]!;
    for (let b = a + 1; b < n; b++) {
      const j = order[b]!;
      if (suppressed[j] === 1) continue;
      const p = 4 * j;
      const w = f(Math.min(ix2, boxes[p + 2]!) - Math.max(ix1, boxes[p]!));
      if (!(w > 0)) continue;
      const h = f(Math.min(iy2, boxes[p + 3]!) - Math.max(iy1, boxes[p + 1]!));
      if (!(h > 0)) continue;
      const inter = f(w * h);
      // Zero overlap can never exceed a non-negative threshold, hence the early continues.
      if (f(inter / f(f(iarea + areas[j]!) - inter)) > iouThreshold) suppressed[j] = 1;
    }
  }
  return keepLen;
}

function areasOf(boxes: BoxArray): Float32Array {
  const n = boxes.length >> 2;
  const areas = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const o = 4 * i;
    areas[i] = f(f(boxes[o + 2]! - boxes[o]!) * f(boxes[o + 3]! - boxes[o + 1]!));
  }
  return areas;
}

/**
 * Non-maximum suppression: indices of the kept boxes (`Int32Array`), by decreasing score.
 * A box is dropped when its IoU with a kept, higher-scoring box is > `iouThreshold`.
 * `boxes` holds N xyxy boxes, `scores` N values. Same result as `torchvision.ops.nms` on CPU.
 */
export function nms(boxes: BoxArray, scores: ArrayLike<number>, iouThreshold: number): Int32Array {
  const n = numBoxes(boxes);
  if (scores.length !== n) throw new RangeError('nms: scores must have one value per box');
  if (iouThreshold < 0) return nmsNegativeThreshold(boxes, scores, iouThreshold);
  const order = sortByScoreDesc(Int32Array.from({ length: n }, (_, i) => i), scores);
  const keep = new Int32Array(n);
  const len = greedy(boxes, areasOf(boxes), order, iouThreshold, new Uint8Array(n), keep, 0);
  return keep.slice(0, len);
}

/** With a negative threshold even disjoint boxes suppress each other; kept rare path, no shortcuts. */
function nmsNegativeThreshold(boxes: BoxArray, scores: ArrayLike<number>, iouThreshold: number): Int32Array {
  const order = sortByScoreDesc(Int32Array.from({ length: scores.length }, (_, i) => i), scores);
  return order.slice(0, Math.min(1, order.length));
}

/**
 * Class-wise NMS: boxes with different `idxs` (class labels) never suppress each other.
 * Returns kept indices by decreasing score. Like torchvision's `batched_nms` on CPU, it uses
 * per-class NMS when there are more than 1000 boxes and the coordinate-offset trick otherwise;
 * both are reproduced so float32 IoU rounding matches. Ties in score are ordered by index.
 */
export function batchedNms(
  boxes: BoxArray,
  scores: ArrayLike<number>,
  idxs: ArrayLike<number>,
  iouThreshold: number,
): Int32Array {
  const n = numBoxes(boxes);
  if (scores.length !== n || idxs.length !== n) throw new RangeError('batchedNms: scores and idxs need one value per box');
  if (n === 0) return new Int32Array(0);
  return boxes.length > 4000 ? batchedNmsPerClass(boxes, scores, idxs, iouThreshold) : batchedNmsOffset(boxes, scores, idxs, iouThreshold);
}

/** torchvision's `_batched_nms_coordinate_trick`: shift each class by label * (max + 1). */
function batchedNmsOffset(boxes: BoxArray, scores: ArrayLike<number>, idxs: ArrayLike<number>, iouThreshold: number): Int32Array {
  let max = -Infinity;
  for (let k = 0; k < boxes.length; k++) if (boxes[k]! > max) max = boxes[k]!;
  const step = f(max + 1);
  const shifted = new Float32Array(boxes.length);
  for (let i = 0; i < idxs.length; i++) {
    const off = f(f(idxs[i]!) * step);
    for (let k = 4 * i; k < 4 * i + 4; k++) shifted[k] = f(boxes[k]! + off);
  }
  return nms(shifted, scores, iouThreshold);
}

/**
 * torchvision's `_batched_nms_vanilla`: NMS per class, then all kept sorted by score.
 * One global sort, then a stable bucket by class, gives every class its own sorted order.
 */
function batchedNmsPerClass(boxes: BoxArray, scores: ArrayLike<number>, idxs: ArrayLike<number>, iouThreshold: number): Int32Array {
  const n = idxs.length;
  const order = sortByScoreDesc(Int32Array.from({ length: n }, (_, i) => i), scores);
  const classIds = Array.from(new Set(Array.from(idxs)));
  const slot = new Map<number, number>(classIds.map((c, s) => [c, s]));
  const counts = new Int32Array(classIds.length + 1);
  for (let i = 0; i < n; i++) counts[slot.get(idxs[i]!)! + 1]!++;
  for (let s = 0; s < classIds.length; s++) counts[s + 1]! += counts[s]!;
  const byClass = new Int32Array(n);
  const fill = counts.slice(0, classIds.length);
  for (const i of order) byClass[fill[slot.get(idxs[i]!)!]!++] = i;

  const areas = areasOf(boxes);
  const suppressed = new Uint8Array(n);
  const keep = new Int32Array(n);
  let len = 0;
  for (let s = 0; s < classIds.length; s++) {
    len = greedy(boxes, areas, byClass.subarray(counts[s]!, counts[s + 1]!), iouThreshold, suppressed, keep, len);
  }
  const kept = new Uint8Array(n);
  for (let k = 0; k < len; k++) kept[keep[k]!] = 1;
  const out = new Int32Array(len);
  let o = 0;
  for (const i of order) if (kept[i] === 1) out[o++] = i;
  return out;
}
