/**
 * `eval --report DIR` (and the report of a training run): metric tables, a JSON dump of the
 * numbers, and figures as PNG + SVG — precision-recall curves overall and per class; with the
 * ground truth and detections also P / R / F1 against the score threshold (best F1 marked), the
 * confusion matrix and the COCO error analysis — in one `report.html` (and `report.md`).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bandChart, gridOf, heatmap, lineChart, type Series } from '../plot/charts.js';
import { type PageFigure, type PageSection, writeReportPage } from '../plot/page.js';
import { type FigureFiles, type TopLevelSpec, writeFigure } from '../plot/render.js';
import { type ConfusionMatrix, type ErrorAnalysis, type ErrorCurves, ERROR_TYPES, type ScoreCurves, confusionMatrix, errorAnalysis, scoreCurves } from './analysis.js';
import type { CocoEvalResult } from './coco.js';
import { cocoStatsJson, formatCocoSummary, formatFixed3 } from './summary.js';
import type { CocoDataset, CocoResult } from './types.js';
import type { VocEvalResult } from './voc.js';

/** Files written, relative to the report folder. */
export interface ReportFiles {
  markdown: string;
  html: string;
  json: string;
  /** Every figure's PNG (each has an SVG beside it). */
  plots: string[];
}

/** The analyses behind a COCO report's extra figures, computed by {@link analyzeDetections}. */
export interface DetectionAnalysis {
  curves: ScoreCurves;
  confusion: ConfusionMatrix;
  errors: ErrorAnalysis;
}

/**
 * Score curves at IoU 0.5, the confusion matrix at IoU 0.5 and `scoreThreshold` (default: the
 * best-F1 threshold) and the error analysis of a set of detections.
 */
export function analyzeDetections(gt: CocoDataset, dets: readonly CocoResult[], opts: { scoreThreshold?: number; catIds?: readonly number[] } = {}): DetectionAnalysis {
  const curves = scoreCurves(gt, dets, { catIds: opts.catIds });
  const confusion = confusionMatrix(gt, dets, { scoreThreshold: opts.scoreThreshold ?? curves.best.threshold, catIds: opts.catIds });
  return { curves, confusion, errors: errorAnalysis(gt, dets, { catIds: opts.catIds }) };
}

export interface CocoReportOptions {
  title?: string;
  /** Adds the score curves, confusion matrix and error analysis. */
  analysis?: DetectionAnalysis;
  /** Sections placed before the metrics (e.g. a run's results) and after the figures (config, commands). */
  sectionsBefore?: PageSection[];
  sectionsAfter?: PageSection[];
  /** Extra fields of metrics.json. */
  extraJson?: Record<string, unknown>;
}

function fileSafe(k: number, name: string): string {
  return `${String(k).padStart(2, '0')}_${name.replace(/[^A-Za-z0-9_.-]+/g, '_')}`;
}

function num(v: number): string {
  return v < 0 ? '-' : formatFixed3(v);
}

/** Mean over entries > -1 of `pick(j)` for j < n, or -1. */
function meanOf(n: number, pick: (j: number) => number): number {
  let s = 0, c = 0;
  for (let j = 0; j < n; j++) {
    const v = pick(j);
    if (v > -1) {
      s += v;
      c++;
    }
  }
  return c === 0 ? -1 : s / c;
}

/** A figure entry of the page for written files. */
export function pageFigure(f: FigureFiles, caption?: string): PageFigure {
  return { src: f.png, href: f.svg, ...(caption ? { caption } : {}) };
}

const PR_AXES = { x: { title: 'recall', domain: [0, 1] as [number, number] }, y: { title: 'precision', domain: [0, 1] as [number, number] } };
/** Per-class lines are drawn when there are at most this many classes (else the mean only). */
const MAX_CLASS_LINES = 20;

/** COCO-style precision-recall curves (area all, largest maxDets) of class k, or the mean over classes. */
function cocoPrSeries(result: CocoEvalResult, k: number | null): Series[] {
  const { T, R, K, A, M } = result.shape;
  const rec = result.params.recThrs;
  const at = (t: number, r: number, kk: number): number => result.precision[(((t * R + r) * K + kk) * A + 0) * M + (M - 1)]!;
  const t50 = result.params.iouThrs.indexOf(0.5), t75 = result.params.iouThrs.indexOf(0.75);
  const ks = k === null ? [...Array(K).keys()] : [k];
  const one = (ts: number[]): number[] => rec.map((_, r) => meanOf(ts.length * ks.length, (j) => at(ts[Math.floor(j / ks.length)]!, r, ks[j % ks.length]!)));
  const series: Series[] = [];
  const y = (v: number[]): number[] => v.map((p) => (p < 0 ? NaN : p));
  if (t50 >= 0) series.push({ name: 'IoU=0.50', x: rec, y: y(one([t50])) });
  if (t75 >= 0) series.push({ name: 'IoU=0.75', x: rec, y: y(one([t75])) });
  series.push({ name: 'IoU=0.50:0.95 (mean)', x: rec, y: y(one([...Array(T).keys()])) });
  return series;
}

