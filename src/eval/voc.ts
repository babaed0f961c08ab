/**
 * Pascal VOC detection AP, following the official devkit (VOCevaldet.m / VOCap.m):
 * greedy matching in score order at IoU >= threshold, VOC's inclusive-pixel box size
 * (+1), `difficult` objects neither rewarded nor penalised, and both the VOC2007
 * 11-point AP and the VOC2010+ area under the interpolated PR curve.
 */
import { EvalInputError } from './errors.js';

/** A VOC box: `[xmin, ymin, xmax, ymax]`, inclusive pixel coordinates as written in VOC XML. */
export type VocBox = readonly [number, number, number, number];

/** One ground-truth object. */
export interface VocObject {
  imageId: string;
  label: string;
  box: VocBox;
  /** Difficult objects are neither required nor penalised. */
  difficult?: boolean;
}

/** One detection. */
export interface VocDetection {
  imageId: string;
  label: string;
  box: VocBox;
  score: number;
}

export interface VocEvalOptions {
  /** Minimum IoU for a true positive (default 0.5, the VOC standard). */
  iouThreshold?: number;
  /** Classes to report, in this order (default: every label seen in the ground truth, sorted). */
  labels?: readonly string[];
}

/** Per-class VOC result. APs are in [0, 1]; -1 when the class has no non-difficult object. */
export interface VocClassResult {
  label: string;
  /** Non-difficult ground-truth objects. */
  numGt: number;
  numDets: number;
  /** True and false positives over all detections (detections on difficult objects count as neither). */
  tp: number;
  fp: number;
  /** VOC2007 11-point interpolated AP. */
  ap11: number;
  /** VOC2010+ area under the monotone PR curve. */
  apArea: number;
  /** Cumulative precision and recall after each detection, in score order (for PR plots). */
  precision: Float64Array;
  recall: Float64Array;
}

export interface VocEvalResult {
  iouThreshold: number;
  perClass: VocClassResult[];
  /** Mean of `ap11` / `apArea` over classes that have ground truth. */
  mAP11: number;
  mAPArea: number;
}

const EPS = 2.220446049250313e-16;

/**
 * Evaluates detections against VOC ground truth. `imageIds`, when given, lists the test
 * images: detections on other images are an error (as in the devkit), and images with no
 * objects still count. Without it, the images are those with ground truth.
 */
export function evaluateVoc(gts: readonly VocObject[], dets: readonly VocDetection[], opts: VocEvalOptions & { imageIds?: readonly string[] } = {}): VocEvalResult {
  const iouThreshold = opts.iouThreshold ?? 0.5;
  const images = new Set<string>(opts.imageIds ?? gts.map((g) => g.imageId));
  const unknown = dets.filter((d) => !images.has(d.imageId));
  if (unknown.length > 0) {
    throw new EvalInputError(`${unknown.length} detection(s) are on images with no ground truth entry (e.g. "${unknown[0]!.imageId}")`);
  }
  const labels = opts.labels ?? [...new Set(gts.map((g) => g.label))].sort();
  const perClass = labels.map((label) =>
    evaluateClass(
      label,
      gts.filter((g) => g.label === label),
      dets.filter((d) => d.label === label),
      iouThreshold,
    ),
  );
  const valid = perClass.filter((c) => c.numGt > 0);
  const mean = (f: (c: VocClassResult) => number): number => (valid.length === 0 ? -1 : valid.reduce((s, c) => s + f(c), 0) / valid.length);
  return { iouThreshold, perClass, mAP11: mean((c) => c.ap11), mAPArea: mean((c) => c.apArea) };
}

function evaluateClass(label: string, gts: readonly VocObject[], dets: readonly VocDetection[], thr: number): VocClassResult {
  const byImage = new Map<string, { boxes: VocBox[]; difficult: boolean[]; used: boolean[] }>();
  let numGt = 0;
  for (const g of gts) {
    let e = byImage.get(g.imageId);
    if (!e) byImage.set(g.imageId, (e = { boxes: [], difficult: [], used: [] }));
    e.boxes.push(g.box);
    e.difficult.push(g.difficult === true);
    e.used.push(false);
    if (!g.difficult) numGt++;
  }
  // Stable descending sort, like MATLAB's sort(-confidence).
  const order = dets.map((_, i) => i).sort((a, b) => dets[b]!.score - dets[a]!.score || a - b);
  const n = order.length;
  const precision = new Float64Array(n);
  const recall = new Float64Array(n);
  let tp = 0, fp = 0;
  for (let s = 0; s < n; s++) {
    const d = dets[order[s]!]!;
    const e = byImage.get(d.imageId);
    let ovmax = -Infinity;
    let jmax = -1;
    if (e) {
      for (let j = 0; j < e.boxes.length; j++) {
        const ov = vocIou(d.box, e.boxes[j]!);
        if (ov > ovmax) {
          ovmax = ov;
          jmax = j;
        }
      }
    }
    if (jmax >= 0 && ovmax >= thr) {
      if (!e!.difficult[jmax]) {
        if (!e!.used[jmax]) {
          tp++;
          e!.used[jmax] = true;
        } else fp++;
      }
    } else fp++;
    recall[s] = tp / numGt;
    precision[s] = tp / Math.max(tp + fp, EPS);
  }
  const has = numGt > 0;
  return {
    label,
    numGt,
    numDets: n,
    tp,
    fp,
    ap11: has ? ap11Point(recall, precision) : -1,
    apArea: has ? apArea(recall, precision) : -1,
    precision,
    recall: has ? recall : new Float64Array(n),
  };
}

/** IoU with VOC's inclusive pixel convention (a box from 1 to 1 is one pixel wide); 0 when disjoint. */
export function vocIou(a: VocBox, b: VocBox): number {
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]) + 1;
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]) + 1;
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const ua = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - inter;
  return inter / ua;
}

/** VOC2007 AP: mean over recall levels 0, 0.1, ..., 1 of the best precision at recall >= level. */
export function ap11Point(recall: ArrayLike<number>, precision: ArrayLike<number>): number {
  let ap = 0;
  for (let i = 0; i <= 10; i++) {
    const t = i / 10;
    let p = 0;
    for (let j = 0; j < recall.length; j++) if (recall[j]! >= t && precision[j]! > p) p = precision[j]!;
    ap += p / 11;
  }
  return ap;
}

/** VOC2010+ AP: area under the precision envelope, summed where recall changes. */
export function apArea(recall: ArrayLike<number>, precision: ArrayLike<number>): number {
  const n = recall.length;
  const mrec = new Float64Array(n + 2);
  const mpre = new Float64Array(n + 2);
  mrec[n + 1] = 1;
  for (let j = 0; j < n; j++) {
    mrec[j + 1] = recall[j]!;
    mpre[j + 1] = precision[j]!;
  }
  for (let i = n; i >= 0; i--) mpre[i] = Math.max(mpre[i]!, mpre[i + 1]!);
  let ap = 0;
  for (let i = 1; i < n + 2; i++) if (mrec[i] !== mrec[i - 1]) ap += (mrec[i]! - mrec[i - 1]!) * mpre[i]!;
  return ap;
}
