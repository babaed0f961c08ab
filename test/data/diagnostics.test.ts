/**
 * Dataset and anchor diagnostics: data check --draw marks boxes no anchor covers in red,
 * --plots writes labels.png, `anchors optimize` finds anchors that cover a dataset of tiny boxes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { anchorCoverageOf, type ImageBoxes } from '../../src/data/stats.js';
import { kmeans1d, optimizeAnchors } from '../../src/data/anchor_search.js';
import { makeAnchorConfig } from '../../src/detection/anchors.js';
import { assertLabels, assertPng, readSvg } from '../plot/helpers.js';

const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });

/** 30 images of 800x800 with 4 boxes of 14-22 px each: too small for RetinaNet's 32 px anchors. */
function tinyBoxes(): ImageBoxes[] {
  return Array.from({ length: 30 }, (_, i) => {
    const boxes: number[] = [];
    for (let j = 0; j < 4; j++) {
      const s = 14 + 2 * ((i + j) % 5), x = 50 + 150 * j + i, y = 100 + 7 * i;
      boxes.push(x, y, x + s, y + s * (j % 2 === 0 ? 1 : 2));
    }
    return { width: 800, height: 800, boxes: Float32Array.from(boxes), labels: Int32Array.from([0, 1, 0, 1]) };
  });
}

test('kmeans1d finds separated clusters', () => {
  assert.deepEqual(kmeans1d([-1, -1.1, -0.9, 1, 1.1, 0.9], 2).map((c) => Math.round(c * 10) / 10), [-1, 1]);
});

test('optimizeAnchors: tiny boxes the default anchors miss are covered by smaller anchors', () => {
  const images = tinyBoxes();
  const r = optimizeAnchors(images, { minSize: 800, maxSize: 1333, numClasses: 2 });
  assert.equal(r.before.checked, 120);
  assert.ok(r.before.uncovered > 60, `before: ${r.before.uncovered} uncovered`);
  assert.ok(r.best.coverage.uncovered < r.before.uncovered / 3, `after: ${r.best.coverage.uncovered} uncovered`);
  assert.ok(r.best.baseSize <= 20);
  assert.ok(r.best.scales.length * r.best.aspectRatios.length <= 9);
  // The reported coverage is that of the config it prints.
  assert.deepEqual(anchorCoverageOf(images, 2, { minSize: 800, maxSize: 1333, anchorConfig: r.best.config }), r.best.coverage);
  assert.ok(r.tried.length > 50);
  const paper = makeAnchorConfig();
  assert.deepEqual(anchorCoverageOf(images, 2, { anchorConfig: paper }), r.before);
});

