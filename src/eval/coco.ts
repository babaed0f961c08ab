/**
 * COCO bbox evaluation that reproduces pycocotools' `COCOeval` (evaluate + accumulate +
 * summarize) number for number, quirks included, but on typed arrays so a COCO-val-sized
 * evaluation takes seconds instead of a minute.
 */
import { EvalInputError } from './errors.js';
import { isRecord, showId } from './json_shape.js';
import { linspace, meanValid, uniqueSorted } from './numeric.js';
import type { CocoDataset, CocoResult } from './types.js';

/** IoU thresholds 0.50:0.05:0.95, exactly as numpy's linspace gives them. */
export const COCO_IOU_THRS: readonly number[] = linspace(0.5, 0.95, 10);
/** The 101 recall points 0:0.01:1. */
export const COCO_REC_THRS: readonly number[] = linspace(0, 1, 101);
/** Area ranges in px² (all, small, medium, large); both ends inclusive, as in pycocotools. */
export const COCO_AREA_RANGES: readonly (readonly [number, number])[] = [
  [0, 1e10],
  [0, 32 ** 2],
  [32 ** 2, 96 ** 2],
  [96 ** 2, 1e10],
];
export const COCO_AREA_LABELS: readonly string[] = ['all', 'small', 'medium', 'large'];

/** Names of the 12 summary numbers, in pycocotools' `stats` order. */
export const COCO_STAT_KEYS = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm', 'ARl'] as const;
export type CocoStatKey = (typeof COCO_STAT_KEYS)[number];
/** The 12 summary numbers in [0, 1]; -1 where pycocotools prints -1 (nothing to measure). */
export type CocoStats = Record<CocoStatKey, number>;

/** Restrictions and limits, mirroring `COCOeval.params`. */
export interface CocoEvalOptions {
  /** Evaluate only these image ids (default: every image of the ground truth). */
  imgIds?: readonly number[];
  /** Evaluate only these category ids (default: every category of the ground truth). */
  catIds?: readonly number[];
  /** Detections kept per image and category, ascending (default `[1, 10, 100]`); stats use these three. */
  maxDets?: readonly [number, number, number];
}

/** Per-category metrics in [0, 1] (-1 when the category has no ground truth in that slice). */
export interface CocoCategoryMetrics {
  id: number;
  name: string;
  /** Ground-truth boxes that count (non-crowd) over the evaluated images. */
  numGt: number;
  AP: number;
  AP50: number;
  AP75: number;
  APs: number;
  APm: number;
  APl: number;
  AR100: number;
}

/** Everything `COCOeval` keeps after accumulate + summarize. */
export interface CocoEvalResult {
  stats: CocoStats;
  /** Same 12 numbers as `stats`, in pycocotools' `stats` order. */
  statsArray: number[];
  perCategory: CocoCategoryMetrics[];
  /** `eval['precision']`, row-major with shape [T, R, K, A, M] (see `shape`); -1 = absent. */
  precision: Float64Array;
  /** `eval['recall']`, row-major with shape [T, K, A, M]; -1 = absent. */
  recall: Float64Array;
  /** `eval['scores']`, shape [T, R, K, A, M]: the score at which each recall point is reached. */
  scores: Float64Array;
  shape: { T: number; R: number; K: number; A: number; M: number };
  params: {
    imgIds: number[];
    catIds: number[];
    iouThrs: readonly number[];
    recThrs: readonly number[];
    maxDets: number[];
    areaRng: readonly (readonly [number, number])[];
    areaRngLbl: readonly string[];
  };
  /** Input sizes after restriction: detections on other categories or images are dropped silently, as in pycocotools. */
  counts: { images: number; categories: number; gts: number; dets: number; detsDropped: number };
}

// Status of one detection at one (area range, IoU threshold); matches pycocotools' dtIg/dtm logic.
export const IGNORED = 0;
export const TP = 1;
export const FP = 2;
const EPS = 2.220446049250313e-16; // np.spacing(1)

/**
 * Checks the shape of a COCO ground truth as read from JSON: "images", "annotations" and
 * "categories" arrays whose entries are objects with numeric ids (category names, when
 * present, strings). Throws an `EvalInputError` naming the first bad entry.
 */
