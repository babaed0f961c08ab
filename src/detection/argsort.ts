/**
 * Stable descending argsort of float32 scores (ties keep ascending index order, the order
 * torchvision's NMS kernel uses). An LSD radix sort on the float bit patterns: a comparator
 * sort of 10k indices costs more than the NMS itself.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const RADIX_BITS = 11;
const BUCKETS = 1 << RADIX_BITS;
const counts = new Int32Array(BUCKETS);

/** Scratch buffers reused across calls (sorting is synchronous). */
let keysA = new Uint32Array(0);
let keysB = new Uint32Array(0);
let idxB = new Int32Array(0);

/**
 * Sorts `idx` in place by descending `scores[idx[k]]`; equal scores keep their relative order
 * in `idx` (pass indices ascending to break ties by index). NaN scores are not supported.
 */
export function argsortDesc(scores: ArrayLike<number>, idx: Int32Array): Int32Array {
  const n = idx.length;
  if (n < 64) return insertionSortDesc(scores, idx);
  if (!(scores instanceof Float32Array)) {
    // float64 scores may differ below float32 precision; keep exact comparisons for them.
    const pos = new Int32Array(n);
    for (let k = 0; k < n; k++) pos[k] = k;
    const src = idx.slice();
    pos.sort((a, b) => scores[src[b]!]! - scores[src[a]!]! || a - b);
    for (let k = 0; k < n; k++) idx[k] = src[pos[k]!]!;
    return idx;
  }
  if (keysA.length < n) {
    keysA = new Uint32Array(n);
    keysB = new Uint32Array(n);
    idxB = new Int32Array(n);
  }
  for (let k = 0; k < n; k++) {
    f32[0] = scores[idx[k]!]!;
    const b = u32[0]!;
    // Map to an unsigned key increasing with the float, then complement for descending order;
    // -0 and +0 must collide, as they compare equal.
    const asc = b === 0x80000000 ? 0x80000000 : b & 0x80000000 ? ~b >>> 0 : (b | 0x80000000) >>> 0;
    keysA[k] = ~asc >>> 0;
  }
  let kIn: Uint32Array = keysA, kOut: Uint32Array = keysB, iIn: Int32Array = idx, iOut: Int32Array = idxB;
  for (let shift = 0; shift < 32; shift += RADIX_BITS) {
    counts.fill(0);
    for (let k = 0; k < n; k++) counts[(kIn[k]! >>> shift) & (BUCKETS - 1)]!++;
    let sum = 0;
    for (let b = 0; b < BUCKETS; b++) {
      const c = counts[b]!;
      counts[b] = sum;
      sum += c;
    }
    for (let k = 0; k < n; k++) {
      const p = counts[(kIn[k]! >>> shift) & (BUCKETS - 1)]!++;
      kOut[p] = kIn[k]!;
      iOut[p] = iIn[k]!;
    }
    [kIn, kOut] = [kOut, kIn];
    [iIn, iOut] = [iOut, iIn];
  }
  // Three passes (odd): the result sits in the scratch buffer.
  if (iIn !== idx) idx.set(iIn.subarray(0, n));
  return idx;
}

/** Stable insertion sort by descending score, for short runs where radix passes cost more. */
function insertionSortDesc(scores: ArrayLike<number>, idx: Int32Array): Int32Array {
  for (let k = 1; k < idx.length; k++) {
    const v = idx[k]!;
    const s = scores[v]!;
    let p = k - 1;
    while (p >= 0 && scores[idx[p]!]! < s) {
      idx[p + 1] = idx[p]!;
      p--;
    }
    idx[p + 1] = v;
  }
  return idx;
}

/** `[0, 1, ..., n - 1]` as an Int32Array. */
export function iota(n: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  return out;
}