test('data check --draw marks uncovered boxes red, --plots writes labels.png; anchors optimize prints before, after and config lines', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'diag-'));
  try {
    await mkdir(path.join(dir, 'img'));
    const png = await sharp({ create: { width: 400, height: 300, channels: 3, background: '#808080' } }).png().toBuffer();
    await writeFile(path.join(dir, 'img/a.png'), png);
    // A 60 px box (covered) and a 4 px one (no anchor at IoU >= 0.5 after the resize to 800).
    await writeFile(path.join(dir, 'train.csv'), 'img/a.png,100,100,160,160,cat\nimg/a.png,300,50,304,54,dog\n');
    const r = run('data', 'check', path.join(dir, 'train.csv'), '--draw', path.join(dir, 'drawn'), '--plots', path.join(dir, 'plots'));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /drew 1 images with their boxes to .* \(1 boxes without an anchor at IoU >= 0\.5 in red\)/);
    // The small box's outline is pure red; the covered box is green.
    const { data, info } = await sharp(path.join(dir, 'drawn', 'a.png')).raw().toBuffer({ resolveWithObject: true });
    const px = (x: number, y: number): number[] => [...data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3)];
    assert.deepEqual(px(300, 52), [255, 0, 0]);
    assert.deepEqual(px(100, 130), [0, 176, 0]);
    // Checked at the resize a run would use (short side 100: the 60 px box becomes 20 px), both are red.
    const small = run('data', 'check', path.join(dir, 'train.csv'), '--no-decode', '--min-size', '100', '--max-size', '200', '--draw', path.join(dir, 'drawn-small'));
    assert.equal(small.status, 0, small.stderr);
    assert.match(small.stdout, /anchor coverage \(resized to min 100 \/ max 200\): 2 of 2 boxes \(100\.0%\) have no anchor/);
    assert.match(small.stdout, /\(2 boxes without an anchor at IoU >= 0\.5 in red\)/);
    const s2 = await sharp(path.join(dir, 'drawn-small', 'a.png')).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([...s2.data.subarray((130 * s2.info.width + 100) * s2.info.channels, (130 * s2.info.width + 100) * s2.info.channels + 3)], [255, 0, 0]);
    await assertPng(path.join(dir, 'plots'), 'labels.png');
    assertLabels(readSvg(path.join(dir, 'plots'), 'labels.svg'), ['Boxes per class (2 in all)', 'cat', 'dog', 'Box size, sqrt(w x h) in original pixels', 'Aspect ratio h / w', 'Box centres', 'small < 32'], 'labels');

    const a = run('anchors', 'optimize', path.join(dir, 'train.csv'));
    assert.equal(a.status, 0, a.stderr);
    assert.match(a.stdout, /current anchors: sizes 32\/40\/50, .*; ratios 0\.5, 1, 2 \(9 per location\)\n  1 of 2 boxes \(50\.0%\) have no anchor/);
    assert.match(a.stdout, /best of \d+ candidates: P3 base size \d+/);
    assert.match(a.stdout, /best of \d+ candidates[^\n]*\n  sizes [^\n]*\n  [01] of 2 boxes \([\d.]+%\) have no anchor with IoU >= 0\.5; mean best IoU 0\.\d{3}\n/);
    const json = JSON.parse(a.stdout.trim().split('\n').at(-1)!) as { anchors: { sizes: number[][]; aspectRatios: number[][] } };
    assert.equal(json.anchors.sizes.length, 5);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('anchors optimize --json --max-anchors: no more anchors per location than allowed, coverage no worse; usage errors exit 2', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'diag-'));
  try {
    const png = await sharp({ create: { width: 400, height: 300, channels: 3, background: '#808080' } }).png().toBuffer();
    await writeFile(path.join(dir, 'a.png'), png);
    // Squares of 6-11 px: at the default resize (x2.67) 16-29 px, too small for the smallest 32 px anchors but the largest.
    const rows = [6, 7, 8, 9, 10, 11].map((s, i) => `a.png,${20 + 60 * i},40,${20 + 60 * i + s},${40 + s},cell`);
    await writeFile(path.join(dir, 'train.csv'), rows.join('\n') + '\n');
    const a = run('anchors', 'optimize', path.join(dir, 'train.csv'), '--json', '--max-anchors', '3');
    assert.equal(a.status, 0, a.stderr);
    const j = JSON.parse(a.stdout) as { before: { checked: number; uncovered: number }; after: { checked: number; uncovered: number }; scales: number[]; aspectRatios: number[]; config: { anchors: { sizes: number[][]; aspectRatios: number[][] } } };
    assert.equal(j.before.checked, 6);
    assert.ok(j.before.uncovered > 0, `before: ${j.before.uncovered}`);
    assert.ok(j.after.uncovered < j.before.uncovered, `after: ${j.after.uncovered}`);
    assert.ok(j.scales.length * j.aspectRatios.length <= 3);
    assert.equal(j.config.anchors.sizes.length, 5);
    assert.deepEqual(j.config.anchors.aspectRatios[0], j.aspectRatios);
    // The printed config, given back with --config, is the new starting point.
    await writeFile(path.join(dir, 'anchors.json'), JSON.stringify(j.config));
    const again = run('anchors', 'optimize', path.join(dir, 'train.csv'), '--json', '--config', path.join(dir, 'anchors.json'));
    assert.equal(again.status, 0, again.stderr);
    assert.equal((JSON.parse(again.stdout) as { before: { uncovered: number } }).before.uncovered, j.after.uncovered);

    for (const [args, message] of [
      [['anchors'], /missing subcommand/],
      [['anchors', 'tune'], /unknown subcommand 'tune' \(expected: optimize\)/],
      [['anchors', 'optimize'], /expected one dataset path, got 0/],
      [['anchors', 'optimize', path.join(dir, 'train.csv'), '--max-anchors', '0'], /--max-anchors must be >= 1/],
      [['anchors', 'optimize', path.join(dir, 'nope.csv')], /nope\.csv/],
    ] as const) {
      const r = run(...args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /^\s+at .*:\d+:\d+\)?$/m);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