export function checkCocoGroundTruth(gt: unknown): asserts gt is CocoDataset {
  const g = gt as Partial<Record<'images' | 'annotations' | 'categories', unknown>>;
  if (!isRecord(gt) || !Array.isArray(g.images) || !Array.isArray(g.annotations) || !Array.isArray(g.categories)) {
    throw new EvalInputError('ground truth must be a COCO object with "images", "annotations" and "categories" arrays');
  }
  const entries: [string, unknown[]][] = [['image', g.images], ['annotation', g.annotations], ['category', g.categories]];
  for (const [what, list] of entries) {
    for (let n = 0; n < list.length; n++) {
      const e = list[n];
      if (!isRecord(e) || typeof e.id !== 'number') throw new EvalInputError(`ground-truth ${what} #${n} has no numeric "id" (got ${isRecord(e) ? showId(e.id) : showId(e)})`);
      if (what === 'category' && e.name !== undefined && typeof e.name !== 'string') throw new EvalInputError(`ground-truth category id ${e.id} has a "name" that is not a string`);
      if (what === 'image' && e.file_name !== undefined && typeof e.file_name !== 'string') throw new EvalInputError(`ground-truth image id ${e.id} has a "file_name" that is not a string`);
    }
  }
}

function isBox(b: unknown): b is readonly number[] {
  return Array.isArray(b) && b.length >= 4 && typeof b[0] === 'number' && typeof b[1] === 'number' && typeof b[2] === 'number' && typeof b[3] === 'number';
}

/**
 * Evaluates bbox detections against a COCO ground truth exactly like pycocotools' `COCOeval`
 * with `iouType='bbox'`. Throws `EvalInputError` for malformed input and for results on image
 * ids the ground truth does not have (pycocotools' "Results do not correspond to current coco set").
 */
export function evaluateCoco(gt: CocoDataset, dets: readonly CocoResult[], opts: CocoEvalOptions = {}): CocoEvalResult {
  const { precision, recall, scores, shape, evaluated, params, counts, catName } = runCocoEval(gt, dets, opts, COCO_IOU_THRS);
  const { iouThrs, maxDets, catIds } = params;
  const { A, M } = shape;
  const stats = summarize(precision, recall, shape, iouThrs, maxDets);
  const perCategory: CocoCategoryMetrics[] = catIds.map((id, k) => ({
    id,
    name: catName.get(id) ?? String(id),
    numGt: evaluated.npig[k * A]!,
    AP: sliceMean(precision, shape, { k, a: 0, m: M - 1 }),
    AP50: sliceMean(precision, shape, { k, a: 0, m: M - 1, t: iouIndex(iouThrs, 0.5) }),
    AP75: sliceMean(precision, shape, { k, a: 0, m: M - 1, t: iouIndex(iouThrs, 0.75) }),
    APs: sliceMean(precision, shape, { k, a: 1, m: M - 1 }),
    APm: sliceMean(precision, shape, { k, a: 2, m: M - 1 }),
    APl: sliceMean(precision, shape, { k, a: 3, m: M - 1 }),
    AR100: sliceMean(recall, { ...shape, R: 1 }, { k, a: 0, m: M - 1 }),
  }));

  return {
    stats,
    statsArray: COCO_STAT_KEYS.map((key) => stats[key]),
    perCategory,
    precision,
    recall,
    scores,
    shape,
    params,
    counts,
  };
}

/**
 * evaluate + accumulate of `COCOeval` at any IoU thresholds (the error analysis uses
 * [.75, .5, .1]), keeping the matching of every kept detection. `evaluateCoco` is this at
 * COCO's ten thresholds, plus summarize.
 */
