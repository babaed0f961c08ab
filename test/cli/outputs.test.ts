/**
 * Issue 20, "runs and outputs a user can trust": each test below reproduces one defect seen
 * from a fresh clone (inputs overwritten, outputs checked late, runs mixed, scores silently
 * wrong) and holds the fix.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { writeSyntheticCoco } from '../../src/data/synthetic.js';
import { demoConfig } from '../../src/train/demo_config.js';
import { REPO, STACK_LINE, cli, cliIn, noisePng, tempDir, tinyModel } from './helpers.js';

let dir = '';
let weights = '';
let images = '';
let data = '';
let config = '';

before(async () => {
  dir = tempDir('outputs');
  weights = await tinyModel(dir);
  images = path.join(dir, 'images');
  mkdirSync(images);
  await noisePng(path.join(images, 'a.png'), 80, 60, 1);
  // a.jpg shares a.png's stem.
  await sharp(path.join(images, 'a.png')).jpeg().toFile(path.join(images, 'a.jpg'));
  data = path.join(dir, 'data');
  await writeSyntheticCoco(data, { count: 4, imageSize: 64, seed: 1 });
  config = path.join(dir, 'tiny-config.json');
  const { classNames: _names, numClasses: _n, ...cfg } = demoConfig(64);
  writeFileSync(config, JSON.stringify({ ...cfg, arch: 'retinanet_resnet18_fpn_small' }));
});

after(() => rmSync(dir, { recursive: true, force: true }));

function expectUsageError(args: string[], message: RegExp, cwd?: string): void {
  const r = cliIn(cwd, ...args);
  assert.equal(r.status, 2, `${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
  assert.match(r.stderr, message, args.join(' '));
  assert.doesNotMatch(r.stderr, STACK_LINE, args.join(' '));
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
}

function trainArgs(out: string, ...extra: string[]): string[] {
  return ['train', '--data', data, '--config', config, '--iters', '2', '--batch', '2', '--size-divisible', '32', '--threads', '1', '--quiet', '--out', out, ...extra];
}

test('detect --draw into a folder holding its inputs is refused, and the inputs stay untouched', () => {
  const before = readFileSync(path.join(images, 'a.png'));
  expectUsageError(['detect', images, '--weights', weights, '--draw', images, '--out', path.join(dir, 'd0.json')], /--draw .*holds input images/);
  assert.deepEqual(readFileSync(path.join(images, 'a.png')), before);
});

test('detect --draw gives inputs that share a stem their own drawings, named after the input file', () => {
  const draw = path.join(dir, 'drawn1');
  const r = cli('detect', images, '--weights', weights, '--draw', draw, '--out', path.join(dir, 'd1.json'), '--quiet');
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readdirSync(draw).sort(), ['a.jpg.png', 'a.png.png']);
});

test('detect --draw-score defaults to the detection threshold: low-score boxes are drawn', async () => {
  const draw = path.join(dir, 'drawn2');
  // A random model scores near the 0.01 prior: with threshold 0 every kept box is drawn.
  const r = cli('detect', path.join(images, 'a.png'), '--weights', weights, '--draw', draw, '--score-thresh', '0', '--detections-per-img', '5', '--out', path.join(dir, 'd2.json'), '--quiet');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /drawn .*score >= 0\b/);
  const drawn = await sharp(path.join(draw, 'a.png.png')).raw().toBuffer();
  const original = await sharp(path.join(images, 'a.png')).raw().toBuffer();
  let changed = 0;
  for (let i = 0; i < drawn.length; i++) if (drawn[i] !== original[i]) changed++;
  assert.ok(changed > 100, `boxes were drawn (${changed} bytes changed)`);
});

test('output paths are checked before any work, with one-line errors (exit 2)', () => {
  const aFile = path.join(dir, 'a-file');
  writeFileSync(aFile, 'x');
  const aDir = path.join(dir, 'a-dir');
  mkdirSync(aDir, { recursive: true });
  expectUsageError(['detect', images, '--weights', weights, '--out', aDir], /--out .*a-dir is a folder/);
  expectUsageError(['detect', images, '--weights', weights, '--out', path.join(aFile, 'x.json')], /--out .*a-file.*not a folder/);
  expectUsageError(['detect', images, '--weights', weights, '--draw', aFile], /--draw .*a-file is a file/);
  expectUsageError(trainArgs(aFile), /--out .*a-file is a file/);
  expectUsageError(['demo', '--out', aFile, '--iters', '1'], /--out .*a-file is a file/);
  expectUsageError(['eval', '--gt', path.join(data, 'annotations', 'instances_train.json'), '--dets', path.join(dir, 'none.json'), '--report', aFile], /--report .*a-file is a file/);
});

test('a degenerate image (5000x2) is skipped or handled in detect, never ending the run', async () => {
  const odd = path.join(dir, 'odd');
  mkdirSync(odd);
  await sharp({ create: { width: 5000, height: 2, channels: 3, background: 'white' } }).png().toFile(path.join(odd, 'line.png'));
  await noisePng(path.join(odd, 'ok.png'), 64, 64, 3);
  const out = path.join(dir, 'odd.json');
  const r = cli('detect', odd, '--weights', weights, '--out', out, '--quiet');
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, STACK_LINE);
  const list = JSON.parse(readFileSync(out.replace(/\.json$/, '.images.json'), 'utf8')) as { file_name: string }[];
  assert.ok(list.some((e) => e.file_name === 'ok.png'));
});

test('a second run into the same --out is refused, naming --resume and --exist-ok; --exist-ok starts afresh', () => {
  const out = path.join(dir, 'run-twice');
  assert.equal(cli(...trainArgs(out)).status, 0);
  const log = readFileSync(path.join(out, 'log.jsonl'), 'utf8');
  expectUsageError(trainArgs(out), /already holds a training run.*--resume.*--exist-ok/);
  assert.equal(readFileSync(path.join(out, 'log.jsonl'), 'utf8'), log, 'the first run\'s log is untouched');
  const r = cli(...trainArgs(out, '--exist-ok', '--iters', '1'));
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(path.join(out, 'log.jsonl'), 'utf8').trim().split('\n').length, 1, 'the new log holds only the new run');
});

test('train without --out takes the next free runs/train folder and says so', () => {
  const cwd = path.join(dir, 'cwd-default');
  mkdirSync(path.join(cwd, 'runs', 'train'), { recursive: true });
  writeFileSync(path.join(cwd, 'runs', 'train', 'log.jsonl'), '{}\n');
  const args = trainArgs('x').slice(0, -2);
  const r = cliIn(cwd, ...args);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout + r.stderr, /runs\/train2/);
  assert.ok(existsSync(path.join(cwd, 'runs', 'train2', 'model.safetensors')));
});

test('--resume works from another working directory and refuses flags it would ignore', () => {
  const cwd = path.join(dir, 'cwd-a');
  mkdirSync(cwd);
  copyFileSync(config, path.join(cwd, 'tiny-config.json'));
  // Relative paths, as a user types them.
  const r1 = cliIn(cwd, 'train', '--data', path.relative(cwd, data), '--config', 'tiny-config.json', '--iters', '2', '--batch', '2', '--size-divisible', '32', '--threads', '1', '--quiet', '--out', 'run');
  assert.equal(r1.status, 0, r1.stderr);
  const run = path.join(cwd, 'run');
  expectUsageError(['train', '--resume', run, '--lr', '0.5'], /--resume .*--lr/);
  const r2 = cli('train', '--resume', run, '--iters', '3', '--quiet');
  assert.equal(r2.status, 0, r2.stderr);
  assert.match(r2.stdout + r2.stderr, /3 iterations/);
  const state = JSON.parse(readFileSync(path.join(run, 'checkpoint', 'state.json'), 'utf8')) as { iteration: number };
  assert.equal(state.iteration, 3);
});

test('eval --dets with category ids the ground truth lacks, or with no results, is an error', () => {
  const gt = path.join(data, 'annotations', 'instances_train.json');
  const zeroBased = path.join(dir, 'zero.json');
  writeFileSync(zeroBased, JSON.stringify([{ image_id: 1, category_id: 0, bbox: [1, 1, 10, 10], score: 0.9 }]));
  expectUsageError(['eval', '--gt', gt, '--dets', zeroBased], /category id.* 0 .*not in the ground truth/);
  const empty = path.join(dir, 'empty.json');
  writeFileSync(empty, '[]');
  expectUsageError(['eval', '--gt', gt, '--dets', empty], /no detections/);
  const lenient = cli('eval', '--gt', gt, '--dets', zeroBased, '--allow-unknown-categories');
  assert.equal(lenient.status, 0, lenient.stderr);
  assert.match(lenient.stderr, /warning: .*category id/);
});

test('weights without their sidecar: a one-line error naming the missing config and the flags that stand in', () => {
  const bare = path.join(dir, 'bare');
  mkdirSync(bare);
  copyFileSync(weights, path.join(bare, 'w.safetensors'));
  expectUsageError(['detect', path.join(images, 'a.png'), '--weights', path.join(bare, 'w.safetensors')], /w\.json .*missing.*--arch.*--num-classes.*--config/);
});

test('--arch with a sidecar keeps the sidecar\'s class count', () => {
  const r = cli('detect', path.join(images, 'a.png'), '--weights', weights, '--arch', 'retinanet_resnet18_fpn_small', '--out', path.join(dir, 'd3.json'));
  assert.equal(r.status, 2);
  assert.match(r.stderr, /do not fit retinanet_resnet18_fpn_small with 4 classes/);
});

test('--strict stops at the first dataset problem without saying "skipped"', () => {
  const bad = path.join(dir, 'bad.json');
  const coco = JSON.parse(readFileSync(path.join(data, 'annotations', 'instances_train.json'), 'utf8')) as { annotations: { bbox: number[] }[] };
  coco.annotations[0]!.bbox = [5, 5, -3, 4];
  writeFileSync(bad, JSON.stringify(coco));
  const r = cli('train', '--data', bad, '--images', path.join(data, 'train'), '--strict', '--iters', '1', '--out', path.join(dir, 'strict-run'));
  assert.equal(r.status, 2);
  assert.doesNotMatch(r.stderr, /skipped/);
  assert.match(r.stderr, /--strict/);
});

test('retinanet help train shows the train help; detect --quiet prints no progress', () => {
  const h = cli('help', 'train');
  assert.equal(h.status, 0);
  assert.match(h.stdout, /^Usage: retinanet train/);
  const q = cli('detect', images, '--weights', weights, '--out', path.join(dir, 'd4.json'), '--quiet');
  assert.equal(q.status, 0, q.stderr);
  assert.equal(q.stderr, '');
});

test('the project npm config skips onnxruntime-node\'s download without an "Unknown project config" warning', () => {
  const npmrc = readFileSync(path.join(REPO, '.npmrc'), 'utf8');
  assert.doesNotMatch(npmrc, /onnxruntime-node-install/);
  assert.match(npmrc, /ignore-scripts=true/);
  // npm itself: reading the project config prints no warning.
  const r = spawnSync('npm', ['config', 'get', 'ignore-scripts'], { cwd: REPO, encoding: 'utf8' });
  assert.equal(r.stdout.trim(), 'true');
  assert.doesNotMatch(r.stderr, /Unknown project config/);
});
