/**
 * What `train --val` and `eval --report` write for a user to look at (issue 19), from the
 * command line: results.csv / results.png, report.html with its figures and image grids, the
 * loss CDF, the best-F1 line, the anchor warning; and that their numbers agree with each other
 * and with `eval --json`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { writeSyntheticCoco } from '../../src/data/synthetic.js';
import { demoConfig } from '../../src/train/demo_config.js';
import { assertLabels, assertPng, readSvg } from '../plot/helpers.js';
import { STACK_LINE, cli, tempDir, tinyModel } from './helpers.js';

let dir = '';
let weights = '';
let trainJson = '';
let valJson = '';
let config = '';

before(async () => {
  dir = tempDir('report');
  weights = await tinyModel(dir);
  trainJson = await writeSyntheticCoco(path.join(dir, 'data'), { count: 4, imageSize: 64, seed: 1 }, 'train');
  valJson = await writeSyntheticCoco(path.join(dir, 'data'), { count: 3, imageSize: 64, seed: 2 }, 'val');
  config = path.join(dir, 'tiny-config.json');
  const { classNames: _names, numClasses: _n, ...cfg } = demoConfig(64);
  // Score threshold 0: an untrained model's scores (about the 0.01 prior) still give detections, so AP is not 0.
  writeFileSync(config, JSON.stringify({ ...cfg, arch: 'retinanet_resnet18_fpn_small', inference: { ...cfg.inference, scoreThresh: 0, detectionsPerImg: 300 } }));
});

after(() => rmSync(dir, { recursive: true, force: true }));

function oneLineError(args: string[], message: RegExp): void {
  const r = cli(...args);
  assert.equal(r.status, 2, `${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
  assert.match(r.stderr, message, args.join(' '));
  assert.doesNotMatch(r.stderr, STACK_LINE);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
}

test('train --val writes results.csv / results.png and report.html whose AP is the last validation and eval --json of the final weights', async () => {
  const out = path.join(dir, 'run');
  const r = cli('train', '--data', trainJson, '--val', valJson, '--config', config, '--iters', '2', '--val-every', '2', '--batch', '2', '--size-divisible', '32', '--threads', '1', '--quiet', '--out', out);
  assert.equal(r.status, 0, r.stderr);
  const line = /^report: (.*report\.html) \(AP (\d\.\d{3}); best F1 (\d\.\d{3}) at score threshold (\d\.\d\d)\)$/m.exec(r.stderr);
  assert.ok(line, r.stderr);
  assert.equal(line[1], path.join(out, 'report.html'));
  assert.match(r.stdout, /results .*results\.png/);

  const csv = readFileSync(path.join(out, 'results.csv'), 'utf8').trim().split('\n').map((l) => l.split(','));
  assert.deepEqual(csv[0], ['iter', 'loss', 'loss_cls', 'loss_box', 'lr', 'num_fg', 'time', 'AP', 'AP50']);
  assert.deepEqual(csv.slice(1).map((row) => row[0]), ['1', '2']);
  const last = csv[2]!;
  assert.equal(csv[1]![7], '');
  const log = readFileSync(path.join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number | string>);
  const val = log.find((x) => x['type'] === 'val')!;
  assert.equal(val['iter'], 2);
  assert.equal(Number(last[7]), val['AP']);
  assert.equal(Number(last[8]), val['AP50']);
  assert.ok(Number(last[7]) > 0, 'AP of the final model is not 0: the comparisons below mean something');
  for (const [k, row] of csv.slice(1).entries()) assert.equal(Number(row[1]), log.filter((x) => x['type'] !== 'val')[k]!['loss']);
  await assertPng(out, 'results.png');
  assertLabels(readSvg(out, 'results.svg'), ['AP50', 'AP (0.50:0.95)', 'lr', 'iteration'], 'results');

  // The report evaluates the same final weights on the same set as the last validation.
  const metrics = JSON.parse(readFileSync(path.join(out, 'metrics.json'), 'utf8')) as { AP: number; AP50: number; bestF1: { threshold: number; f1: number } };
  assert.equal(metrics.AP, val['AP']);
  assert.equal(metrics.AP.toFixed(3), line[2]);
  assert.equal(metrics.bestF1.f1.toFixed(3), line[3]);
  assert.equal(metrics.bestF1.threshold.toFixed(2), line[4]);
  const e = cli('eval', '--weights', path.join(out, 'model.safetensors'), '--data', valJson, '--threads', '1', '--json', '--quiet');
  assert.equal(e.status, 0, e.stderr);
  const ev = JSON.parse(e.stdout) as { AP: number; AP50: number };
  assert.equal(ev.AP, metrics.AP);
  assert.equal(ev.AP50, metrics.AP50);

  const html = readFileSync(path.join(out, 'report.html'), 'utf8');
  for (const f of ['results.png', 'pr_curve.png', 'f1_curve.png', 'p_curve.png', 'r_curve.png', 'confusion_matrix.png', 'errors/overall.png', 'val_images.jpg']) {
    assert.ok(html.includes(`src="${f}"`), f);
    if (f.endsWith('.png')) await assertPng(out, f);
  }
  assert.match(html, /retinanet train --data \S+ --val \S+ --config/);
  assert.match(html, /&quot;scoreThresh&quot;: 0/);
  // 3 validation images: 6 tiles of 400x300, 4 a row.
  const grid = await sharp(path.join(out, 'val_images.jpg')).metadata();
  assert.deepEqual([grid.width, grid.height], [4 * 400 + 5 * 6, 2 * 300 + 3 * 6]);
});

test('train warns at the start when more than 1% of the boxes have no anchor, naming the classes and the command to run; --no-report', async () => {
  const data = path.join(dir, 'tiny-boxes');
  mkdirSync(data);
  await sharp({ create: { width: 400, height: 300, channels: 3, background: '#808080' } }).png().toFile(path.join(data, 'a.png'));
  // At the demo's 64 px the 4 px dot shrinks below a pixel: no anchor covers it.
  writeFileSync(path.join(data, 'train.csv'), 'a.png,100,50,300,250,square\na.png,10,10,14,14,dot\n');
  const out = path.join(dir, 'run-tiny');
  const r = cli('train', '--data', path.join(data, 'train.csv'), '--val', path.join(data, 'train.csv'), '--no-report', '--config', config, '--iters', '1', '--size-divisible', '32', '--threads', '1', '--quiet', '--out', out);
  assert.equal(r.status, 0, r.stderr);
  // --no-report: the run's figures, but no report.
  assert.ok(existsSync(path.join(out, 'results.png')));
  assert.ok(!existsSync(path.join(out, 'report.html')));
  assert.doesNotMatch(r.stderr, /writing the report|^report:/m);
  assert.match(r.stderr, /^warning: 1 of 2 training boxes \(50\.0%\) have no anchor with IoU >= 0\.5 after resizing to 64\/64 \(most in dot 1\); .*'retinanet anchors optimize \S+train\.csv --config \S+tiny-config\.json' suggests anchors that cover them\.$/m);
});

test('eval --weights --data --report --loss-cdf writes the figures, both image grids and loss_cdf.png, and prints the best F1 it stores', async () => {
  const rep = path.join(dir, 'eval-report');
  const r = cli('eval', '--weights', weights, '--data', valJson, '--score-thresh', '0', '--detections-per-img', '300', '--threads', '1', '--quiet', '--report', rep, '--loss-cdf');
  assert.equal(r.status, 0, r.stderr);
  const best = /^best F1 (\d\.\d{3}) at score threshold (\d\.\d\d) \(precision (-|\d\.\d{3}), recall (\d\.\d{3}), IoU 0\.5\)$/m.exec(r.stderr);
  assert.ok(best, r.stderr);
  const metrics = JSON.parse(readFileSync(path.join(rep, 'metrics.json'), 'utf8')) as { AP: number; bestF1: { threshold: number; f1: number; recall: number }; confusion: { counts: number[][] }; perCategory: { name: string; numGt: number }[] };
  assert.equal(metrics.bestF1.f1.toFixed(3), best[1]);
  assert.equal(metrics.bestF1.threshold.toFixed(2), best[2]);
  assert.equal(metrics.bestF1.recall.toFixed(3), best[4]);
  assert.match(r.stderr, /report written to .*report\.html \(\d+ figures\)/);
  // The summary's AP is the report's.
  assert.equal(Number(/= (-?\d\.\d{3})$/m.exec(r.stdout)![1]), Number(metrics.AP.toFixed(3)));
  // Confusion matrix: a class's missed boxes (last column) are at most its boxes, and some are found.
  const K = metrics.perCategory.length;
  assert.equal(metrics.confusion.counts.length, K + 1);
  for (const [k, c] of metrics.perCategory.entries()) assert.ok(metrics.confusion.counts[k]![K]! <= c.numGt, c.name);
  assert.ok(metrics.confusion.counts.slice(0, K).some((row, k) => row[k]! > 0), 'no true positive at all');

  await assertPng(rep, 'loss_cdf.png');
  assertLabels(readSvg(rep, 'loss_cdf.svg'), ['γ = 0', 'γ = 2', 'fraction of positive anchors', 'fraction of negative anchors'], 'loss_cdf');
  for (const f of ['val_images.jpg', 'worst_images.jpg']) assert.equal((await sharp(path.join(rep, f)).metadata()).format, 'jpeg', f);
  const html = readFileSync(path.join(rep, 'report.html'), 'utf8');
  for (const s of ['src="loss_cdf.png"', 'src="val_images.jpg"', 'src="worst_images.jpg"', 'src="confusion_matrix.png"', '--loss-cdf']) assert.ok(html.includes(s), s);
});

test('eval --report-score sets the confusion matrix threshold; report flags given wrongly are one-line errors', async () => {
  const rep = path.join(dir, 'eval-report-score');
  const r = cli('eval', '--weights', weights, '--data', valJson, '--max-images', '1', '--score-thresh', '0', '--threads', '1', '--quiet', '--report', rep, '--report-score', '0.5');
  assert.equal(r.status, 0, r.stderr);
  const metrics = JSON.parse(readFileSync(path.join(rep, 'metrics.json'), 'utf8')) as { confusion: { scoreThreshold: number; counts: number[][] } };
  assert.equal(metrics.confusion.scoreThreshold, 0.5);
  // An untrained model scores about 0.01: at 0.5 nothing is detected, every box is missed.
  const k = metrics.confusion.counts.length - 1;
  assert.ok(metrics.confusion.counts.slice(0, k).every((row) => row.slice(0, k).every((v) => v === 0) && row[k]! >= 0));
  assert.ok(metrics.confusion.counts[k]!.every((v) => v === 0));
  assert.match(readSvg(rep, 'confusion_matrix.svg'), /score &gt;= 0\.50/);
  // The worst image shows its missed boxes in red.
  const { data, info } = await sharp(path.join(rep, 'worst_images.jpg')).raw().toBuffer({ resolveWithObject: true });
  let red = 0;
  for (let i = 0; i < data.length; i += info.channels) if (data[i]! > 200 && data[i + 1]! < 80 && data[i + 2]! < 80) red++;
  assert.ok(red > 100, `${red} red pixels`);

  oneLineError(['eval', '--weights', weights, '--data', valJson, '--loss-cdf'], /--loss-cdf writes into the report: give --report DIR too/);
  oneLineError(['eval', '--weights', weights, '--data', valJson, '--report', path.join(dir, 'r2'), '--report-score', '1.5'], /--report-score must be <= 1/);
  oneLineError(['eval', '--gt', valJson, '--dets', valJson, '--report', path.join(dir, 'r3'), '--loss-cdf'], /--loss-cdf applies to --weights\/--data evaluation only/);
  oneLineError(['train', '--data', trainJson, '--report-score', 'x'], /--report-score/);
  // The loss CDF needs every anchor's logits: a trained model, not detections or an exported graph.
  const onnx = path.join(dir, 'model.onnx');
  writeFileSync(onnx, 'not read');
  oneLineError(['eval', '--weights', onnx, '--data', valJson, '--report', path.join(dir, 'r4'), '--loss-cdf'], /--loss-cdf needs the trained weights \(\.safetensors or \.pth\)/);
  oneLineError(['eval', '--data', valJson, '--dets', onnx, '--report', path.join(dir, 'r5'), '--loss-cdf'], /--loss-cdf needs a model \(--weights\)/);
});
