/**
 * What a user looks at after an evaluation, computed on top of the COCO evaluator's matching:
 * precision, recall and F1 against the score threshold (with the best threshold), the confusion
 * matrix with a background row and column (mmdetection's `confusion_matrix.py`), per-image
 * misses, and the COCO error analysis C75 / C50 / Loc / Sim / Oth / BG / FN of the COCO API's
 * `analyze` as mmdetection's `coco_error_analysis.py` reproduces it.
 */
import { COCO_AREA_LABELS, COCO_REC_THRS, TP, FP, runCocoEval } from './coco.js';
import { uniqueSorted } from './numeric.js';
import type { CocoAnnotation, CocoDataset, CocoResult } from './types.js';

/** Precision, recall and F1 of one class (or their mean over classes) at each score threshold. */
export interface ScoreCurve {
  /** Class name, or 'all classes' for the mean. */
  name: string;
  /** NaN where no detection scores at or above the threshold. */
  precision: Float64Array;
  recall: Float64Array;
  f1: Float64Array;
}

export interface ScoreCurves {
  iouThreshold: number;
  /** The score thresholds, ascending (0, 0.01, ..., 1 by default). */
  thresholds: number[];
  /** Classes with ground truth, in category order. */
  perClass: ScoreCurve[];
  /** Mean over `perClass` at each threshold (NaN entries left out of the mean). */
  overall: ScoreCurve;
  /** Threshold of the highest mean F1 (the lowest such threshold on ties), and that F1. */
  best: { threshold: number; f1: number; precision: number; recall: number };
}

/**
 * P, R and F1 against the score threshold at one IoU threshold (default 0.5), area "all", up to
 * 100 detections per image and class, from the COCO matching (a detection matching a crowd
 * region counts neither way): P(s) = TP/(TP+FP) and R(s) = TP/gts over the detections scoring
 * >= s.
 */
export function scoreCurves(gt: CocoDataset, dets: readonly CocoResult[], opts: { iouThreshold?: number; thresholds?: readonly number[]; catIds?: readonly number[] } = {}): ScoreCurves {
  const iouThreshold = opts.iouThreshold ?? 0.5;
  const thresholds = [...(opts.thresholds ?? Array.from({ length: 101 }, (_, i) => i / 100))];
  const run = runCocoEval(gt, dets, { maxDets: [100], catIds: opts.catIds }, [iouThreshold]);
  const { evaluated, shape, params, catName } = run;
  const { A, T } = shape;
  const S = thresholds.length;
  const perClass: ScoreCurve[] = [];
  params.catIds.forEach((id, k) => {
    const npig = evaluated.npig[k * A]!;
    if (npig === 0) return;
    const from = evaluated.catKeptStart[k]!, to = evaluated.catKeptStart[k + 1]!;
    const tp: number[] = [];
    const fp: number[] = [];
    for (let p = from; p < to; p++) {
      const st = evaluated.keptStatus[p * A * T]!; // area all, the one threshold
      if (st === TP) tp.push(evaluated.keptScore[p]!);
      else if (st === FP) fp.push(evaluated.keptScore[p]!);
    }
    tp.sort((a, b) => a - b);
    fp.sort((a, b) => a - b);
    const c: ScoreCurve = { name: catName.get(id) ?? String(id), precision: new Float64Array(S), recall: new Float64Array(S), f1: new Float64Array(S) };
    for (let j = 0; j < S; j++) {
      const nt = tp.length - lowerBound(tp, thresholds[j]!);
      const nf = fp.length - lowerBound(fp, thresholds[j]!);
      const p = nt + nf > 0 ? nt / (nt + nf) : NaN;
      const r = nt / npig;
      c.precision[j] = p;
      c.recall[j] = r;
      c.f1[j] = Number.isNaN(p) || p + r === 0 ? 0 : (2 * p * r) / (p + r);
    }
    perClass.push(c);
  });
  const mean = (pick: (c: ScoreCurve) => Float64Array): Float64Array =>
    Float64Array.from(thresholds, (_, j) => {
      let s = 0, n = 0;
      for (const c of perClass) {
        const v = pick(c)[j]!;
        if (!Number.isNaN(v)) {
          s += v;
          n++;
        }
      }
      return n === 0 ? NaN : s / n;
    });
  const overall: ScoreCurve = { name: 'all classes', precision: mean((c) => c.precision), recall: mean((c) => c.recall), f1: mean((c) => c.f1) };
  let bj = 0;
  for (let j = 1; j < S; j++) if (overall.f1[j]! > overall.f1[bj]!) bj = j;
  return {
    iouThreshold,
    thresholds,
    perClass,
    overall,
    best: { threshold: thresholds[bj]!, f1: Number.isNaN(overall.f1[bj]!) ? 0 : overall.f1[bj]!, precision: overall.precision[bj]!, recall: overall.recall[bj]! },
  };
}

