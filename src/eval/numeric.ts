/**
 * Numerics that reproduce numpy bit for bit, so our metrics equal pycocotools' exactly
 * rather than merely within rounding.
 */

/** `np.linspace(start, stop, num)` (endpoint included): `i * step + start`, last value forced to `stop`. */
export function linspace(start: number, stop: number, num: number): number[] {
  if (num === 1) return [start];
  const step = (stop - start) / (num - 1);
  const out: number[] = [];
  for (let i = 0; i < num; i++) out.push(i * step + start);
  out[num - 1] = stop;
  return out;
}

/**
 * Sum of `a[from..to)` with numpy's pairwise summation (8-way unrolled blocks of <= 128),
 * which is what `np.sum` / `np.mean` use on contiguous float64 arrays.
 */
export function pairwiseSum(a: ArrayLike<number>, from = 0, to = a.length): number {
  const n = to - from;
  if (n < 8) {
    let res = 0;
    for (let i = from; i < to; i++) res += a[i]!;
    return res;
  }
  if (n <= 128) {
    let r0 = a[from]!, r1 = a[from + 1]!, r2 = a[from + 2]!, r3 = a[from + 3]!;
    let r4 = a[from + 4]!, r5 = a[from + 5]!, r6 = a[from + 6]!, r7 = a[from + 7]!;
    const end = to - (n % 8);
    let i = from + 8;
    for (; i < end; i += 8) {
      r0 += a[i]!; r1 += a[i + 1]!; r2 += a[i + 2]!; r3 += a[i + 3]!;
      r4 += a[i + 4]!; r5 += a[i + 5]!; r6 += a[i + 6]!; r7 += a[i + 7]!;
    }
    let res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7));
    for (; i < to; i++) res += a[i]!;
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwiseSum(a, from, from + n2) + pairwiseSum(a, from + n2, to);
}

/** `np.mean(a[a > -1])`, or -1 when nothing is > -1 (pycocotools' "no data" marker). */
export function meanValid(a: ArrayLike<number>, n = a.length): number {
  return n === 0 ? -1 : pairwiseSum(a, 0, n) / n;
}

/** Sorted, de-duplicated copy of `ids` (`np.unique`). */
export function uniqueSorted(ids: Iterable<number>): number[] {
  const sorted = Float64Array.from(ids).sort();
  const out: number[] = [];
  for (let i = 0; i < sorted.length; i++) if (i === 0 || sorted[i] !== sorted[i - 1]) out.push(sorted[i]!);
  return out;
}