/** Precision-recall at IoU 0.5 of every class with ground truth and their mean (the mean alone past 20 classes). */
function prByClassSpec(result: CocoEvalResult): TopLevelSpec {
  const { R, K, A, M } = result.shape;
  const t50 = result.params.iouThrs.indexOf(0.5);
  const rec = result.params.recThrs;
  const at = (r: number, k: number): number => result.precision[(((t50 * R + r) * K + k) * A + 0) * M + (M - 1)]!;
  const withGt = result.perCategory.map((c, k) => ({ c, k })).filter(({ c }) => c.numGt > 0);
  const series: Series[] = [];
  if (withGt.length <= MAX_CLASS_LINES) for (const { c, k } of withGt) series.push({ name: `${c.name} ${num(c.AP50)}`, x: rec, y: rec.map((_, r) => (at(r, k) < 0 ? NaN : at(r, k))) });
  const mean = rec.map((_, r) => meanOf(K, (k) => at(r, k)));
  const allName = `all classes ${num(result.stats.AP50)} AP50`;
  series.push({ name: allName, x: rec, y: mean.map((p) => (p < 0 ? NaN : p)) });
  return lineChart(series, { title: 'Precision-recall at IoU 0.5 (area all)', ...PR_AXES, emphasize: [allName], legendTitle: 'AP50' });
}

/** P, R or F1 against the score threshold, per class and the mean; the best-F1 threshold marked. */
export function scoreCurveSpec(c: ScoreCurves, metric: 'f1' | 'precision' | 'recall'): TopLevelSpec {
  const label = { f1: 'F1', precision: 'precision', recall: 'recall' }[metric];
  const series: Series[] = [];
  if (c.perClass.length <= MAX_CLASS_LINES) for (const k of c.perClass) series.push({ name: k.name, x: c.thresholds, y: k[metric] });
  const allName = metric === 'f1' ? `all classes ${c.best.f1.toFixed(2)} at ${c.best.threshold.toFixed(2)}` : 'all classes';
  series.push({ name: allName, x: c.thresholds, y: c.overall[metric] });
  const bj = c.thresholds.indexOf(c.best.threshold);
  const by = c.overall[metric][bj]!;
  return lineChart(series, {
    title: `${label} against the score threshold (IoU ${c.iouThreshold})`,
    x: { title: 'score threshold', domain: [0, 1] },
    y: { title: label, domain: [0, 1] },
    emphasize: [allName],
    marks: Number.isFinite(by) ? [{ x: c.best.threshold, y: by, label: `best F1 ${c.best.f1.toFixed(3)} at ${c.best.threshold.toFixed(2)}` }] : [],
  });
}

/** The confusion matrix: counts in the cells, colour = share of the row (the ground-truth class). */
export function confusionSpec(cm: ConfusionMatrix): TopLevelSpec {
  const color = cm.counts.map((row) => {
    const sum = row.reduce((a, b) => a + b, 0);
    return row.map((v) => (sum > 0 ? v / sum : NaN));
  });
  const text = cm.counts.map((row) => row.map((v) => (v === 0 ? '' : String(v))));
  return heatmap(color, text, {
    title: `Confusion matrix (IoU ${cm.iouThreshold}, score >= ${cm.scoreThreshold.toFixed(2)})`,
    rows: cm.labels,
    cols: [...cm.labels.slice(0, -1), 'background (missed)'],
    rowTitle: 'ground truth',
    colTitle: 'prediction',
    colorTitle: 'share of row',
  });
}

const ERROR_COLORS = ['#deebf7', '#9ecae1', '#4f81bd', '#bf4f4c', '#5ce661', '#8063a3', '#ff9900'];

