/**
 * Turns RetinaNet head outputs for one image into detections, as torchvision's
 * `RetinaNet.postprocess_detections`: per level sigmoid > threshold, top-k, decode, clip;
 * then class-wise NMS over all levels and the best `detectionsPerImg`.
 */
import { BBOX_XFORM_CLIP, BoxCoder, type BoxCoderWeights } from './box_coder.js';
import { type ImageSize, clipBoxesInPlace } from './boxes.js';
import { batchedNms } from './nms.js';

const f = Math.fround;

/** Head outputs and anchors of one pyramid level for one image (A_l anchors, K classes). */
export interface LevelOutputs {
  /** Class logits [A_l, K] row-major: location-major, then anchor, then class (torchvision's order). */
  clsLogits: Float32Array;
  /** Box deltas [A_l, 4] in the same anchor order. */
  bboxRegression: Float32Array;
  /** Anchors [A_l, 4] xyxy, from {@link anchorsForImage}. */
  anchors: Float32Array;
}

/** Post-processing settings; defaults are the paper's (torchvision uses 300 detections). */
export interface PostprocessOptions {
  /** Minimum class probability kept. Default 0.05. */
  scoreThresh?: number;
  /** IoU threshold of the class-wise NMS. Default 0.5. */
  nmsThresh?: number;
  /** Candidates kept per level before NMS. Default 1000. */
  topkCandidates?: number;
  /** Detections kept per image. Default 100 (paper); 300 reproduces torchvision. */
  detectionsPerImg?: number;
  /** Box coder weights. Default `[1, 1, 1, 1]`. */
  weights?: BoxCoderWeights;
  /** Clamp on decoded dw/dh. Default log(1000 / 16). */
  bboxXformClip?: number;
}

/** torchvision's `detections_per_img` default, for bit-for-bit comparisons. */
export const TORCHVISION_DETECTIONS_PER_IMG = 300;

/** Detections of one image, sorted by decreasing score. */
export interface Detections {
  /** Boxes [D, 4] xyxy in the (resized, unpadded) input-image pixels, clipped to the image. */
  boxes: Float32Array;
  /** Class probabilities, length D. */
  scores: Float32Array;
  /** Class indices in [0, K), length D. */
  labels: Int32Array;
}

/** Sigmoid with torch's float32 rounding steps (`1 / (1 + exp(-x))`), within 2 ulp of torch. */
export function sigmoid32(x: number): number {
  return f(1 / f(1 + f(Math.exp(-x))));
}

