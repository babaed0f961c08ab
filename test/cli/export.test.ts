import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { STACK_LINE, cli, noisePng, tempDir } from './helpers.js';
import { tinyHashModel, compareDetections } from '../export/helpers.js';
import { parseExportMetadata } from '../../src/model/export.js';

let dir = '';
let weights = '';
let images = '';
let onnxFile = '';

before(async () => {
  dir = tempDir('export');
  weights = path.join(dir, 'hash.safetensors');
  const model = tinyHashModel();
  await model.saveWeights(weights, { classNames: model.classNames, categoryIds: [1, 2, 3, 4] });
  images = path.join(dir, 'images');
  mkdirSync(images);
  await noisePng(path.join(images, 'a.png'), 160, 120, 1);
  await noisePng(path.join(images, 'b.png'), 90, 300, 2);
  await noisePng(path.join(images, 'c.png'), 400, 100, 3);
  onnxFile = path.join(dir, 'tiny.onnx');
});

after(() => rmSync(dir, { recursive: true, force: true }));

interface Result {
  image_id: number;
  category_id: number;
  bbox: number[];
  score: number;
}

function asList(results: Result[], imageId: number): { boxes: number[]; scores: number[]; labels: number[] } {
  const mine = results.filter((r) => r.image_id === imageId);
  return {
    boxes: mine.flatMap((r) => [r.bbox[0]!, r.bbox[1]!, r.bbox[0]! + r.bbox[2]!, r.bbox[1]! + r.bbox[3]!]),
    scores: mine.map((r) => r.score),
    labels: mine.map((r) => r.category_id),
  };
}

test('export --help shows the usage; retinanet --help lists export', () => {
  const r = cli('export', '--help');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /Usage: retinanet export --weights W\.safetensors --out model\.onnx/);
  assert.match(r.stdout, /--fixed-size HxW/);
  assert.match(r.stdout, /--calibrate-images N/);
  assert.match(cli('--help').stdout, /export +export a model as one ONNX file/);
});

test('export writes one .onnx model; detect and eval take it as --weights and give the safetensors results', () => {
  const e = cli('export', '--weights', weights, '--out', onnxFile);
  assert.equal(e.status, 0, e.stderr);
  assert.match(e.stdout, /tiny\.onnx: [\d.]+ MB, float32, opset 17; input image uint8 \[height, width, 3\].*4 classes \(/);
  const meta = parseExportMetadata(new Uint8Array(readFileSync(onnxFile)), onnxFile);
  assert.equal(meta.classNames?.length, 4);

  const fromWeights = path.join(dir, 'dets_st.json');
  const fromOnnx = path.join(dir, 'dets_onnx.json');
  assert.equal(cli('detect', images, '--weights', weights, '--out', fromWeights).status, 0);
  const d = cli('detect', images, '--weights', onnxFile, '--out', fromOnnx);
  assert.equal(d.status, 0, d.stderr);
  const a = JSON.parse(readFileSync(fromWeights, 'utf8')) as Result[];
  const b = JSON.parse(readFileSync(fromOnnx, 'utf8')) as Result[];
  assert.ok(a.length > 0);
  for (const id of [1, 2, 3]) {
    const c = compareDetections(asList(a, id), asList(b, id), 0.01, 1e-5);
    assert.deepEqual(c.problems, [], `image ${id}`);
  }

  const ev = (w: string): Record<string, number> => {
    const r = cli('eval', '--weights', w, '--data', 'synthetic', '--max-images', '3', '--json', '--quiet');
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as Record<string, number>;
  };
  const apWeights = ev(weights);
  const apOnnx = ev(onnxFile);
  for (const k of ['AP', 'AP50', 'AR100']) assert.ok(Math.abs(apWeights[k]! - apOnnx[k]!) < 1e-3, `${k}: ${apWeights[k]} vs ${apOnnx[k]}`);
});

test('export --int8 calibrates on a folder of images; detect runs the int8 model', () => {
  const out = path.join(dir, 'tiny_int8.onnx');
  const e = cli('export', '--weights', weights, '--out', out, '--int8', '--calibrate', images, '--calibrate-images', '2', '--threads', '2');
  assert.equal(e.status, 0, e.stderr);
  assert.match(e.stdout, /int8 \(calibrated on 2 images\)/);
  assert.equal(parseExportMetadata(new Uint8Array(readFileSync(out)), out).quantization?.['calibrationImages'], 2);
  const dets = path.join(dir, 'dets_int8.json');
  const d = cli('detect', path.join(images, 'a.png'), '--weights', out, '--out', dets);
  assert.equal(d.status, 0, d.stderr);
  assert.ok((JSON.parse(readFileSync(dets, 'utf8')) as Result[]).length > 0);
});

test('export, and detect with an exported model, report bad input in one line with exit status 2', () => {
  const image = path.join(images, 'a.png');
  const exported = onnxFile;
  if (!existsSync(exported)) assert.equal(cli('export', '--weights', weights, '--out', exported).status, 0);
  const cases: [string[], RegExp][] = [
    [['export', '--out', 'x.onnx'], /--weights is required/],
    [['export', '--weights', weights], /--out FILE is required/],
    [['export', '--weights', path.join(dir, 'nope.safetensors'), '--out', 'x.onnx'], /not found/],
    [['export', '--weights', exported, '--out', 'x.onnx'], /already an exported model/],
    [['export', '--weights', weights, '--out', 'x.onnx', '--int8'], /--int8 needs calibration images/],
    [['export', '--weights', weights, '--out', 'x.onnx', '--calibrate', images], /--calibrate applies to --int8 only/],
    [['export', '--weights', weights, '--out', 'x.onnx', '--opset', '12'], /--opset must be >= 13/],
    [['export', '--weights', weights, '--out', 'x.onnx', '--fixed-size', '480'], /--fixed-size must be HEIGHTxWIDTH/],
    [['export', '--weights', weights, '--out', 'x.onnx', '--fixed-size', '48x64', '--dynamic'], /either --dynamic/],
    [['export', '--weights', weights, '--out', 'x.onnx', '--int8', '--calibrate', path.join(dir, 'nowhere')], /--calibrate .* not found/],
    [['detect', image, '--weights', exported, '--arch', 'retinanet_resnet50_fpn'], /exported model: its config is built in/],
    [['detect', image, '--weights', exported, '--score-thresh', '0.01'], /export it again/],
    [['detect', image, '--weights', path.join(images, 'a.png').replace(/\.png$/, '.onnx')], /not found/],
  ];
  for (const [args, message] of cases) {
    const r = cli(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.doesNotMatch(r.stderr, STACK_LINE, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: one line\n${r.stderr}`);
  }
});