export function runCocoEval(
  gt: CocoDataset,
  dets: readonly CocoResult[],
  opts: Omit<CocoEvalOptions, 'maxDets'> & { maxDets?: readonly number[] },
  iouThrs: readonly number[],
): {
  precision: Float64Array;
  recall: Float64Array;
  scores: Float64Array;
  shape: Shape;
  evaluated: EvaluatedImages;
  params: CocoEvalResult['params'];
  counts: CocoEvalResult['counts'];
  catName: Map<number, string>;
} {
  checkCocoGroundTruth(gt);
  if (!Array.isArray(dets)) throw new EvalInputError('results must be an array of {image_id, category_id, bbox, score} objects');

  const gtImgIds = new Set<number>();
  for (const img of gt.images) gtImgIds.add(img.id);
  checkResultImages(dets, gtImgIds);

  const imgIds = uniqueSorted(opts.imgIds ?? gtImgIds);
  const catIds = uniqueSorted(opts.catIds ?? gt.categories.map((c) => c.id));
  const maxDets = [...(opts.maxDets ?? [1, 10, 100])].sort((a, b) => a - b);
  const recThrs = COCO_REC_THRS;
  const areaRng = COCO_AREA_RANGES;
  const I = imgIds.length, K = catIds.length, T = iouThrs.length, R = recThrs.length, A = areaRng.length, M = maxDets.length;
  const maxDetLast = maxDets[M - 1]!;
  checkEvalSize(I, K, T * R * A * M);

  const imgIndex = new Map<number, number>();
  imgIds.forEach((id, i) => imgIndex.set(id, i));
  const catIndex = new Map<number, number>();
  catIds.forEach((id, k) => catIndex.set(id, k));

  const g = bucketGts(gt, imgIndex, catIndex, I, K);
  const d = bucketDets(dets, imgIndex, catIndex, I, K);

  const evaluated = evaluateImages(g, d, { I, K, T, A, maxDetLast, iouThrs, areaRng });
  const shape = { T, R, K, A, M };
  const { precision, recall, scores } = accumulate(evaluated, shape, recThrs, maxDets);
  return {
    precision,
    recall,
    scores,
    shape,
    evaluated,
    params: { imgIds, catIds, iouThrs, recThrs, maxDets, areaRng, areaRngLbl: COCO_AREA_LABELS },
    counts: { images: I, categories: K, gts: g.count, dets: d.score.length, detsDropped: dets.length - d.score.length },
    catName: new Map(gt.categories.map((c) => [c.id, c.name] as const)),
  };
}

/**
 * Memory the evaluation may take for its per-(category, image) buckets and per-category result
 * arrays. Real datasets need a few hundred MB at most (LVIS: 1203 categories x 19 809 images);
 * a file listing 10^5 categories or 10^4 x 10^4 images and categories would otherwise make it
 * allocate tens of GB from a few MB of JSON.
 */
export const MAX_EVAL_BYTES = 2 ** 31;

function checkEvalSize(I: number, K: number, perCategory: number): void {
  const gb = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;
  const buckets = 16 * K * I; // four Int32Arrays of K x I (+1)
  if (buckets > MAX_EVAL_BYTES) {
    throw new EvalInputError(`${K} categories x ${I} images would take ${gb(buckets)} to evaluate (limit ${gb(MAX_EVAL_BYTES)}); restrict the evaluation with catIds/imgIds (--cat-ids, --img-ids)`);
  }
  const results = 2 * 8 * K * perCategory; // precision and scores, float64
  if (results > MAX_EVAL_BYTES) {
    throw new EvalInputError(`${K} categories would take ${gb(results)} of precision arrays (limit ${gb(MAX_EVAL_BYTES)}); restrict the evaluation with catIds (--cat-ids)`);
  }
}

/** What `evaluateImages` keeps of the matching, the input of `accumulate`. */
export interface EvaluatedImages {
  /**
   * Per kept detection (rank < maxDets[-1] in its image/category), stored category by category,
   * image by image, rank by rank: its score, rank and status per (area range, IoU threshold).
   */
  keptScore: Float64Array;
  keptRank: Int32Array;
  /** [kept, A, T]: IGNORED, TP or FP. */
  keptStatus: Uint8Array;
  /** Kept detections of category k are catKeptStart[k] .. catKeptStart[k + 1] - 1. */
  catKeptStart: Int32Array;
  /** [K, A]: non-ignored ground-truth boxes per category and area range. */
  npig: Float64Array;
}

/**
 * pycocotools' `evaluateImg` over every (category, image): sorts detections by score, matches
 * them greedily to ground truth at each IoU threshold and area range, and records each kept
 * detection's status.
 */