function lowerBound(sorted: readonly number[], v: number): number {
  let lo = 0, hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** How one image fared at the confusion matrix's score and IoU thresholds. */
export interface ImageOutcome {
  imageId: number;
  /** Non-crowd ground-truth boxes. */
  gts: number;
  /** Ground-truth boxes no detection of their class matched (false negatives). */
  missed: number;
  /** Detections kept (score >= threshold). */
  dets: number;
  /** Kept detections that matched no ground truth (background false positives). */
  background: number;
  /** Matches of a detection to a ground-truth box of another class. */
  confused: number;
  /** Annotation ids of the missed boxes. */
  missedIds: number[];
}

export interface ConfusionMatrix {
  /** Class names, then 'background'. */
  labels: string[];
  catIds: number[];
  /** [K + 1][K + 1] counts: row = ground truth (last: background), column = prediction (last: missed). */
  counts: number[][];
  scoreThreshold: number;
  iouThreshold: number;
  perImage: ImageOutcome[];
}

/**
 * mmdetection's confusion matrix: for each kept detection (score >= `scoreThreshold`), every
 * ground-truth box with IoU >= `iouThreshold` adds one to (gt class, detected class) — a match
 * of its own class makes that box a true positive; a detection that overlaps no box adds one to
 * (background, detected class); a box that no detection of its class matched adds one to
 * (gt class, background). Crowd regions are left out: a detection covering one (intersection
 * over the detection's area >= the threshold) and nothing else counts nowhere. IoU without the
 * +1 pixel, as mmdetection's `bbox_overlaps`.
 */
export function confusionMatrix(gt: CocoDataset, dets: readonly CocoResult[], opts: { scoreThreshold: number; iouThreshold?: number; catIds?: readonly number[] }): ConfusionMatrix {
  const iouThreshold = opts.iouThreshold ?? 0.5;
  const catIds = uniqueSorted(opts.catIds ?? gt.categories.map((c) => c.id));
  const K = catIds.length;
  const catIndex = new Map(catIds.map((id, k) => [id, k] as const));
  const name = new Map(gt.categories.map((c) => [c.id, c.name] as const));
  const counts = Array.from({ length: K + 1 }, () => new Array<number>(K + 1).fill(0));
  const gtsByImage = new Map<number, CocoAnnotation[]>();
  for (const a of gt.annotations) {
    if (!catIndex.has(a.category_id)) continue;
    let l = gtsByImage.get(a.image_id);
    if (!l) gtsByImage.set(a.image_id, (l = []));
    l.push(a);
  }
  const detsByImage = new Map<number, CocoResult[]>();
  for (const d of dets) {
    if (!catIndex.has(d.category_id) || !(d.score >= opts.scoreThreshold)) continue;
    let l = detsByImage.get(d.image_id);
    if (!l) detsByImage.set(d.image_id, (l = []));
    l.push(d);
  }
  const perImage: ImageOutcome[] = [];
  for (const img of gt.images) {
    const all = gtsByImage.get(img.id) ?? [];
    const real = all.filter((a) => !a.iscrowd);
    const crowd = all.filter((a) => a.iscrowd);
    const ds = detsByImage.get(img.id) ?? [];
    const matchedOwn = new Uint8Array(real.length);
    const o: ImageOutcome = { imageId: img.id, gts: real.length, missed: 0, dets: ds.length, background: 0, confused: 0, missedIds: [] };
    for (const d of ds) {
      const dk = catIndex.get(d.category_id)!;
      let matches = 0;
      real.forEach((g, j) => {
        if (boxIou(d.bbox, g.bbox, false) < iouThreshold) return;
        matches++;
        const gk = catIndex.get(g.category_id)!;
        counts[gk]![dk]!++;
        if (gk === dk) matchedOwn[j] = 1;
        else o.confused++;
      });
      if (matches === 0 && !crowd.some((g) => boxIou(d.bbox, g.bbox, true) >= iouThreshold)) {
        counts[K]![dk]!++;
        o.background++;
      }
    }
    real.forEach((g, j) => {
      if (matchedOwn[j]) return;
      counts[catIndex.get(g.category_id)!]![K]!++;
      o.missed++;
      o.missedIds.push(g.id);
    });
    perImage.push(o);
  }
  return { labels: [...catIds.map((id) => name.get(id) ?? String(id)), 'background'], catIds, counts, scoreThreshold: opts.scoreThreshold, iouThreshold, perImage };
}

/** IoU of two COCO [x, y, w, h] boxes; `crowd`: intersection over the first box's area. */
function boxIou(a: readonly number[], b: readonly number[], crowd: boolean): number {
  const w = Math.min(a[0]! + a[2]!, b[0]! + b[2]!) - Math.max(a[0]!, b[0]!);
  const h = Math.min(a[1]! + a[3]!, b[1]! + b[3]!) - Math.max(a[1]!, b[1]!);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  const u = crowd ? a[2]! * a[3]! : a[2]! * a[3]! + b[2]! * b[3]! - inter;
  return u > 0 ? inter / u : 0;
}

/** The seven precision curves of the error analysis, from the strictest to "every error removed". */
export const ERROR_TYPES = ['C75', 'C50', 'Loc', 'Sim', 'Oth', 'BG', 'FN'] as const;
export type ErrorType = (typeof ERROR_TYPES)[number];

/** Precision curves of one class (or the mean over classes) per error type and area range. */
export interface ErrorCurves {
  name: string;
  /** Non-crowd ground truth per area range (all, small, medium, large). */
  numGt: number[];
  /** curves[type][area]: precision at the 101 recall points. */
  curves: Float64Array[][];
  /** ap[type][area]: the mean of that curve (the area under it). */
  ap: number[][];
}

export interface ErrorAnalysis {
  recall: readonly number[];
  areaLabels: readonly string[];
  perClass: ErrorCurves[];
  /** Mean over the classes that have ground truth in each area range. */
  overall: ErrorCurves;
}

/**
 * The COCO API's `analyze` (Hoiem-style error analysis), computed with this package's COCO
 * evaluator at maxDets 100, as mmdetection's `coco_error_analysis.py` does it:
 * - C75, C50, Loc: PR at IoU 0.75, 0.5 and 0.1;
 * - Sim: at IoU 0.1, detections of class k on ground truth of another class of k's
 *   supercategory no longer count as false positives (those boxes become class-k crowd regions);
 * - Oth: the same with every other class (all class confusions removed);
 * - BG: every false positive removed (precision 1 wherever Oth reaches a recall);
 * - FN: every false negative removed too (precision 1).
 * -1 (nothing to measure) reads 0, as there. mmdetection's Sim step leaves the supercategory
 * out (its Sim equals Loc); here it is the COCO API's. Categories without a `supercategory`
 * have no similar classes. The overall curves average the classes that have ground truth in
 * the area range (mmdetection averages every class, counting absent ones as 0).
 */
export function errorAnalysis(gt: CocoDataset, dets: readonly CocoResult[], opts: { catIds?: readonly number[] } = {}): ErrorAnalysis {
  const catIds = uniqueSorted(opts.catIds ?? gt.categories.map((c) => c.id));
  const base = runCocoEval(gt, dets, { maxDets: [100], catIds }, [0.75, 0.5, 0.1]);
  const superOf = new Map(gt.categories.map((c) => [c.id, c.supercategory] as const));
  const catSet = new Set(catIds);
  // Which (image, category) pairs have detections: only there can a relabelled box change anything.
  const detPairs = new Set<string>();
  for (const d of dets) if (catSet.has(d.category_id)) detPairs.add(`${d.image_id}:${d.category_id}`);
  let nextId = 1;
  for (const a of gt.annotations) nextId = Math.max(nextId, a.id + 1);
  const relabelled = (similarOnly: boolean): CocoDataset => {
    const extra: CocoAnnotation[] = [];
    for (const a of gt.annotations) {
      for (const k of catIds) {
        if (k === a.category_id || !detPairs.has(`${a.image_id}:${k}`)) continue;
        if (similarOnly) {
          const sa = superOf.get(a.category_id);
          if (sa === undefined || sa !== superOf.get(k)) continue;
        }
        extra.push({ id: nextId + extra.length, image_id: a.image_id, category_id: k, bbox: a.bbox, area: a.area, iscrowd: 1 });
      }
    }
    return { images: gt.images, categories: gt.categories, annotations: extra.length === 0 ? gt.annotations : [...gt.annotations, ...extra] };
  };
  const sim = runCocoEval(relabelled(true), dets, { maxDets: [100], catIds }, [0.1]);
  const oth = runCocoEval(relabelled(false), dets, { maxDets: [100], catIds }, [0.1]);
  const { R, K, A } = base.shape;
  // precision arrays are [T, R, K, A, M=1].
  const at = (p: Float64Array, T: number, t: number, r: number, k: number, a: number): number => {
    void T;
    const v = p[((t * R + r) * K + k) * A + a]!;
    return v === -1 ? 0 : v;
  };
  const perClass: ErrorCurves[] = catIds.map((id, k) => {
    const curves = ERROR_TYPES.map((type) =>
      COCO_AREA_LABELS.map((_, a) =>
        Float64Array.from({ length: R }, (_, r) => {
          switch (type) {
            case 'C75': return at(base.precision, 3, 0, r, k, a);
            case 'C50': return at(base.precision, 3, 1, r, k, a);
            case 'Loc': return at(base.precision, 3, 2, r, k, a);
            case 'Sim': return at(sim.precision, 1, 0, r, k, a);
            case 'Oth': return at(oth.precision, 1, 0, r, k, a);
            case 'BG': return at(oth.precision, 1, 0, r, k, a) > 0 ? 1 : 0;
            case 'FN': return 1;
          }
        }),
      ),
    );
    return { name: base.catName.get(id) ?? String(id), numGt: COCO_AREA_LABELS.map((_, a) => base.evaluated.npig[k * A + a]!), curves, ap: curves.map((byArea) => byArea.map(meanOf)) };
  });
  const overallCurves = ERROR_TYPES.map((_, ti) =>
    COCO_AREA_LABELS.map((_, a) => {
      const withGt = perClass.filter((c) => c.numGt[a]! > 0);
      return Float64Array.from({ length: R }, (_, r) => (withGt.length === 0 ? 0 : withGt.reduce((s, c) => s + c.curves[ti]![a]![r]!, 0) / withGt.length));
    }),
  );
  const overall: ErrorCurves = {
    name: 'all classes',
    numGt: COCO_AREA_LABELS.map((_, a) => perClass.reduce((s, c) => s + c.numGt[a]!, 0)),
    curves: overallCurves,
    ap: overallCurves.map((byArea) => byArea.map(meanOf)),
  };
  return { recall: COCO_REC_THRS, areaLabels: COCO_AREA_LABELS, perClass, overall };
}

function meanOf(a: Float64Array): number {
  let s = 0;
  for (const v of a) s += v;
  return a.length === 0 ? 0 : s / a.length;
}
