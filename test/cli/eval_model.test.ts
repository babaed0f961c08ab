import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { labelCategories } from '../../src/model/labels.js';
import { writeSyntheticCoco } from '../../src/data/synthetic.js';
import { STACK_LINE, cli, tempDir, tinyModel } from './helpers.js';

let dir = '';
let weights = '';

before(async () => {
  dir = tempDir('eval');
  weights = await tinyModel(dir);
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('eval --weights --data synthetic prints the 12-line COCO summary and saves detections', () => {
  const dets = path.join(dir, 'dets.json');
  const r = cli('eval', '--weights', weights, '--data', 'synthetic', '--max-images', '3', '--score-thresh', '0', '--detections-per-img', '4', '--save-dets', dets);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 12, r.stdout);
  assert.match(lines[0]!, /^ Average Precision {2}\(AP\) @\[ IoU=0\.50:0\.95 \| area= {3}all \| maxDets=100 \] = -?\d\.\d{3}$/);
  assert.match(lines[11]!, /^ Average Recall {5}\(AR\) @\[ IoU=0\.50:0\.95 \| area= large \| maxDets=100 \] = -?\d\.\d{3}$/);
  assert.match(r.stderr, /eval 3\/3 100%/);
  assert.match(r.stderr, /12 detections on 3 image\(s\) written to/);
  const saved = JSON.parse(readFileSync(dets, 'utf8')) as { image_id: number; category_id: number }[];
  assert.equal(saved.length, 12);
  assert.deepEqual([...new Set(saved.map((d) => d.image_id))].sort(), [1, 2, 3]);
  assert.ok(saved.every((d) => [1, 2, 3, 4].includes(d.category_id)));
});

test('eval --weights --data --json --per-class prints one JSON object', () => {
  const r = cli('eval', '--weights', weights, '--data', 'synthetic', '--max-images', '1', '--json', '--per-class', '--quiet');
  assert.equal(r.status, 0, r.stderr);
  const obj = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.equal(Object.keys(obj).length, 14);
  assert.deepEqual(Object.keys(obj.perClass as object), ['circle', 'square', 'triangle', 'cross']);
  assert.deepEqual(Object.keys(obj.perClassAP50 as object), ['circle', 'square', 'triangle', 'cross']);
  assert.equal(r.stderr, '');
});

test('eval --weights --data on a COCO dataset agrees with detect --gt followed by eval --gt --dets', async () => {
  const gt = await writeSyntheticCoco(path.join(dir, 'coco'), { count: 2, imageSize: 64, seed: 3 }, 'val');
  const viaModel = path.join(dir, 'model_dets.json');
  const a = cli('eval', '--weights', weights, '--data', gt, '--score-thresh', '0', '--json', '--quiet', '--save-dets', viaModel);
  assert.equal(a.status, 0, a.stderr);

  const viaFile = path.join(dir, 'detect_dets.json');
  const d = cli('detect', path.join(dir, 'coco', 'val'), '--weights', weights, '--gt', gt, '--score-thresh', '0', '--out', viaFile);
  assert.equal(d.status, 0, d.stderr);
  const b = cli('eval', '--gt', gt, '--dets', viaFile, '--json');
  assert.equal(b.status, 0, b.stderr);

  assert.deepEqual(JSON.parse(readFileSync(viaModel, 'utf8')), JSON.parse(readFileSync(viaFile, 'utf8')));
  assert.deepEqual(JSON.parse(a.stdout), JSON.parse(b.stdout));
});

test('eval model-mode argument errors exit 2 without a stack trace', () => {
  const cases: [string[], RegExp][] = [
    [['--weights', weights], /needs both --weights W\.safetensors and --data DATASET/],
    [['--data', 'synthetic'], /needs both --weights/],
    [['--weights', path.join(dir, 'nope.safetensors'), '--data', 'synthetic'], /--weights .*nope\.safetensors not found/],
    [['--weights', weights, '--data', path.join(dir, 'nope.json')], /dataset .*nope\.json not found/],
    [['--weights', weights, '--data', 'synthetic', '--max-images', '0'], /--max-images must be >= 1/],
    [['--weights', weights, '--data', 'synthetic', '--gt', 'gt.json'], /--gt cannot be combined with --weights\/--data/],
    [['--gt', 'gt.json', '--dets', 'd.json', '--threads', '2'], /--threads applies to --weights\/--data evaluation only/],
  ];
  for (const [args, message] of cases) {
    const r = cli('eval', ...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, STACK_LINE);
  }
});

test('labelCategories maps model labels to dataset category ids by name, by index, or as COCO ids', () => {
  const coco = { classNames: ['person', 'bicycle', 'car'], categoryIds: [1, 2, 3] };
  assert.deepEqual(labelCategories(2, ['car', 'tree'], coco).categoryIds, [3, -1]);
  assert.deepEqual(labelCategories(3, undefined, { classNames: ['a', 'b', 'c'], categoryIds: [5, 7, 9] }), { categoryIds: [5, 7, 9] });
  const guessed = labelCategories(91, undefined, coco);
  assert.deepEqual(guessed.categoryIds.slice(0, 4), [0, 1, 2, 3]);
  assert.match(guessed.note!, /torchvision COCO convention/);
  assert.throws(() => labelCategories(2, ['tree', 'bush'], coco), /none of the model's classes/);
  assert.throws(() => labelCategories(2, undefined, coco), /cannot tell which is which/);
});