function evaluateImages(
  g: GtBuckets,
  d: DetBuckets,
  p: { I: number; K: number; T: number; A: number; maxDetLast: number; iouThrs: readonly number[]; areaRng: readonly (readonly [number, number])[] },
): EvaluatedImages {
  const { I, K, T, A, maxDetLast, iouThrs, areaRng } = p;
  const nKeptMax = d.score.length;
  const keptScore = new Float64Array(nKeptMax);
  const keptRank = new Int32Array(nKeptMax);
  const keptStatus = new Uint8Array(nKeptMax * A * T);
  const catKeptStart = new Int32Array(K + 1);
  const npig = new Float64Array(K * A);

  let ious = new Float64Array(256);
  const order: number[] = [];
  const gtIg = new Uint8Array(Math.max(1, g.maxPerBucket));
  const gtOrder = new Int32Array(Math.max(1, g.maxPerBucket));
  const gtMatched = new Uint8Array(Math.max(1, g.maxPerBucket) * T);
  const thrs = iouThrs.map((t) => Math.min(t, 1 - 1e-10));
  let nKept = 0;

  for (let k = 0; k < K; k++) {
    catKeptStart[k] = nKept;
    for (let i = 0; i < I; i++) {
      const b = k * I + i;
      const gs = g.off[b]!, G = g.off[b + 1]! - gs;
      const ds = d.off[b]!, Dall = d.off[b + 1]! - ds;
      if (G === 0 && Dall === 0) continue;

      // Stable sort by score, descending (np.argsort(-score, kind='mergesort')).
      order.length = Dall;
      for (let j = 0; j < Dall; j++) order[j] = ds + j;
      if (Dall > 1) order.sort((x, y) => d.score[y]! - d.score[x]! || x - y);
      const D = Math.min(Dall, maxDetLast);

      if (ious.length < D * G) ious = new Float64Array(D * G * 2);
      computeIous(d.box, order, D, g.box, g.crowd, gs, G, ious);

      const p0 = nKept;
      for (let j = 0; j < D; j++) {
        keptScore[p0 + j] = d.score[order[j]!]!;
        keptRank[p0 + j] = j;
      }
      nKept += D;

      for (let a = 0; a < A; a++) {
        const [lo, hi] = areaRng[a]!;
        let nIg = 0;
        for (let q = 0; q < G; q++) {
          const ar = g.area[gs + q]!;
          const ig = g.crowd[gs + q]! === 1 || ar < lo || ar > hi ? 1 : 0;
          gtIg[q] = ig;
          nIg += ig;
        }
        npig[k * A + a]! += G - nIg;
        // Non-ignored first, stable (np.argsort(_ignore, kind='mergesort')).
        let w = 0;
        for (let q = 0; q < G; q++) if (gtIg[q] === 0) gtOrder[w++] = q;
        for (let q = 0; q < G; q++) if (gtIg[q] === 1) gtOrder[w++] = q;

        gtMatched.fill(0, 0, G * T);
        for (let t = 0; t < T; t++) {
          const mrow = t * G;
          for (let j = 0; j < D; j++) {
            let best = thrs[t]!;
            let m = -1;
            if (G > 0) {
              const irow = j * G;
              for (let gi = 0; gi < G; gi++) {
                const q = gtOrder[gi]!;
                if (gtMatched[mrow + q] === 1 && g.crowd[gs + q] === 0) continue;
                // Once matched to a real gt, never fall back to an ignored one.
                if (m > -1 && gtIg[m] === 0 && gtIg[q] === 1) break;
                const v = ious[irow + q]!;
                if (v < best) continue;
                best = v;
                m = q;
              }
            }
            let status: number;
            if (m > -1) {
              gtMatched[mrow + m] = 1;
              // pycocotools records the matched gt *id* and tests it for truthiness, so a
              // match to a gt with id 0 counts as unmatched; reproduce that.
              if (gtIg[m] === 1) status = IGNORED;
              else if (g.id[gs + m] !== 0) status = TP;
              else status = detOutside(d.area[order[j]!]!, lo, hi) ? IGNORED : FP;
            } else {
              status = detOutside(d.area[order[j]!]!, lo, hi) ? IGNORED : FP;
            }
            keptStatus[((p0 + j) * A + a) * T + t] = status;
          }
        }
      }
    }
  }
  catKeptStart[K] = nKept;

  return { keptScore, keptRank, keptStatus, catKeptStart, npig };
}

/**
 * pycocotools' `accumulate`: precision at the 101 recall points, recall and the scores where
 * they are reached, per (IoU threshold, category, area range, maxDets).
 */
