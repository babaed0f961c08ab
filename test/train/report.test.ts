/**
 * The figures of a small training run: results.png / results.csv from the log, and the report
 * hook's evaluation figures, image grids and report.html; the loss CDF of the trained model.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { generateSynthetic, SYNTHETIC_CLASSES } from '../../src/data/synthetic.js';
import { memorySource } from '../../src/data/source.js';
import { RetinaNet } from '../../src/model/model.js';
import { anchorLossCdf, lossCdfSpec } from '../../src/model/loss_cdf.js';
import { writeFigure } from '../../src/plot/render.js';
import { demoConfig } from '../../src/train/demo_config.js';
import { ReportHook } from '../../src/train/report_hook.js';
import { Trainer } from '../../src/train/trainer.js';
import { assertLabels, assertPng, readSvg } from '../plot/helpers.js';

const SIZE = 96;
const train = memorySource(generateSynthetic({ count: 8, seed: 5, imageSize: SIZE, minObjectSize: 12, maxObjectSize: 60 }), SYNTHETIC_CLASSES);
const val = memorySource(generateSynthetic({ count: 6, seed: 9, imageSize: SIZE, minObjectSize: 12, maxObjectSize: 60 }), SYNTHETIC_CLASSES);

test('a small run writes results.csv / results.png, and the report hook report.html with every figure and both image grids', async () => {
  const dir = process.env['RETINANET_KEEP_REPORT'] ?? mkdtempSync(path.join(tmpdir(), 'retinanet-report-test-'));
  const model = new RetinaNet(demoConfig(SIZE), 1);
  const messages: string[] = [];
  const hook = new ReportHook(dir, val, { command: 'retinanet train --data synthetic', onProgress: (m) => messages.push(m) });
  const r = await new Trainer(model, train, {
    iters: 6, batchSize: 2, lr: 0.01, warmupIters: 1, padTo: 32, seed: 3, threads: 1, outDir: dir, checkpointEvery: 100, valEvery: 3, val, hooks: [hook],
  }).run();
  assert.equal(r.stopped, 'done');

  // results.csv: a row per step, AP / AP50 on the steps after which validation ran (3 and 6).
  const csv = readFileSync(path.join(dir, 'results.csv'), 'utf8').trim().split('\n');
  assert.equal(csv[0], 'iter,loss,loss_cls,loss_box,lr,num_fg,time,AP,AP50');
  assert.equal(csv.length, 7);
  assert.deepEqual(csv.slice(1).map((l) => l.split(',')[7] !== ''), [false, false, true, false, false, true]);
  await assertPng(dir, 'results.png');
  assertLabels(readSvg(dir, 'results.svg'), ['total', 'classification (focal)', 'box regression', 'total (raw)', 'lr', 'AP50', 'AP (0.50:0.95)', 'iteration'], 'results');

  for (const f of ['pr_overall', 'pr_curve', 'f1_curve', 'p_curve', 'r_curve', 'confusion_matrix', 'errors/overall']) {
    await assertPng(dir, `${f}.png`);
    readSvg(dir, `${f}.svg`);
  }
  assertLabels(readSvg(dir, 'confusion_matrix.svg'), [...SYNTHETIC_CLASSES, 'background'], 'confusion');
  // Grids: 6 validation images as ground truth / prediction pairs, 4 tiles of 400x300 a row.
  const grid = await sharp(path.join(dir, 'val_images.jpg')).metadata();
  assert.equal(grid.format, 'jpeg');
  assert.deepEqual([grid.width, grid.height], [4 * 400 + 5 * 6, 3 * 300 + 4 * 6]);
  const html = readFileSync(path.join(dir, 'report.html'), 'utf8');
  for (const s of ['results.png', 'f1_curve.png', 'confusion_matrix.png', 'errors/overall.png', 'val_images.jpg', 'retinanet train --data synthetic', '&quot;numClasses&quot;: 4']) assert.ok(html.includes(s), s);
  assert.ok(existsSync(path.join(dir, 'worst_images.jpg')) || html.includes('No image has a missed object'));
  assert.ok(hook.report && hook.report.result.stats.AP >= 0);
  assert.match(messages.at(-1)!, /^report: .*report\.html \(AP \d\.\d{3}; best F1 \d\.\d{3} at score threshold \d\.\d\d\)$/);

  // Figure 4: the focal-loss CDF of the trained model's anchors, one line per gamma per panel.
  const cdf = await anchorLossCdf(model, val, { threads: 1 });
  assert.ok(cdf.counts.positives > 0 && cdf.counts.negatives > cdf.counts.positives);
  for (const c of [...cdf.positive, ...cdf.negative]) {
    assert.equal(c.cumulative[0], 0);
    assert.ok(Math.abs(c.cumulative[c.cumulative.length - 1]! - 1) < 1e-9);
    for (let j = 1; j < c.cumulative.length; j++) assert.ok(c.cumulative[j]! >= c.cumulative[j - 1]!);
  }
  // With gamma 2 the loss of the negatives concentrates on the hardest few: at 90% of them, less of the total than with gamma 0.
  const at = (g: number): number => cdf.negative[cdf.gammas.indexOf(g)]!.cumulative[450]!;
  assert.ok(at(2) < at(0), `${at(2)} vs ${at(0)}`);
  await writeFigure(dir, 'loss_cdf', lossCdfSpec(cdf));
  await assertPng(dir, 'loss_cdf.png');
  assertLabels(readSvg(dir, 'loss_cdf.svg'), ['γ = 0', 'γ = 0.5', 'γ = 1', 'γ = 2', 'fraction of positive anchors', 'fraction of negative anchors'], 'loss_cdf');
  await model.dispose();
});

test('a report that fails is a warning: the run still ends with its final weights', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'retinanet-report-fail-'));
  const model = new RetinaNet(demoConfig(SIZE), 1);
  const broken = { ...val, groundTruth: (): never => { throw new Error('disk on fire'); } };
  const warnings: string[] = [];
  const hook = new ReportHook(dir, broken, {});
  const r = await new Trainer(model, train, {
    iters: 1, batchSize: 2, lr: 0.01, warmupIters: 1, padTo: 32, seed: 3, threads: 1, outDir: dir, checkpointEvery: 100,
    hooks: [hook, { onWarning: (_t, m) => warnings.push(m) }],
  }).run();
  assert.equal(r.stopped, 'done');
  assert.ok(existsSync(path.join(dir, 'model.safetensors')));
  assert.ok(!existsSync(path.join(dir, 'report.html')));
  assert.equal(hook.report, undefined);
  assert.ok(warnings.some((w) => /^report not written: .*disk on fire/.test(w)), warnings.join('\n'));
  await model.dispose();
});
