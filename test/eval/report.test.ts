import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { analyzeDetections, evaluateCoco, evaluateVoc, writeCocoReport, writeVocReport } from '../../src/eval/index.js';
import { assertLabels, assertPng, readSvg, smallRun } from '../plot/helpers.js';

test('reports: COCO and VOC write markdown, html, metrics.json and one PR figure (PNG + SVG) per class with ground truth', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rn-report-'));
  try {
    const coco = evaluateCoco(
      {
        images: [{ id: 1 }],
        categories: [{ id: 1, name: 'cat/dog' }, { id: 2, name: 'none' }],
        annotations: [{ id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 10, 10], area: 100, iscrowd: 0 }],
      },
      [{ image_id: 1, category_id: 1, bbox: [0, 0, 10, 10], score: 0.9 }],
    );
    const files = await writeCocoReport(path.join(dir, 'coco'), coco);
    assert.deepEqual(files.plots, ['pr_overall.png', 'pr_curve.png', 'pr/00_cat_dog.png']);
    for (const f of files.plots) assert.ok(existsSync(path.join(dir, 'coco', f.replace(/\.png$/, '.svg'))), f);
    const md = readFileSync(path.join(dir, 'coco', 'report.md'), 'utf8');
    assert.match(md, /\| cat\/dog \| 1\.000 \|/);
    assert.match(md, /\| none \| - \|/);
    // tp / (tp + fp + eps) makes a perfect AP 0.9999999999999998, exactly as in pycocotools.
    assert.ok(Math.abs((JSON.parse(readFileSync(path.join(dir, 'coco', 'metrics.json'), 'utf8')) as { AP: number }).AP - 1) < 1e-15);

    const voc = evaluateVoc([{ imageId: 'a', label: 'x', box: [0, 0, 9, 9] }], [{ imageId: 'a', label: 'x', box: [0, 0, 9, 9], score: 1 }]);
    await writeVocReport(path.join(dir, 'voc'), voc);
    assert.deepEqual(readdirSync(path.join(dir, 'voc')).sort(), ['metrics.json', 'pr', 'pr_overall.png', 'pr_overall.svg', 'report.html', 'report.md']);
    assert.match(readFileSync(path.join(dir, 'voc', 'report.html'), 'utf8'), /<td>x<\/td><td>1\.000<\/td>/);
    await assertPng(path.join(dir, 'voc'), 'pr_overall.png');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('COCO report of a small run: PR, F1 / P / R, confusion matrix and error analysis figures with their series', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rn-report-'));
  try {
    const { gt, dets } = smallRun(0);
    const result = evaluateCoco(gt, dets);
    const analysis = analyzeDetections(gt, dets);
    const files = await writeCocoReport(dir, result, { analysis, sectionsAfter: [{ heading: 'Command', pre: 'retinanet eval ...' }] });
    const classes = ['cat', 'dog', 'car', 'bike'];
    for (const f of files.plots) await assertPng(dir, f);
    assert.deepEqual(
      files.plots.filter((f) => !f.includes('/')),
      ['pr_overall.png', 'pr_curve.png', 'f1_curve.png', 'p_curve.png', 'r_curve.png', 'confusion_matrix.png'],
    );
    assertLabels(readSvg(dir, 'pr_overall.svg'), ['IoU=0.50', 'IoU=0.75', 'IoU=0.50:0.95 (mean)', 'recall', 'precision'], 'pr_overall');
    const ap50 = (k: number): string => result.perCategory[k]!.AP50.toFixed(3);
    assertLabels(readSvg(dir, 'pr_curve.svg'), [...classes.map((c, k) => `${c} ${ap50(k)}`), `all classes ${result.stats.AP50.toFixed(3)} AP50`], 'pr_curve');
    const b = analysis.curves.best;
    assertLabels(readSvg(dir, 'f1_curve.svg'), [...classes, `all classes ${b.f1.toFixed(2)} at ${b.threshold.toFixed(2)}`, `best F1 ${b.f1.toFixed(3)} at ${b.threshold.toFixed(2)}`], 'f1_curve');
    assertLabels(readSvg(dir, 'p_curve.svg'), [...classes, 'all classes', 'score threshold'], 'p_curve');
    // Confusion matrix: every class and background on both axes, the counts in the cells.
    const cm = readSvg(dir, 'confusion_matrix.svg');
    assertLabels(cm, [...classes, 'background', 'background (missed)', 'ground truth', 'prediction'], 'confusion');
    for (const row of analysis.confusion.counts) for (const v of row) if (v > 0) assertLabels(cm, [String(v)], 'confusion cell');
    // Error analysis: the seven bands with their areas, overall (four area ranges) and per class.
    const types = ['C75', 'C50', 'Loc', 'Sim', 'Oth', 'BG', 'FN'];
    const overall = readSvg(dir, 'errors/overall.svg');
    assertLabels(overall, types.map((t, i) => `[${analysis.errors.overall.ap[i]![0]!.toFixed(3)}] ${t}`), 'errors/overall');
    for (const area of ['all', 'small', 'medium', 'large']) assert.ok(overall.includes(`area ${area} (`), area);
    assert.deepEqual(files.plots.filter((f) => f.startsWith('errors/')), ['errors/overall.png', 'errors/00_cat.png', 'errors/01_dog.png', 'errors/02_car.png', 'errors/03_bike.png']);
    assertLabels(readSvg(dir, 'errors/01_dog.svg'), types.map((t, i) => `[${analysis.errors.perClass[1]!.ap[i]![0]!.toFixed(3)}] ${t}`), 'errors/dog');
    // One page holds every figure, each linked to its SVG, and the extra sections.
    const html = readFileSync(path.join(dir, 'report.html'), 'utf8');
    for (const f of files.plots) assert.ok(html.includes(`<a href="${f.replace(/\.png$/, '.svg')}"><img src="${f}"`), f);
    assert.match(html, /<h2 id="[^"]+">Command<\/h2>\n<pre>retinanet eval \.\.\.<\/pre>/);
    const metrics = JSON.parse(readFileSync(path.join(dir, 'metrics.json'), 'utf8')) as { bestF1: { threshold: number }; confusion: { counts: number[][] }; errorAnalysis: Record<string, number> };
    assert.equal(metrics.bestF1.threshold, b.threshold);
    assert.deepEqual(metrics.confusion.counts, analysis.confusion.counts);
    assert.deepEqual(Object.keys(metrics.errorAnalysis), types);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