function accumulate(e: EvaluatedImages, s: Shape, recThrs: readonly number[], maxDets: readonly number[]): { precision: Float64Array; recall: Float64Array; scores: Float64Array } {
  const { T, R, K, A, M } = s;
  const { keptScore, keptRank, keptStatus, catKeptStart, npig } = e;
  const precision = new Float64Array(T * R * K * A * M).fill(-1);
  const scores = new Float64Array(T * R * K * A * M).fill(-1);
  const recall = new Float64Array(T * K * A * M).fill(-1);
  let rc = new Float64Array(1024);
  let pr = new Float64Array(1024);
  let ssc = new Float64Array(1024);
  for (let k = 0; k < K; k++) {
    const P = catKeptStart[k]!;
    const N = catKeptStart[k + 1]! - P;
    // One stable score-descending order per category serves every (area, maxDet): the
    // concatenation order pycocotools sorts (image, then rank) is our storage order.
    const sorted = new Int32Array(N);
    for (let s = 0; s < N; s++) sorted[s] = P + s;
    sorted.sort((x, y) => keptScore[y]! - keptScore[x]! || x - y);
    // Gather into score order once so the T*A*M passes below read memory sequentially.
    const rank = new Int32Array(N);
    const sc = new Float64Array(N);
    const status = new Uint8Array(A * T * N);
    for (let s = 0; s < N; s++) {
      const p = sorted[s]!;
      rank[s] = keptRank[p]!;
      sc[s] = keptScore[p]!;
      for (let at = 0; at < A * T; at++) status[at * N + s] = keptStatus[p * A * T + at]!;
    }
    if (rc.length < N) {
      rc = new Float64Array(N);
      pr = new Float64Array(N);
      ssc = new Float64Array(N);
    }
    for (let a = 0; a < A; a++) {
      const np = npig[k * A + a]!;
      if (np === 0) continue;
      for (let m = 0; m < M; m++) {
        const maxDet = maxDets[m]!;
        for (let t = 0; t < T; t++) {
          const row = (a * T + t) * N;
          // Only true positives raise recall and only they can raise precision (a false
          // positive lowers tp/(tp+fp+eps), an ignored detection changes nothing), so every
          // searchsorted hit past the first detection is a TP and the envelope is a max over
          // TPs. Keeping just the TPs (plus the first detection) gives pycocotools' numbers
          // with far less work per detection.
          let tp = 0, fp = 0, nd = 0, nTp = 0;
          let firstPr = 0, firstRc = 0, firstSc = 0;
          for (let s = 0; s < N; s++) {
            if (rank[s]! >= maxDet) continue;
            const st = status[row + s]!;
            if (st === TP) {
              tp++;
              rc[nTp] = tp / np;
              pr[nTp] = tp / (fp + tp + EPS);
              ssc[nTp] = sc[s]!;
              nTp++;
            } else if (st === FP) fp++;
            if (nd === 0) {
              firstRc = tp / np;
              firstPr = tp / (fp + tp + EPS);
              firstSc = sc[s]!;
            }
            nd++;
          }
          recall[((t * K + k) * A + a) * M + m] = nd > 0 ? tp / np : 0;
          // Monotone precision envelope, right to left.
          for (let x = nTp - 1; x > 0; x--) if (pr[x]! > pr[x - 1]!) pr[x - 1] = pr[x]!;
          const firstEnv = nTp > 0 && pr[0]! > firstPr ? pr[0]! : firstPr;
          // np.searchsorted(rc, recThrs, side='left'); points past the last recall stay 0.
          let idx = 0;
          for (let r = 0; r < R; r++) {
            const thr = recThrs[r]!;
            const at = (((t * R + r) * K + k) * A + a) * M + m;
            if (nd > 0 && firstRc >= thr) {
              precision[at] = firstEnv;
              scores[at] = firstSc;
              continue;
            }
            while (idx < nTp && rc[idx]! < thr) idx++;
            precision[at] = idx < nTp ? pr[idx]! : 0;
            scores[at] = idx < nTp ? ssc[idx]! : 0;
          }
        }
      }
    }
  }
  return { precision, recall, scores };
}

function detOutside(area: number, lo: number, hi: number): boolean {
  return area < lo || area > hi;
}

function checkResultImages(dets: readonly CocoResult[], gtImgIds: Set<number>): void {
  const unknown = new Set<number>();
  let n = 0;
  for (const det of dets) {
    if (!gtImgIds.has(det?.image_id)) {
      unknown.add(det?.image_id);
      n++;
    }
  }
  if (n > 0) {
    const examples = [...unknown].slice(0, 5).map(showId).join(', ');
    throw new EvalInputError(
      `results reference ${unknown.size} image id(s) that are not in the ground truth (${n} detection(s), e.g. image_id ${examples}); ` +
        'were the detections made on a different split?',
    );
  }
}