/** The error-analysis bands of one class (or the mean) in one area range. */
export function errorSpec(e: ErrorCurves, recall: readonly number[], area: number, areaLabel: string, opts: { width?: number; height?: number } = {}): TopLevelSpec {
  return bandChart(
    recall,
    ERROR_TYPES.map((t, i) => ({ label: `[${e.ap[i]![area]!.toFixed(3)}] ${t}`, color: ERROR_COLORS[i]!, y: e.curves[i]![area]! })),
    { title: `${e.name}, area ${areaLabel} (${e.numGt[area]} gts)`, ...PR_AXES, ...opts },
  );
}

/** Writes the COCO report into `dir` (created if needed). Curves use area "all" and the largest maxDets. */
export async function writeCocoReport(dir: string, result: CocoEvalResult, opts: CocoReportOptions = {}): Promise<ReportFiles> {
  await mkdir(dir, { recursive: true });
  const plots: string[] = [];
  const fig = async (name: string, spec: TopLevelSpec): Promise<FigureFiles> => {
    const f = await writeFigure(dir, name, spec);
    plots.push(f.png);
    return f;
  };
  const sections: PageSection[] = [...(opts.sectionsBefore ?? [])];
  sections.push({ heading: 'Summary', pre: formatCocoSummary(result) });
  const cols = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR100'] as const;
  sections.push({ heading: 'Per class', table: { head: ['class', ...cols, 'gts'], rows: result.perCategory.map((c) => [c.name, ...cols.map((k) => num(c[k])), String(c.numGt)]) } });

  const prOverall = await fig('pr_overall', lineChart(cocoPrSeries(result, null), { title: `All classes (mean over classes), AP=${num(result.stats.AP)}`, ...PR_AXES }));
  const prCurve = await fig('pr_curve', prByClassSpec(result));
  sections.push({ heading: 'Precision-recall', figures: [pageFigure(prCurve, 'per class at IoU 0.5, with the mean'), pageFigure(prOverall, 'mean over classes at IoU 0.5, 0.75 and 0.50:0.95')] });
  const classFigs: PageFigure[] = [];
  for (const [k, c] of result.perCategory.entries()) {
    if (c.numGt === 0) continue;
    const f = await fig(`pr/${fileSafe(k, c.name)}`, lineChart(cocoPrSeries(result, k), { title: `${c.name}: AP=${num(c.AP)}, AP50=${num(c.AP50)}`, ...PR_AXES, width: 300, height: 240 }));
    classFigs.push(pageFigure(f));
  }
  sections.push({ heading: 'Precision-recall per class', figures: classFigs });

  const a = opts.analysis;
  if (a) {
    const f1 = await fig('f1_curve', scoreCurveSpec(a.curves, 'f1'));
    const p = await fig('p_curve', scoreCurveSpec(a.curves, 'precision'));
    const r = await fig('r_curve', scoreCurveSpec(a.curves, 'recall'));
    const b = a.curves.best;
    sections.push({
      heading: 'Score threshold',
      text: `Best mean F1 ${b.f1.toFixed(3)} at score ${b.threshold.toFixed(2)} (precision ${Number.isNaN(b.precision) ? '-' : b.precision.toFixed(3)}, recall ${b.recall.toFixed(3)}, IoU ${a.curves.iouThreshold}): a good threshold for deployment.`,
      figures: [pageFigure(f1), pageFigure(p), pageFigure(r)],
    });
    const cm = await fig('confusion_matrix', confusionSpec(a.confusion));
    sections.push({
      heading: 'Confusion matrix',
      text: `Rows: ground-truth class (last row: detections that overlap nothing, background false positives); columns: predicted class (last column: ground truth no detection of its class found). Detections with score >= ${a.confusion.scoreThreshold.toFixed(2)}, IoU >= ${a.confusion.iouThreshold}.`,
      figures: [pageFigure(cm)],
    });
    const e = a.errors;
    const overall = await fig('errors/overall', gridOf([[0, 1].map((ar) => errorSpec(e.overall, e.recall, ar, e.areaLabels[ar]!, { width: 300, height: 230 })), [2, 3].map((ar) => errorSpec(e.overall, e.recall, ar, e.areaLabels[ar]!, { width: 300, height: 230 }))], 'COCO error analysis'));
    const perClass: PageFigure[] = [];
    for (const [k, c] of e.perClass.entries()) {
      if (c.numGt[0] === 0) continue;
      perClass.push(pageFigure(await fig(`errors/${fileSafe(k, c.name)}`, errorSpec(c, e.recall, 0, 'all', { width: 300, height: 230 }))));
    }
    sections.push({
      heading: 'Error analysis',
      text:
        'Precision-recall with errors removed one kind at a time (the COCO API analyze): C75 and C50 are PR at IoU 0.75 and 0.5; Loc at IoU 0.1 (localisation errors forgiven); Sim also forgives confusions with classes of the same supercategory, Oth with any class; BG removes every false positive, FN every miss. The number before each name is the area under that curve.',
      figures: [pageFigure(overall), ...perClass],
    });
  }
  sections.push(...(opts.sectionsAfter ?? []));
  const json = {
    ...cocoStatsJson(result),
    perCategory: result.perCategory,
    counts: result.counts,
    ...(a ? { bestF1: a.curves.best, confusion: { labels: a.confusion.labels, counts: a.confusion.counts, scoreThreshold: a.confusion.scoreThreshold, iouThreshold: a.confusion.iouThreshold } } : {}),
    ...(a ? { errorAnalysis: Object.fromEntries(ERROR_TYPES.map((t, i) => [t, a.errors.overall.ap[i]![0]])) } : {}),
    ...(opts.extraJson ?? {}),
  };
  await writeFile(path.join(dir, 'metrics.json'), JSON.stringify(json, null, 1));
  const page = await writeReportPage(dir, {
    title: opts.title ?? 'COCO bbox evaluation',
    intro: `${result.counts.images} images, ${result.counts.categories} categories, ${result.counts.gts} ground-truth boxes, ${result.counts.dets} detections evaluated (pycocotools-identical COCOeval).`,
    sections,
  });
  return { ...page, json: 'metrics.json', plots };
}

