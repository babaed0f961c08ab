/**
 * Anchor-to-ground-truth matching with torchvision's `Matcher` semantics
 * (IoU >= high: foreground, < low: background, in between: ignored, plus low-quality matches).
 */

/** Matched index of an anchor whose best IoU is below the low threshold (background). */
export const BELOW_LOW_THRESHOLD = -1;
/** Matched index of an anchor whose best IoU is in [low, high) (ignored by the losses). */
export const BETWEEN_THRESHOLDS = -2;

/** Matcher thresholds; RetinaNet uses 0.5 / 0.4 with low-quality matches. */
export interface MatcherOptions {
  /** IoU at or above which an anchor is foreground. Default 0.5. */
  highThreshold?: number;
  /** IoU below which an anchor is background. Default 0.4. */
  lowThreshold?: number;
  /** Give each gt box its best anchor(s) even when their IoU is below `highThreshold`. Default true. */
  allowLowQualityMatches?: boolean;
}

/**
 * Sparse IoU between gt boxes and anchors: for gt j, the anchors it overlaps (IoU > 0) are
 * `anchor[start[j] .. start[j+1])` with IoUs `iou[same range]`. Every absent pair has IoU 0.
 */
export interface SparseIou {
  readonly numGt: number;
  readonly numAnchors: number;
  readonly start: Int32Array;
  readonly anchor: Int32Array;
  readonly iou: Float32Array;
  /**
   * True when pairs that cannot decide a match were left out (IoU below the low threshold and
   * below the gt's best), so an anchor's stored argmax is only exact where its IoU >= low.
   */
  readonly pruned?: boolean;
}

function resolve(opts: MatcherOptions): Required<MatcherOptions> {
  const high = opts.highThreshold ?? 0.5;
  const low = opts.lowThreshold ?? 0.4;
  if (low > high) throw new RangeError('matcher: lowThreshold must be <= highThreshold');
  return { highThreshold: high, lowThreshold: low, allowLowQualityMatches: opts.allowLowQualityMatches ?? true };
}

function classify(best: Float32Array, argmax: Int32Array, o: Required<MatcherOptions>): Int32Array {
  const matches = new Int32Array(best.length);
  for (let i = 0; i < best.length; i++) {
    const v = best[i]!;
    matches[i] = v < o.lowThreshold ? BELOW_LOW_THRESHOLD : v < o.highThreshold ? BETWEEN_THRESHOLDS : argmax[i]!;
  }
  return matches;
}

/**
 * Matches from a dense IoU matrix, row-major [M gt, N anchors] (as from `boxIou(gt, anchors)`):
 * `Int32Array(N)` of gt indices or {@link BELOW_LOW_THRESHOLD} / {@link BETWEEN_THRESHOLDS}.
 * Ties go to the lowest gt index; low-quality matching includes every anchor tied for a gt's
 * best IoU. Exactly torchvision's `Matcher.__call__`, except that a gt whose best IoU is 0
 * does not trigger low-quality matching (torchvision would then mark every anchor that
 * misses it as foreground).
 */
export function matchDense(iou: Float32Array, numGt: number, numAnchors: number, opts: MatcherOptions = {}): Int32Array {
  const o = resolve(opts);
  if (iou.length !== numGt * numAnchors) throw new RangeError('matchDense: iou must be numGt x numAnchors');
  if (numGt === 0) return new Int32Array(numAnchors).fill(BELOW_LOW_THRESHOLD);
  const best = new Float32Array(numAnchors);
  const argmax = new Int32Array(numAnchors);
  best.set(iou.subarray(0, numAnchors));
  for (let j = 1; j < numGt; j++) {
    const row = j * numAnchors;
    for (let i = 0; i < numAnchors; i++) {
      if (iou[row + i]! > best[i]!) {
        best[i] = iou[row + i]!;
        argmax[i] = j;
      }
    }
  }
  const matches = classify(best, argmax, o);
  if (o.allowLowQualityMatches) {
    for (let j = 0; j < numGt; j++) {
      const row = iou.subarray(j * numAnchors, (j + 1) * numAnchors);
      let highest = 0;
      for (let i = 0; i < numAnchors; i++) if (row[i]! > highest) highest = row[i]!;
      if (!(highest > 0)) continue;
      for (let i = 0; i < numAnchors; i++) if (row[i] === highest) matches[i] = argmax[i]!;
    }
  }
  return matches;
}

/**
 * {@link matchDense} on a sparse IoU (pairs with IoU 0 left out); same result, O(pairs).
 * For a `pruned` IoU, `exactArgmax(anchor)` must give the anchor's argmax over all gt boxes;
 * it is called only for low-quality matches whose best stored IoU is below the low threshold.
 */
export function matchSparse(s: SparseIou, opts: MatcherOptions = {}, exactArgmax?: (anchor: number) => number): Int32Array {
  if (s.pruned && !exactArgmax) throw new TypeError('matchSparse: a pruned SparseIou needs exactArgmax');
  const o = resolve(opts);
  const n = s.numAnchors;
  if (s.numGt === 0) return new Int32Array(n).fill(BELOW_LOW_THRESHOLD);
  // Missing pairs are IoU 0, so "best 0, argmax gt 0" is torch's max() over an all-zero column.
  const best = new Float32Array(n);
  const argmax = new Int32Array(n);
  for (let j = 0; j < s.numGt; j++) {
    for (let p = s.start[j]!; p < s.start[j + 1]!; p++) {
      const a = s.anchor[p]!;
      if (s.iou[p]! > best[a]!) {
        best[a] = s.iou[p]!;
        argmax[a] = j;
      }
    }
  }
  const matches = classify(best, argmax, o);
  if (o.allowLowQualityMatches) {
    for (let j = 0; j < s.numGt; j++) {
      const lo = s.start[j]!, hi = s.start[j + 1]!;
      let highest = 0;
      for (let p = lo; p < hi; p++) if (s.iou[p]! > highest) highest = s.iou[p]!;
      if (!(highest > 0)) continue;
      for (let p = lo; p < hi; p++) {
        if (s.iou[p] !== highest) continue;
        const a = s.anchor[p]!;
        matches[a] = s.pruned && best[a]! < o.lowThreshold ? exactArgmax!(a) : argmax[a]!;
      }
    }
  }
  return matches;
}
