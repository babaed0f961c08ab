/**
 * `eval --report DIR`: a Markdown and an HTML report with the metric tables, a JSON dump
 * of the numbers, and SVG precision-recall curves (overall and one per class).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { CocoEvalResult } from './coco.js';
import { prCurveSvg, type PrSeries } from './plot.js';
import { cocoStatsJson, formatCocoSummary, formatFixed3 } from './summary.js';
import type { VocEvalResult } from './voc.js';

/** Files written, relative to the report folder. */
export interface ReportFiles {
  markdown: string;
  html: string;
  json: string;
  plots: string[];
}

interface Table {
  head: string[];
  rows: string[][];
}

function fileSafe(k: number, name: string): string {
  return `${String(k).padStart(2, '0')}_${name.replace(/[^A-Za-z0-9_.-]+/g, '_')}.svg`;
}

function num(v: number): string {
  return v < 0 ? '-' : formatFixed3(v);
}

function markdownTable(t: Table): string {
  return [`| ${t.head.join(' | ')} |`, `|${t.head.map(() => '---').join('|')}|`, ...t.rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function htmlTable(t: Table): string {
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  return `<table>\n<tr>${t.head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>\n${t.rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('\n')}\n</table>`;
}

function writeDocs(dir: string, title: string, intro: string, sections: { heading: string; table?: Table; pre?: string; images?: string[] }[]): { markdown: string; html: string } {
  const md: string[] = [`# ${title}`, '', intro, ''];
  const html: string[] = [
    `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title>`,
    '<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}td:first-child{text-align:left}img{margin:4px}</style>',
    `</head><body><h1>${title}</h1><p>${intro}</p>`,
  ];
  for (const s of sections) {
    md.push(`## ${s.heading}`, '');
    html.push(`<h2>${s.heading}</h2>`);
    if (s.pre) {
      md.push('```', s.pre, '```', '');
      html.push(`<pre>${s.pre.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</pre>`);
    }
    if (s.table) {
      md.push(markdownTable(s.table), '');
      html.push(htmlTable(s.table));
    }
    if (s.images) {
      md.push(s.images.map((f) => `![${f}](${f})`).join('\n'), '');
      html.push(`<div>${s.images.map((f) => `<img src="${f}" alt="${f}">`).join('')}</div>`);
    }
  }
  html.push('</body></html>');
  writeFileSync(path.join(dir, 'report.md'), md.join('\n'));
  writeFileSync(path.join(dir, 'report.html'), html.join('\n'));
  return { markdown: 'report.md', html: 'report.html' };
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

/** Writes the COCO report into `dir` (created if needed). Curves use area "all" and the largest maxDets. */
export function writeCocoReport(dir: string, result: CocoEvalResult, title = 'COCO bbox evaluation'): ReportFiles {
  mkdirSync(path.join(dir, 'pr'), { recursive: true });
  const { T, R, K, A, M } = result.shape;
  const rec = [...result.params.recThrs];
  const at = (t: number, r: number, k: number): number => result.precision[(((t * R + r) * K + k) * A + 0) * M + (M - 1)]!;
  const t50 = result.params.iouThrs.indexOf(0.5), t75 = result.params.iouThrs.indexOf(0.75);
  const curves = (k: number | null): PrSeries[] => {
    const ks = k === null ? [...Array(K).keys()] : [k];
    const one = (ts: number[]): number[] => rec.map((_, r) => meanOf(ts.length * ks.length, (j) => at(ts[Math.floor(j / ks.length)]!, r, ks[j % ks.length]!)));
    const series: PrSeries[] = [];
    if (t50 >= 0) series.push({ label: 'IoU=0.50', recall: rec, precision: one([t50]) });
    if (t75 >= 0) series.push({ label: 'IoU=0.75', recall: rec, precision: one([t75]) });
    series.push({ label: 'IoU=0.50:0.95 (mean)', recall: rec, precision: one([...Array(T).keys()]) });
    return series;
  };
  const plots = ['pr_overall.svg'];
  writeFileSync(path.join(dir, 'pr_overall.svg'), prCurveSvg(curves(null), { title: `All classes (mean over classes), AP=${num(result.stats.AP)}` }));
  const classPlots: string[] = [];
  result.perCategory.forEach((c, k) => {
    if (c.numGt === 0) return;
    const f = `pr/${fileSafe(k, c.name)}`;
    writeFileSync(path.join(dir, f), prCurveSvg(curves(k), { title: `${c.name}: AP=${num(c.AP)}, AP50=${num(c.AP50)}` }));
    classPlots.push(f);
  });
  plots.push(...classPlots);
  writeFileSync(path.join(dir, 'metrics.json'), JSON.stringify({ ...cocoStatsJson(result), perCategory: result.perCategory, counts: result.counts }, null, 1));
  const cols = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR100'] as const;
  const docs = writeDocs(
    dir,
    title,
    `${result.counts.images} images, ${result.counts.categories} categories, ${result.counts.gts} ground-truth boxes, ${result.counts.dets} detections evaluated (pycocotools-identical COCOeval).`,
    [
      { heading: 'Summary', pre: formatCocoSummary(result) },
      { heading: 'Per class', table: { head: ['class', ...cols, 'gts'], rows: result.perCategory.map((c) => [c.name, ...cols.map((k) => num(c[k])), String(c.numGt)]) } },
      { heading: 'Precision-recall, all classes', images: ['pr_overall.svg'] },
      { heading: 'Precision-recall per class', images: classPlots },
    ],
  );
  return { ...docs, json: 'metrics.json', plots };
}

/** Writes the VOC report into `dir` (created if needed). */
export function writeVocReport(dir: string, result: VocEvalResult, title = 'Pascal VOC evaluation'): ReportFiles {
  mkdirSync(path.join(dir, 'pr'), { recursive: true });
  const classPlots: string[] = [];
  result.perClass.forEach((c, k) => {
    if (c.numGt === 0) return;
    const f = `pr/${fileSafe(k, c.label)}`;
    writeFileSync(path.join(dir, f), prCurveSvg([{ label: `IoU>=${result.iouThreshold}`, recall: c.recall, precision: c.precision }], { title: `${c.label}: AP=${num(c.apArea)} (11pt ${num(c.ap11)})` }));
    classPlots.push(f);
  });
  // Overall: per-class envelopes sampled on a 101-point recall grid, averaged over classes.
  const grid = Array.from({ length: 101 }, (_, i) => i / 100);
  const valid = result.perClass.filter((c) => c.numGt > 0);
  const overall = grid.map((g) => meanOf(valid.length, (j) => envelopeAt(valid[j]!.recall, valid[j]!.precision, g)));
  writeFileSync(path.join(dir, 'pr_overall.svg'), prCurveSvg([{ label: 'mean over classes', recall: grid, precision: overall }], { title: `All classes, mAP=${num(result.mAPArea)}` }));
  writeFileSync(
    path.join(dir, 'metrics.json'),
    JSON.stringify({ iouThreshold: result.iouThreshold, mAP11: result.mAP11, mAPArea: result.mAPArea, perClass: result.perClass.map(({ precision: _p, recall: _r, ...rest }) => rest) }, null, 1),
  );
  const docs = writeDocs(dir, title, `AP at IoU >= ${result.iouThreshold}; difficult objects ignored. mAP (area) ${num(result.mAPArea)}, mAP (11-point) ${num(result.mAP11)}.`, [
    {
      heading: 'Per class',
      table: {
        head: ['class', 'AP (area)', 'AP (11-point)', 'gts', 'dets', 'TP', 'FP'],
        rows: result.perClass.map((c) => [c.label, num(c.apArea), num(c.ap11), String(c.numGt), String(c.numDets), String(c.tp), String(c.fp)]),
      },
    },
    { heading: 'Precision-recall, all classes', images: ['pr_overall.svg'] },
    { heading: 'Precision-recall per class', images: classPlots },
  ]);
  return { ...docs, json: 'metrics.json', plots: ['pr_overall.svg', ...classPlots] };
}

/** Interpolated precision (max precision at recall >= r), 0 past the last recall reached. */
function envelopeAt(recall: ArrayLike<number>, precision: ArrayLike<number>, r: number): number {
  let p = 0;
  for (let j = 0; j < recall.length; j++) if (recall[j]! >= r && precision[j]! > p) p = precision[j]!;
  return p;
}