/** Writes the VOC report into `dir` (created if needed). */
export async function writeVocReport(dir: string, result: VocEvalResult, title = 'Pascal VOC evaluation'): Promise<ReportFiles> {
  await mkdir(dir, { recursive: true });
  const plots: string[] = [];
  const classFigs: PageFigure[] = [];
  for (const [k, c] of result.perClass.entries()) {
    if (c.numGt === 0) continue;
    const f = await writeFigure(dir, `pr/${fileSafe(k, c.label)}`, lineChart([{ name: `IoU>=${result.iouThreshold}`, x: c.recall, y: c.precision }], { title: `${c.label}: AP=${num(c.apArea)} (11pt ${num(c.ap11)})`, ...PR_AXES, width: 300, height: 240 }));
    plots.push(f.png);
    classFigs.push(pageFigure(f));
  }
  // Overall: per-class envelopes sampled on a 101-point recall grid, averaged over classes.
  const grid = Array.from({ length: 101 }, (_, i) => i / 100);
  const valid = result.perClass.filter((c) => c.numGt > 0);
  const overall = grid.map((g) => meanOf(valid.length, (j) => envelopeAt(valid[j]!.recall, valid[j]!.precision, g)));
  const of = await writeFigure(dir, 'pr_overall', lineChart([{ name: 'mean over classes', x: grid, y: overall.map((p) => (p < 0 ? NaN : p)) }], { title: `All classes, mAP=${num(result.mAPArea)}`, ...PR_AXES }));
  plots.unshift(of.png);
  await writeFile(
    path.join(dir, 'metrics.json'),
    JSON.stringify({ iouThreshold: result.iouThreshold, mAP11: result.mAP11, mAPArea: result.mAPArea, perClass: result.perClass.map(({ precision: _p, recall: _r, ...rest }) => rest) }, null, 1),
  );
  const page = await writeReportPage(dir, {
    title,
    intro: `AP at IoU >= ${result.iouThreshold}; difficult objects ignored. mAP (area) ${num(result.mAPArea)}, mAP (11-point) ${num(result.mAP11)}.`,
    sections: [
      {
        heading: 'Per class',
        table: {
          head: ['class', 'AP (area)', 'AP (11-point)', 'gts', 'dets', 'TP', 'FP'],
          rows: result.perClass.map((c) => [c.label, num(c.apArea), num(c.ap11), String(c.numGt), String(c.numDets), String(c.tp), String(c.fp)]),
        },
      },
      { heading: 'Precision-recall, all classes', figures: [pageFigure(of)] },
      { heading: 'Precision-recall per class', figures: classFigs },
    ],
  });
  return { ...page, json: 'metrics.json', plots };
}

/** Interpolated precision (max precision at recall >= r), 0 past the last recall reached. */
function envelopeAt(recall: ArrayLike<number>, precision: ArrayLike<number>, r: number): number {
  let p = 0;
  for (let j = 0; j < recall.length; j++) if (recall[j]! >= r && precision[j]! > p) p = precision[j]!;
  return p;
}
