import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { STACK_LINE, cli, corruptPng, noisePng, tempDir, tinyModel } from './helpers.js';

let dir = '';
let weights = '';
let images = '';

before(async () => {
  dir = tempDir('detect');
  weights = await tinyModel(dir);
  images = path.join(dir, 'images');
  mkdirSync(images);
  await noisePng(path.join(images, 'a.png'), 80, 60, 1);
  await noisePng(path.join(images, 'b.png'), 64, 96, 2);
  corruptPng(path.join(images, 'c_broken.png'));
});

after(() => rmSync(dir, { recursive: true, force: true }));

interface Result {
  image_id: number;
  category_id: number;
  bbox: number[];
  score: number;
}

test('detect writes COCO results and .images.json, draws PNGs, and skips a corrupt image', () => {
  const out = path.join(dir, 'out', 'dets.json');
  const draw = path.join(dir, 'drawn');
  // Score threshold 0: a random model's scores sit near the 0.01 prior, below the default 0.05.
  const r = cli('detect', images, '--weights', weights, '--out', out, '--draw', draw, '--score-thresh', '0', '--detections-per-img', '5');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /c_broken\.png.*skipped/);
  assert.doesNotMatch(r.stderr, STACK_LINE);
  assert.match(r.stdout, /10 detections on 2 image\(s\) written to .*dets\.json.*1 image\(s\) skipped/);

  const results = JSON.parse(readFileSync(out, 'utf8')) as Result[];
  assert.equal(results.length, 10);
  for (const d of results) {
    assert.ok([1, 2].includes(d.image_id), `image_id ${d.image_id}`);
    assert.ok([1, 2, 3, 4].includes(d.category_id), `category_id ${d.category_id} comes from the sidecar`);
    assert.equal(d.bbox.length, 4);
    assert.ok(d.bbox[2]! >= 0 && d.bbox[3]! >= 0 && d.score >= 0 && d.score <= 1);
  }
  const list = JSON.parse(readFileSync(path.join(dir, 'out', 'dets.images.json'), 'utf8')) as { id: number; file_name: string; width: number; height: number }[];
  assert.deepEqual(list, [
    { id: 1, file_name: 'a.png', width: 80, height: 60 },
    { id: 2, file_name: 'b.png', width: 64, height: 96 },
  ]);
  assert.deepEqual(readdirSync(draw).sort(), ['a.png.png', 'b.png.png']);
  for (const f of ['a.png.png', 'b.png.png']) assert.deepEqual([...readFileSync(path.join(draw, f)).subarray(1, 4)], [...Buffer.from('PNG')]);
});

test('detect without --weights, with missing weights, or with weights of another architecture exits 2 without a stack trace', () => {
  const image = path.join(images, 'a.png');
  const cases: [string[], RegExp][] = [
    [['detect', image], /--weights is required/],
    [['detect', image, '--weights', path.join(dir, 'nope.safetensors')], /--weights .*nope\.safetensors not found/],
    [['detect', image, '--weights', weights, '--arch', 'retinanet_resnet18_fpn_small'], /weights .*tiny\.safetensors do not fit retinanet_resnet18_fpn_small with 4 classes/],
    [['detect', image, '--weights', weights, '--arch', 'no_such_arch'], /unknown --arch 'no_such_arch'/],
    [['detect', '--weights', weights], /give at least one image or folder/],
  ];
  for (const [args, message] of cases) {
    const r = cli(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, STACK_LINE);
  }
});

test('detect of only unreadable images exits 1 and still writes an empty results file', () => {
  const only = path.join(dir, 'only_broken');
  mkdirSync(only);
  copyFileSync(path.join(images, 'c_broken.png'), path.join(only, 'x.png'));
  const out = path.join(dir, 'empty.json');
  const r = cli('detect', only, '--weights', weights, '--out', out);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stdout, /0 detections on 0 image\(s\).*1 image\(s\) skipped/);
  assert.ok(existsSync(out));
  assert.deepEqual(JSON.parse(readFileSync(out, 'utf8')), []);
});