interface GtBuckets {
  /** Bucket b = k * I + i holds indices off[b]..off[b+1] of the arrays below. */
  off: Int32Array;
  box: Float64Array;
  area: Float64Array;
  crowd: Uint8Array;
  id: Float64Array;
  count: number;
  maxPerBucket: number;
}

/** Groups the evaluated ground truth by (category, image), keeping file order within a group as pycocotools does. */
function bucketGts(gt: CocoDataset, imgIndex: Map<number, number>, catIndex: Map<number, number>, I: number, K: number): GtBuckets {
  const anns = gt.annotations;
  const bucketOf = new Int32Array(anns.length).fill(-1);
  const off = new Int32Array(K * I + 1);
  const seen = new Set<number>();
  for (let n = 0; n < anns.length; n++) {
    const ann = anns[n]!;
    if (!isBox(ann.bbox)) throw new EvalInputError(`ground-truth annotation #${n} has no valid "bbox" [x, y, w, h]`);
    // pycocotools indexes annotations by id, so duplicates silently evaluate the wrong boxes; refuse them.
    if (seen.has(ann.id)) throw new EvalInputError(`ground-truth annotation id ${ann.id} appears more than once; annotation ids must be unique`);
    seen.add(ann.id);
    const i = imgIndex.get(ann.image_id);
    const k = catIndex.get(ann.category_id);
    if (i === undefined || k === undefined) continue;
    bucketOf[n] = k * I + i;
    off[k * I + i + 1]!++;
  }
  let maxPerBucket = 0;
  for (let b = 0; b < K * I; b++) {
    maxPerBucket = Math.max(maxPerBucket, off[b + 1]!);
    off[b + 1]! += off[b]!;
  }
  const count = off[K * I]!;
  const box = new Float64Array(count * 4), area = new Float64Array(count), crowd = new Uint8Array(count), id = new Float64Array(count);
  const fill = off.slice(0, K * I);
  for (let n = 0; n < anns.length; n++) {
    const b = bucketOf[n]!;
    if (b < 0) continue;
    const ann = anns[n]!;
    const at = fill[b]!++;
    const bb = ann.bbox;
    box[at * 4] = bb[0]!; box[at * 4 + 1] = bb[1]!; box[at * 4 + 2] = bb[2]!; box[at * 4 + 3] = bb[3]!;
    area[at] = typeof ann.area === 'number' ? ann.area : bb[2]! * bb[3]!;
    // pycocotools: gt['ignore'] = 'iscrowd' in gt and gt['iscrowd'] (the ignore field itself is overwritten).
    crowd[at] = ann.iscrowd ? 1 : 0;
    id[at] = ann.id;
  }
  return { off, box, area, crowd, id, count, maxPerBucket };
}

interface DetBuckets {
  off: Int32Array;
  box: Float64Array;
  score: Float64Array;
  area: Float64Array;
}

/** Groups detections by (category, image) in file order; area is w*h as in `COCO.loadRes`. */
function bucketDets(dets: readonly CocoResult[], imgIndex: Map<number, number>, catIndex: Map<number, number>, I: number, K: number): DetBuckets {
  const bucketOf = new Int32Array(dets.length).fill(-1);
  const off = new Int32Array(K * I + 1);
  for (let n = 0; n < dets.length; n++) {
    const det = dets[n]!;
    if (!isRecord(det)) throw new EvalInputError(`result #${n} is not an object`);
    if (!isBox(det.bbox)) throw new EvalInputError(`result #${n} has no valid "bbox" [x, y, w, h]`);
    if (typeof det.score !== 'number' || Number.isNaN(det.score)) throw new EvalInputError(`result #${n} has no numeric "score"`);
    const i = imgIndex.get(det.image_id);
    const k = catIndex.get(det.category_id);
    if (i === undefined || k === undefined) continue;
    bucketOf[n] = k * I + i;
    off[k * I + i + 1]!++;
  }
  for (let b = 0; b < K * I; b++) off[b + 1]! += off[b]!;
  const count = off[K * I]!;
  const box = new Float64Array(count * 4), score = new Float64Array(count), area = new Float64Array(count);
  const fill = off.slice(0, K * I);
  for (let n = 0; n < dets.length; n++) {
    const b = bucketOf[n]!;
    if (b < 0) continue;
    const det = dets[n]!;
    const at = fill[b]!++;
    const bb = det.bbox;
    box[at * 4] = bb[0]!; box[at * 4 + 1] = bb[1]!; box[at * 4 + 2] = bb[2]!; box[at * 4 + 3] = bb[3]!;
    score[at] = det.score;
    area[at] = bb[2]! * bb[3]!;
  }
  return { off, box, score, area };
}

