/**
 * Greedy non-maximum suppression on flat xyxy box arrays, reproducing torchvision's CPU `nms`
 * kernel and `batched_nms` (including which of its two strategies it picks), in float32.
 */
import { argsortDesc, iota } from './argsort.js';
import { type BoxArray, numBoxes } from './boxes.js';

const f = Math.fround;

/** Structure-of-arrays scratch space for one greedy pass, grown on demand. */
let sx1 = new Float32Array(0), sy1 = new Float32Array(0), sx2 = new Float32Array(0), sy2 = new Float32Array(0);
let sArea = new Float32Array(0);
let sDead = new Uint8Array(0);

/**
 * Greedy suppression over `order` (already sorted best first); appends kept indices to `keep`
 * from `keepLen` on and returns the new length. `areas` is indexed like `boxes`. Coordinates are
 * first gathered in `order` so the O(n * kept) inner loop reads memory sequentially.
 */
function greedy(boxes: BoxArray, areas: Float32Array, order: Int32Array, iouThreshold: number, keep: Int32Array, keepLen: number): number {
  const n = order.length;
  if (sx1.length < n) {
    const cap = Math.max(n, 2 * sx1.length);
    sx1 = new Float32Array(cap); sy1 = new Float32Array(cap); sx2 = new Float32Array(cap); sy2 = new Float32Array(cap);
    sArea = new Float32Array(cap);
    sDead = new Uint8Array(cap);
  }
  const x1 = sx1, y1 = sy1, x2 = sx2, y2 = sy2, area = sArea, dead = sDead;
  for (let a = 0; a < n; a++) {
    const o = 4 * order[a]!;
    x1[a] = boxes[o]!; y1[a] = boxes[o + 1]!; x2[a] = boxes[o + 2]!; y2[a] = boxes[o + 3]!;
    area[a] = areas[order[a]!]!;
    dead[a] = 0;
  }
  for (let a = 0; a < n; a++) {
    if (dead[a] === 1) continue;
    keep[keepLen++] = order[a]!;
    const ix1 = x1[a]!, iy1 = y1[a]!, ix2 = x2[a]!, iy2 = y2[a]!, iarea = area[a]!;
    for (let b = a + 1; b < n; b++) {
      if (dead[b] === 1) continue;
      const w = f(Math.min(ix2, x2[b]!) - Math.max(ix1, x1[b]!));
      if (!(w > 0)) continue;
      const h = f(Math.min(iy2, y2[b]!) - Math.max(iy1, y1[b]!));
      if (!(h > 0)) continue;
      const inter = f(w * h);
      // Zero overlap can never exceed a non-negative threshold, hence the early continues.
      if (f(inter / f(f(iarea + area[b]!) - inter)) > iouThreshold) dead[b] = 1;
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
 * `boxes` holds N xyxy boxes, `scores` N values (not NaN). Same result as `torchvision.ops.nms`
 * on CPU for float32 boxes; float64 input is rounded to float32 like everything in this module.
 */
export function nms(boxes: BoxArray, scores: ArrayLike<number>, iouThreshold: number): Int32Array {
  const n = numBoxes(boxes);
  if (scores.length !== n) throw new RangeError('nms: scores must have one value per box');
  if (iouThreshold < 0) return bestOnly(scores);
  const order = argsortDesc(scores, iota(n));
  const keep = new Int32Array(n);
  const len = greedy(boxes, areasOf(boxes), order, iouThreshold, keep, 0);
  return keep.slice(0, len);
}

/**
 * A negative threshold is exceeded by every IoU (even 0), so the best box suppresses all the
 * others; handled apart because the greedy loop skips non-overlapping pairs.
 */
function bestOnly(scores: ArrayLike<number>): Int32Array {
  const order = argsortDesc(scores, iota(scores.length));
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
  const order = argsortDesc(scores, iota(n));
  const { byClass, bounds } = bucketByClass(order, classSlots(idxs));
  const areas = areasOf(boxes);
  const keep = new Int32Array(n);
  let len = 0;
  for (let s = 0; s + 1 < bounds.length; s++) {
    if (bounds[s + 1]! > bounds[s]!) len = greedy(boxes, areas, byClass.subarray(bounds[s]!, bounds[s + 1]!), iouThreshold, keep, len);
  }
  return keptInOrder(order, keep, len);
}

// The helpers below are separate functions on purpose: V8 optimises short functions up front,
// whereas a long function with several hot loops keeps deoptimising after on-stack replacement.

/** Stable bucket of `order` by class slot: class s occupies byClass[bounds[s] .. bounds[s+1]). */
function bucketByClass(order: Int32Array, slots: { slot: Int32Array; numSlots: number }): { byClass: Int32Array; bounds: Int32Array } {
  const n = order.length;
  const { slot, numSlots } = slots;
  const bounds = new Int32Array(numSlots + 1);
  for (let i = 0; i < n; i++) bounds[slot[i]! + 1]!++;
  for (let s = 0; s < numSlots; s++) bounds[s + 1]! += bounds[s]!;
  const fill = bounds.slice(0, numSlots);
  const byClass = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    const i = order[k]!;
    byClass[fill[slot[i]!]!++] = i;
  }
  return { byClass, bounds };
}

/** The kept indices (keep[0..len)) listed in `order`. */
function keptInOrder(order: Int32Array, keep: Int32Array, len: number): Int32Array {
  const kept = new Uint8Array(order.length);
  for (let k = 0; k < len; k++) kept[keep[k]!] = 1;
  const out = new Int32Array(len);
  let o = 0;
  for (let k = 0; k < order.length; k++) if (kept[order[k]!] === 1) out[o++] = order[k]!;
  return out;
}

/** Dense slot per box for its class label (labels are usually small non-negative integers). */
function classSlots(idxs: ArrayLike<number>): { slot: Int32Array; numSlots: number } {
  const n = idxs.length;
  const slot = new Int32Array(n);
  let min = Infinity, max = -Infinity, integral = true;
  for (let i = 0; i < n; i++) {
    const v = idxs[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
    if (!Number.isInteger(v)) integral = false;
  }
  if (integral && max - min <= 4 * n + 1024) {
    for (let i = 0; i < n; i++) slot[i] = idxs[i]! - min;
    return { slot, numSlots: max - min + 1 };
  }
  const map = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    let s = map.get(idxs[i]!);
    if (s === undefined) map.set(idxs[i]!, (s = map.size));
    slot[i] = s;
  }
  return { slot, numSlots: map.size };
}
