/**
 * Deterministic shards: N processes over a slice each, joined by `retinanet merge`, give
 * exactly the output and AP of a single run.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { writeSyntheticCoco } from '../../src/data/synthetic.js';
import { fnv1a, inShard, parseShard } from '../../src/data/shard.js';
import { STACK_LINE, cli, noisePng, tempDir, tinyModel } from './helpers.js';

let dir = '';
let weights = '';
let images = '';
let data = '';

before(async () => {
  dir = tempDir('shard');
  weights = await tinyModel(dir);
  images = path.join(dir, 'images');
  mkdirSync(images);
  for (let i = 0; i < 7; i++) await noisePng(path.join(images, `img${i}.png`), 64 + 8 * i, 64, i + 1);
  data = path.join(dir, 'data');
  await writeSyntheticCoco(data, { count: 6, imageSize: 64, seed: 9 });
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('shards: every key in exactly one shard, stable, parsed from K/N', () => {
  const keys = Array.from({ length: 200 }, (_, i) => `photo_${i}.jpg`);
  for (const k of keys) assert.equal([1, 2, 3, 4].filter((i) => inShard(k, { index: i, count: 4 })).length, 1);
  assert.equal(fnv1a('a'), 0xe40c292c); // the FNV-1a test vector
  assert.deepEqual(parseShard('2/8'), { index: 2, count: 8 });
  for (const bad of ['0/4', '5/4', '2', 'a/b', '1/0']) assert.throws(() => parseShard(bad), /K\/N/);
});

test('detect --shard K/N, merged, equals a single detect run (results and image list)', () => {
  const common = ['--weights', weights, '--score-thresh', '0', '--detections-per-img', '3', '--quiet'];
  const single = path.join(dir, 'single.json');
  assert.equal(cli('detect', images, ...common, '--out', single).status, 0);
  const parts = [1, 2, 3].map((k) => path.join(dir, `part${k}.json`));
  for (const [k, part] of parts.entries()) {
    const r = cli('detect', images, ...common, '--shard', `${k + 1}/3`, '--out', part);
    assert.equal(r.status, 0, r.stderr);
  }
  const merged = path.join(dir, 'merged.json');
  const m = cli('merge', ...parts.reverse(), '--out', merged);
  assert.equal(m.status, 0, m.stderr);
  assert.deepEqual(JSON.parse(readFileSync(merged, 'utf8')), JSON.parse(readFileSync(single, 'utf8')));
  assert.deepEqual(JSON.parse(readFileSync(path.join(dir, 'merged.images.json'), 'utf8')), JSON.parse(readFileSync(path.join(dir, 'single.images.json'), 'utf8')));
  // Missing or repeated shards are errors.
  for (const [args, msg] of [
    [[parts[0]!, parts[1]!], /shard\(s\) .* missing/],
    [[parts[0]!, parts[0]!, parts[1]!, parts[2]!], /are both shard/],
  ] as [string[], RegExp][]) {
    const r = cli('merge', ...args, '--out', path.join(dir, 'x.json'));
    assert.equal(r.status, 2);
    assert.match(r.stderr, msg);
    assert.doesNotMatch(r.stderr, STACK_LINE);
  }
});

test('eval --shard K/N --save-dets, merged, then eval --data --dets: the AP of a single eval run', () => {
  const single = cli('eval', '--weights', weights, '--data', data, '--json', '--quiet', '--score-thresh', '0');
  assert.equal(single.status, 0, single.stderr);
  const parts = [1, 2].map((k) => path.join(dir, `eval${k}.json`));
  for (const [k, part] of parts.entries()) {
    const r = cli('eval', '--weights', weights, '--data', data, '--shard', `${k + 1}/2`, '--save-dets', part, '--json', '--quiet', '--score-thresh', '0');
    assert.equal(r.status, 0, r.stderr);
  }
  const merged = path.join(dir, 'eval_merged.json');
  assert.equal(cli('merge', ...parts, '--out', merged).status, 0);
  const r = cli('eval', '--data', data, '--dets', merged, '--json');
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), JSON.parse(single.stdout));
  const noSave = cli('eval', '--weights', weights, '--data', data, '--shard', '1/2');
  assert.equal(noSave.status, 2);
  assert.match(noSave.stderr, /--shard needs --save-dets/);
});