/**
 * IoU of the first D detections in `order` against G gts, row-major [D, G], with the same
 * operations as pycocotools' `bbIou`: crowd gts use intersection / detection area.
 */
function computeIous(dbox: Float64Array, order: readonly number[], D: number, gbox: Float64Array, gcrowd: Uint8Array, gs: number, G: number, out: Float64Array): void {
  for (let j = 0; j < D; j++) {
    const o = order[j]! * 4;
    const dx = dbox[o]!, dy = dbox[o + 1]!, dw = dbox[o + 2]!, dh = dbox[o + 3]!;
    const da = dw * dh;
    for (let q = 0; q < G; q++) {
      const p = (gs + q) * 4;
      const gx = gbox[p]!, gy = gbox[p + 1]!, gw = gbox[p + 2]!, gh = gbox[p + 3]!;
      let v = 0;
      const w = Math.min(dw + dx, gw + gx) - Math.max(dx, gx);
      if (w > 0) {
        const h = Math.min(dh + dy, gh + gy) - Math.max(dy, gy);
        if (h > 0) {
          const inter = w * h;
          const u = gcrowd[gs + q] === 1 ? da : da + gw * gh - inter;
          v = inter / u;
        }
      }
      out[j * G + q] = v;
    }
  }
}

function iouIndex(iouThrs: readonly number[], thr: number): number {
  // Exact comparison, like np.where(iouThr == p.iouThrs): a threshold not on the grid gives -1.
  return iouThrs.indexOf(thr);
}

export interface Shape {
  T: number;
  R: number;
  K: number;
  A: number;
  M: number;
}

/** Mean of the entries > -1 of a [T, R, K, A, M] array restricted to fixed a, m (and optionally t, k), in numpy's C order. */
function sliceMean(arr: Float64Array, s: Shape, sel: { a: number; m: number; t?: number; k?: number }): number {
  if (sel.t === -1) return -1;
  const ts = sel.t === undefined ? 0 : sel.t, te = sel.t === undefined ? s.T : sel.t + 1;
  const ks = sel.k === undefined ? 0 : sel.k, ke = sel.k === undefined ? s.K : sel.k + 1;
  const buf = new Float64Array((te - ts) * s.R * (ke - ks));
  let n = 0;
  for (let t = ts; t < te; t++) {
    for (let r = 0; r < s.R; r++) {
      for (let k = ks; k < ke; k++) {
        const v = arr[(((t * s.R + r) * s.K + k) * s.A + sel.a) * s.M + sel.m]!;
        if (v > -1) buf[n++] = v;
      }
    }
  }
  return meanValid(buf, n);
}

/** pycocotools' `_summarizeDets`: the 12 standard numbers from the accumulated arrays. */
function summarize(precision: Float64Array, recall: Float64Array, shape: Shape, iouThrs: readonly number[], maxDets: readonly number[]): CocoStats {
  const [m0, m1, m2] = [0, 1, 2].map((j) => Math.min(j, maxDets.length - 1)) as [number, number, number];
  const ap = (a: number, m: number, thr?: number): number =>
    m < 0 ? -1 : sliceMean(precision, shape, { a, m, t: thr === undefined ? undefined : iouIndex(iouThrs, thr) });
  const ar = (a: number, m: number): number => sliceMean(recall, { ...shape, R: 1 }, { a, m });
  return {
    // pycocotools' first line uses the literal default maxDets=100, not maxDets[2].
    AP: ap(0, maxDets.indexOf(100)),
    AP50: ap(0, m2, 0.5),
    AP75: ap(0, m2, 0.75),
    APs: ap(1, m2),
    APm: ap(2, m2),
    APl: ap(3, m2),
    AR1: ar(0, m0),
    AR10: ar(0, m1),
    AR100: ar(0, m2),
    ARs: ar(1, m2),
    ARm: ar(2, m2),
    ARl: ar(3, m2),
  };
}
