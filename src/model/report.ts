/**
 * The report of a model on a labelled set: COCO evaluation with the figures of
 * `writeCocoReport` (PR, F1 / P / R against the score, confusion matrix, error analysis) and two
 * image grids — validation images with ground truth beside predictions, and the images with the
 * most missed objects — so "no detections" is seen, not guessed.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { SampleSource } from '../data/source.js';
import { type DetectionAnalysis, analyzeDetections } from '../eval/report.js';
import type { CocoEvalResult } from '../eval/coco.js';
import { type CocoReportOptions, type ReportFiles, writeCocoReport } from '../eval/report.js';
import type { CocoDataset, CocoResult } from '../eval/types.js';
import { type GridTile, writeGrid } from '../io/grid.js';
import type { PageSection } from '../plot/page.js';
import { type EvaluateOptions, evaluateModel } from './evaluate.js';
import type { RetinaNet } from './model.js';

const MISSED = '#ff0000';

/** COCO [x, y, w, h] boxes as flat xyxy. */
function xyxy(boxes: readonly (readonly number[])[]): Float32Array {
  const out = new Float32Array(4 * boxes.length);
  boxes.forEach((b, k) => out.set([b[0]!, b[1]!, b[0]! + b[2]!, b[1]! + b[3]!], 4 * k));
  return out;
}

/**
 * Writes `val_images.jpg` (the first `count` evaluated images: ground truth, dashed, beside the
 * predictions scoring >= the analysis' threshold) and `worst_images.jpg` (the `count` images
 * with the most missed objects, then the most background detections; missed boxes in red) into
 * `dir`, and returns the report section showing them.
 */
export async function imageGridSections(
  dir: string,
  source: SampleSource,
  input: { gt: CocoDataset; detections: readonly CocoResult[]; evaluated: readonly number[] },
  analysis: DetectionAnalysis,
  opts: { count?: number } = {},
): Promise<PageSection[]> {
  const count = opts.count ?? 8;
  const thr = analysis.confusion.scoreThreshold;
  const labelOf = new Map(source.categoryIds.map((id, k) => [id, k] as const));
  const indexOf = new Map(input.evaluated.map((i) => [source.imageId(i), i] as const));
  const outcome = new Map(analysis.confusion.perImage.map((o) => [o.imageId, o] as const));
  const gtsOf = new Map<number, CocoDataset['annotations'][number][]>();
  for (const a of input.gt.annotations) {
    let l = gtsOf.get(a.image_id);
    if (!l) gtsOf.set(a.image_id, (l = []));
    l.push(a);
  }
  const detsOf = new Map<number, CocoResult[]>();
  for (const d of input.detections) {
    if (d.score < thr || !labelOf.has(d.category_id)) continue;
    let l = detsOf.get(d.image_id);
    if (!l) detsOf.set(d.image_id, (l = []));
    l.push(d);
  }
  const names = [...source.classNames];
  const pair = async (imageId: number): Promise<GridTile[]> => {
    const i = indexOf.get(imageId)!;
    const { image } = await source.get(i);
    const gts = gtsOf.get(imageId) ?? [];
    const o = outcome.get(imageId);
    const missed = new Set(o?.missedIds ?? []);
    const dets = detsOf.get(imageId) ?? [];
    const gtTile: GridTile = {
      image,
      drawn: {
        boxes: xyxy(gts.map((a) => a.bbox)),
        labels: Int32Array.from(gts, (a) => labelOf.get(a.category_id) ?? 0),
        colors: gts.map((a) => (missed.has(a.id) ? MISSED : undefined)),
        captions: gts.map((a) => (a.iscrowd ? 'crowd' : missed.has(a.id) ? `${names[labelOf.get(a.category_id) ?? 0]} MISSED` : undefined)),
        dashed: gts.map(() => true),
      },
      options: { classNames: names, caption: `${path.basename(source.describe(i))}: ${gts.length} gt${o && o.missed > 0 ? `, ${o.missed} missed` : ''}` },
    };
    const predTile: GridTile = {
      image,
      drawn: { boxes: xyxy(dets.map((d) => d.bbox)), labels: Int32Array.from(dets, (d) => labelOf.get(d.category_id)!), scores: Float32Array.from(dets, (d) => d.score) },
      options: { classNames: names, caption: `predictions >= ${thr.toFixed(2)}: ${dets.length}${o && o.background > 0 ? `, ${o.background} on background` : ''}` },
    };
    return [gtTile, predTile];
  };
  await mkdir(dir, { recursive: true });
  const first = input.evaluated.slice(0, count).map((i) => source.imageId(i));
  const worst = [...analysis.confusion.perImage]
    .filter((o) => indexOf.has(o.imageId) && (o.missed > 0 || o.background > 0 || o.confused > 0))
    .sort((a, b) => b.missed - a.missed || b.background - a.background || b.confused - a.confused)
    .slice(0, count)
    .map((o) => o.imageId);
  const sections: PageSection[] = [];
  if (first.length > 0) {
    const tiles = (await Promise.all(first.map(pair))).flat();
    await writeGrid(tiles, path.join(dir, 'val_images.jpg'), { columns: 4 });
    sections.push({
      heading: 'Validation images',
      text: `Ground truth (dashed, left) beside the predictions scoring >= ${thr.toFixed(2)} (right), for the first ${first.length} images; boxes no detection found are red.`,
      figures: [{ src: 'val_images.jpg', href: 'val_images.jpg' }],
    });
  }
  if (worst.length > 0) {
    const tiles = (await Promise.all(worst.map(pair))).flat();
    await writeGrid(tiles, path.join(dir, 'worst_images.jpg'), { columns: 4 });
    sections.push({
      heading: 'Worst images',
      text: `The ${worst.length} images with the most missed objects (red), then the most detections on background, at score >= ${thr.toFixed(2)} and IoU 0.5.`,
      figures: [{ src: 'worst_images.jpg', href: 'worst_images.jpg' }],
    });
  } else {
    sections.push({ heading: 'Worst images', text: `No image has a missed object or a false detection at score >= ${thr.toFixed(2)}.` });
  }
  return sections;
}

export interface ModelReportOptions extends EvaluateOptions, Omit<CocoReportOptions, 'analysis'> {
  /** Score threshold of the confusion matrix and the image grids (default: the best-F1 threshold). */
  reportScore?: number;
  /** Images per grid (default 8). */
  gridImages?: number;
}

/** Evaluates `model` on `source` and writes the full report into `dir`. */
export async function writeModelReport(
  dir: string,
  model: RetinaNet,
  source: SampleSource,
  opts: ModelReportOptions = {},
): Promise<{ result: CocoEvalResult; analysis: DetectionAnalysis; files: ReportFiles; detections: CocoResult[] }> {
  const evaluated = await evaluateModel(model, source, opts);
  const analysis = analyzeDetections(evaluated.gt, evaluated.detections, { scoreThreshold: opts.reportScore });
  const grids = await imageGridSections(dir, source, evaluated, analysis, { count: opts.gridImages });
  const files = await writeCocoReport(dir, evaluated.result, {
    ...opts,
    analysis,
    sectionsAfter: [...grids, ...(opts.sectionsAfter ?? [])],
  });
  return { result: evaluated.result, analysis, files, detections: evaluated.detections };
}