/** k-th largest (1-based) of `values[0..n)`, reordering `values` (quickselect). */
function kthLargest(values: Float32Array, n: number, k: number): number {
  let lo = 0, hi = n - 1;
  const target = k - 1;
  while (lo < hi) {
    const pivot = values[(lo + hi) >>> 1]!;
    let i = lo, j = hi;
    while (i <= j) {
      while (values[i]! > pivot) i++;
      while (values[j]! < pivot) j--;
      if (i <= j) {
        const t = values[i]!;
        values[i++] = values[j]!;
        values[j--] = t;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return values[target]!;
  }
  return values[target]!;
}

/** Scratch buffers grown on demand and shared across calls (post-processing is synchronous). */
let candIdx: Int32Array = new Int32Array(0);
let candScore: Float32Array = new Float32Array(0);
let scratch: Float32Array = new Float32Array(0);

/**
 * Detections for one image from per-level head outputs. `numClasses` is K; `imageSize` is the
 * `[height, width]` the boxes are clipped to (torchvision's `image_sizes` entry).
 * Score ties at the top-k cut and in the final ordering are broken by lower index (torch's
 * `topk`/`sort` leave that unspecified).
 */
export function postprocessDetections(
  levels: readonly LevelOutputs[],
  numClasses: number,
  imageSize: ImageSize,
  opts: PostprocessOptions = {},
): Detections {
  const scoreThresh = opts.scoreThresh ?? 0.05;
  const topk = opts.topkCandidates ?? 1000;
  const coder = new BoxCoder(opts.weights ?? [1, 1, 1, 1], opts.bboxXformClip ?? BBOX_XFORM_CLIP);
  // torch compares the float32 scores with the threshold cast to float32.
  const thresh32 = f(scoreThresh);
  // Prefilter on logits (monotone in the score) so that sigmoid only runs on candidates; the
  // margin absorbs float32 rounding, the exact float32 score comparison decides.
  const logitCut = thresh32 <= 0 ? -Infinity : thresh32 >= 1 ? Infinity : Math.log(thresh32 / (1 - thresh32)) - 1e-3;

  const maxOut = levels.reduce((s, l) => s + Math.min(topk, l.clsLogits.length), 0);
  const boxes = new Float32Array(4 * maxOut);
  const scores = new Float32Array(maxOut);
  const labels = new Int32Array(maxOut);
  let total = 0;

  for (const level of levels) {
    const logits = level.clsLogits;
    if (logits.length !== (level.anchors.length / 4) * numClasses || level.bboxRegression.length !== level.anchors.length) {
      throw new RangeError('postprocessDetections: level outputs do not match its anchors and numClasses');
    }
    const chosen = selectTopk(scanScores(logits, logitCut, thresh32, topk), topk);
    for (const c of chosen) {
      const flat = candIdx[c]!;
      const anchor = (flat / numClasses) | 0;
      coder.decodeAt(level.bboxRegression, anchor, level.anchors, anchor, boxes, total);
      scores[total] = candScore[c]!;
      labels[total++] = flat - anchor * numClasses;
    }
  }
  const levelBoxes = boxes.subarray(0, 4 * total);
  clipBoxesInPlace(levelBoxes, imageSize);
  const keep = batchedNms(levelBoxes, scores.subarray(0, total), labels.subarray(0, total), opts.nmsThresh ?? 0.5);
  const d = Math.min(keep.length, opts.detectionsPerImg ?? 100);
  const out: Detections = { boxes: new Float32Array(4 * d), scores: new Float32Array(d), labels: new Int32Array(d) };
  for (let k = 0; k < d; k++) {
    const i = keep[k]!;
    out.boxes.set(levelBoxes.subarray(4 * i, 4 * i + 4), 4 * k);
    out.scores[k] = scores[i]!;
    out.labels[k] = labels[i]!;
  }
  return out;
}

/** Logits scanned per chunk; buffers only ever need room for the candidates plus one chunk. */
const SCAN_CHUNK = 1 << 16;

/**
 * Fills candIdx/candScore with the (flat index, score) of the logits whose float32 sigmoid
 * exceeds `thresh32` and that can still be among the best `k`, in index order; returns the
 * count. An untrained or badly calibrated model can put half of its millions of logits above
 * the threshold, and `Math.exp` on each was most of the post-processing time: the scan keeps
 * indices only, and raises its cut as it goes (a streaming top-k).
 *
 * Whenever the kept indices pass 4k, the k-th largest of their logits, L, is found: k logits
 * seen are >= L, so their scores are >= sigmoid32(L) and, when that passes the threshold, the
 * k-th best score is too. A logit `lo` with sigmoid32(lo) < sigmoid32(L) (sigmoid32 is
 * monotone) then becomes the cut: whatever it drops scores below k others, and every tie at
 * the final cut is kept, so the choice (ties to the lower index) is the one made over all
 * candidates. Only the survivors get a sigmoid, at the end.
 */
function scanScores(logits: Float32Array, logitCut: number, thresh32: number, k: number): number {
  const compactAt = Math.max(4 * k, 4096);
  let cut = logitCut;
  let n = 0;
  for (let from = 0; from < logits.length; from += SCAN_CHUNK) {
    const to = Math.min(logits.length, from + SCAN_CHUNK);
    ensureCandidates(n + (to - from));
    n = collectChunk(logits, from, to, cut, n);
    if (n > compactAt) {
      const raised = raiseCut(logits, n, k, thresh32, cut);
      if (raised > cut) {
        cut = raised;
        n = keepAbove(logits, n, cut);
      }
    }
  }
  return scoreCandidates(logits, n, cut, thresh32);
}

/** A cut above which the best k of the n kept candidates are sure to lie (see scanScores); `cut` if none is higher. */
function raiseCut(logits: Float32Array, n: number, k: number, thresh32: number, cut: number): number {
  if (scratch.length < n) scratch = new Float32Array(candIdx.length);
  for (let j = 0; j < n; j++) scratch[j] = logits[candIdx[j]!]!;
  const kth = kthLargest(scratch, n, k);
  const s = sigmoid32(kth);
  if (!(s > thresh32)) return cut;
  let step = 1e-6 * (1 + Math.abs(kth));
  for (let i = 0; i < 64; i++, step *= 2) {
    const lo = kth - step;
    if (sigmoid32(lo) < s) return Math.max(cut, lo);
  }
  return cut;
}

/** Compacts candIdx[0..n) to the indices whose logit is above `cut`; returns the new count. */
function keepAbove(logits: Float32Array, n: number, cut: number): number {
  const idx = candIdx;
  let m = 0;
  for (let j = 0; j < n; j++) {
    const i = idx[j]!;
    if (logits[i]! > cut) idx[m++] = i;
  }
  return m;
}

/**
 * The scan's hot loop: appends the indices of the logits above the cut. Kept free of capacity
 * checks (the caller makes room per chunk; checks made it ~40% slower) and in a function of its
 * own so V8 optimises it directly rather than through on-stack replacement.
 */
function collectChunk(logits: Float32Array, from: number, to: number, cut: number, n: number): number {
  const idx = candIdx;
  for (let i = from; i < to; i++) if (logits[i]! > cut) idx[n++] = i;
  return n;
}

/** Compacts candIdx[0..n) to the candidates above `lo` whose score passes the threshold, their scores in candScore. */
function scoreCandidates(logits: Float32Array, n: number, lo: number, thresh32: number): number {
  const idx = candIdx, score = candScore;
  let m = 0;
  for (let j = 0; j < n; j++) {
    const i = idx[j]!;
    const x = logits[i]!;
    if (x > lo) {
      const s = sigmoid32(x);
      if (s > thresh32) {
        idx[m] = i;
        score[m++] = s;
      }
    }
  }
  return m;
}

function ensureCandidates(need: number): void {
  if (candIdx.length >= need) return;
  const cap = Math.max(need, 2 * candIdx.length);
  const idx = new Int32Array(cap);
  idx.set(candIdx);
  const score = new Float32Array(cap);
  score.set(candScore);
  candIdx = idx;
  candScore = score;
}

/**
 * Positions (into candIdx/candScore[0..n)) of the top-k candidates, best first; ties by lower
 * flat index. Quickselect finds the cut score, so only k candidates get sorted.
 */
function selectTopk(n: number, k: number): Int32Array {
  let chosen: Int32Array;
  if (n <= k) {
    chosen = Int32Array.from({ length: n }, (_, i) => i);
  } else {
    if (scratch.length < n) scratch = new Float32Array(candScore.length);
    scratch.set(candScore.subarray(0, n));
    const cut = kthLargest(scratch, n, k);
    chosen = new Int32Array(k);
    let m = 0;
    for (let i = 0; i < n; i++) if (candScore[i]! > cut) chosen[m++] = i;
    // candIdx is ascending, so filling with ties in scan order prefers lower indices.
    for (let i = 0; i < n && m < k; i++) if (candScore[i] === cut) chosen[m++] = i;
  }
  return chosen.sort((a, b) => candScore[b]! - candScore[a]! || a - b);
}
