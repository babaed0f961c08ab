/**
 * The exported detection model (model/export.ts) run by onnxruntime-node against
 * RetinaNet.detect on the same weights: generated images of several aspect ratios always, real
 * photos from ../shared/data when present. Also: the graph does not depend on the size it is
 * built at, other opsets, a fixed-size input, metadata, an empty result, and int8.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { OnnxSession } from '../../src/engine/runtime.js';
import { serialize } from '../../src/engine/onnx.js';
import { chwToHwcBytes, type RgbImage } from '../../src/io/image.js';
import { configFor } from '../../src/model/config.js';
import { OnnxDetector } from '../../src/model/detector.js';
import { buildDetectionGraph, exportDetector, parseExportMetadata } from '../../src/model/export.js';
import { RetinaNet } from '../../src/model/model.js';
import { exportDetectorInt8 } from '../../src/model/quantize.js';
import { GENERATED_SIZES, compareDetections, hashImage, realImages, tinyHashModel } from './helpers.js';
import { InputError } from '../../src/core/errors.js';

const { onnx } = onnxProto;

function feed(image: RgbImage): { image: { data: Uint8Array; dims: number[] } } {
  return { image: { data: chwToHwcBytes(image), dims: [image.height, image.width, 3] } };
}

function generated(): { name: string; image: RgbImage }[] {
  return GENERATED_SIZES.map(([h, w]) => ({ name: `generated ${w}x${h}`, image: hashImage(h, w, `img${h}x${w}`) }));
}

async function checkAgainstDetect(t: test.TestContext, model: RetinaNet, session: OnnxSession, images: { name: string; image: RgbImage }[]): Promise<void> {
  for (const { name, image } of images) {
    const [host] = await model.detect([image], { threads: 2 });
    const out = await session.run(feed(image));
    const got = { boxes: out['boxes']!.data as Float32Array, scores: out['scores']!.data as Float32Array, labels: out['labels']!.data as BigInt64Array };
    assert.ok(host!.scores.length > 0, `${name}: the test model should detect something`);
    const c = compareDetections(host!, got, 0.01, 1e-5);
    assert.deepEqual(c.problems, [], `${name} (${image.width}x${image.height}): ${c.problems.slice(0, 5).join('; ')}`);
    assert.ok(c.matched >= host!.scores.length - 2, `${name}: ${c.matched} of ${host!.scores.length} matched`);
    t.diagnostic(`${name} ${image.width}x${image.height}: ${c.matched}/${host!.scores.length} detections matched, max box error ${c.maxBoxError.toExponential(1)} px, max score error ${c.maxScoreError.toExponential(1)}`);
  }
}

test('the exported model gives RetinaNet.detect\'s detections on images of any size (onnxruntime-node)', async (t) => {
  const model = tinyHashModel();
  const session = await OnnxSession.create(exportDetector(model), { threads: 2 });
  try {
    await checkAgainstDetect(t, model, session, generated());
    const real = await realImages();
    if (!real) t.diagnostic('../shared/data not found: real photos skipped (generated images only)');
    else await checkAgainstDetect(t, model, session, real);
  } finally {
    await session.release();
    await model.dispose();
  }
});

test('the exported graph does not depend on the size it is built at', () => {
  for (const cfg of [configFor('retinanet_resnet50_fpn', { numClasses: 3 }), configFor('retinanet_resnet50_fpn_v2', { numClasses: 3 }), tinyHashModel().config]) {
    const model = new RetinaNet(cfg, 0);
    // Parameters left as inputs: the comparison is about the graph, not the weights.
    const bytes = [[480, 640], [801, 333], [64, 64]].map(([h, w]) => {
      const d = buildDetectionGraph(model, { referenceSize: [h!, w!] });
      return Buffer.from(serialize(d.graph, { outputs: [d.boxes, d.scores, d.labels] }));
    });
    assert.ok(bytes[0]!.equals(bytes[1]!) && bytes[0]!.equals(bytes[2]!), `${cfg.name}: graphs built at different sizes differ`);
  }
});

test('opsets 13 and 21 give the same detections as 17; other opsets are refused', async () => {
  const model = tinyHashModel();
  const image = hashImage(100, 400, 'opsets');
  const results = [];
  for (const opset of [13, 17, 21]) {
    const bytes = exportDetector(model, { opset });
    assert.equal(Number(onnx.ModelProto.decode(bytes).opsetImport[0]!.version), opset);
    const s = await OnnxSession.create(bytes, { threads: 2 });
    results.push(await s.run(feed(image)));
    await s.release();
  }
  for (const r of results.slice(1)) {
    assert.deepEqual(Array.from(r['scores']!.data as Float32Array), Array.from(results[0]!['scores']!.data as Float32Array));
    assert.deepEqual(Array.from(r['boxes']!.data as Float32Array), Array.from(results[0]!['boxes']!.data as Float32Array));
  }
  assert.throws(() => exportDetector(model, { opset: 12 }), /opset 12 is not supported/);
});

test('a fixed-size export declares [H, W, 3], gives the dynamic model\'s detections, and rejects other sizes', async () => {
  const model = tinyHashModel();
  const fixed = exportDetector(model, { fixedSize: [120, 160] });
  const dims = onnx.ModelProto.decode(fixed).graph!.input![0]!.type!.tensorType!.shape!.dim!;
  assert.deepEqual(dims.map((d) => Number(d.dimValue)), [120, 160, 3]);
  const dynDims = onnx.ModelProto.decode(exportDetector(model)).graph!.input![0]!.type!.tensorType!.shape!.dim!;
  assert.deepEqual(dynDims.map((d) => d.dimParam || Number(d.dimValue)), ['height', 'width', 3]);
  const s = await OnnxSession.create(fixed, { threads: 2 });
  const image = hashImage(120, 160, 'fixed');
  const [host] = await model.detect([image], { threads: 2 });
  const out = await s.run(feed(image));
  const c = compareDetections(host!, { boxes: out['boxes']!.data as Float32Array, scores: out['scores']!.data as Float32Array, labels: out['labels']!.data as BigInt64Array }, 0.01, 1e-5);
  assert.deepEqual(c.problems, []);
  await assert.rejects(() => s.run(feed(hashImage(121, 160, 'fixed'))), /dimension|shape|Got invalid/i);
  await s.release();
});

test('an exported model carries its class names, config and settings; OnnxDetector reads them and only tightens them', async () => {
  const model = tinyHashModel({ detectionsPerImg: 50 });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rn-export-'));
  const file = path.join(dir, 'tiny.onnx');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(file, exportDetector(model));
  const meta = parseExportMetadata(new Uint8Array(readFileSync(file)), file);
  assert.deepEqual(meta.classNames, model.classNames);
  assert.deepEqual(meta.categoryIds, [1, 2, 3, 4]);
  assert.equal(meta.config.transform.maxSize, 128);
  assert.deepEqual(meta.inference, { scoreThresh: 0.05, nmsThresh: 0.5, topkCandidates: 1000, detectionsPerImg: 50 });
  assert.equal(meta.quantization, null);

  const det = await OnnxDetector.load(file);
  assert.equal(det.numClasses, 4);
  const image = hashImage(120, 160, 'meta');
  const [all] = await det.detect([image], { threads: 2 });
  const [fewer] = await det.detect([image], { detectionsPerImg: 5, scoreThresh: 0.1 });
  assert.equal(all!.scores.length, 50);
  assert.ok(fewer!.scores.length <= 5 && fewer!.scores.every((s) => s > 0.1));
  assert.deepEqual(Array.from(fewer!.scores), Array.from(all!.scores.filter((s) => s > Math.fround(0.1)).slice(0, 5)));
  await assert.rejects(() => det.detect([image], { scoreThresh: 0.01 }), (e: unknown) => e instanceof InputError && /export it again/.test((e as Error).message));
  await assert.rejects(() => det.detect([image], { nmsThresh: 0.6 }), InputError);
  await assert.rejects(() => det.detect([image], { detectionsPerImg: 51 }), InputError);
  await det.dispose();
  assert.throws(() => parseExportMetadata(new Uint8Array([8, 8]), 'x.onnx'), /not a model exported by 'retinanet export'/);
});

test('an image without a detection above the threshold gives empty outputs', async () => {
  const model = tinyHashModel({ scoreThresh: 0.9 });
  const s = await OnnxSession.create(exportDetector(model), { threads: 2 });
  const out = await s.run(feed(hashImage(64, 80, 'empty')));
  assert.deepEqual(out['boxes']!.dims, [0, 4]);
  assert.deepEqual(out['scores']!.dims, [0]);
  assert.deepEqual(out['labels']!.dims, [0]);
  await s.release();
});

test('int8: QDQ around every conv, fused by ONNX Runtime into integer convs, detections close to float32', async (t) => {
  const model = tinyHashModel();
  const calibration = [[120, 160], [96, 128], [200, 150]].map(([h, w], i) => hashImage(h!, w!, `calib${i}`));
  const { bytes, report } = await exportDetectorInt8(model, calibration, { threads: 2 });
  assert.equal(report.calibrationImages, 3);
  const m = onnx.ModelProto.decode(bytes);
  assert.ok(m.graph!.node!.every((n) => !n.domain), 'standard ONNX operators only');
  const convs = m.graph!.node!.filter((n) => n.opType === 'Conv').length;
  assert.equal(convs, report.quantizedConvs);
  assert.ok(m.graph!.node!.some((n) => n.opType === 'QuantizeLinear'));
  assert.ok(m.graph!.initializer!.some((i) => i.dataType === 3), 'int8 weights');
  assert.equal(parseExportMetadata(bytes, 'int8').quantization?.['calibration'], 'min/max over the calibration images');

  // What ONNX Runtime makes of it: every conv an integer conv.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rn-int8-'));
  const optimized = path.join(dir, 'opt.onnx');
  const s8 = await OnnxSession.create(bytes, { threads: 2, optimization: 'extended', optimizedModelPath: optimized });
  const ops = onnx.ModelProto.decode(readFileSync(optimized)).graph!.node!.map((n) => n.opType);
  assert.equal(ops.filter((o) => o === 'QLinearConv').length, convs, 'every quantized conv runs as QLinearConv');
  assert.equal(ops.filter((o) => o === 'Conv' || o === 'FusedConv').length, 0, 'no float conv left');

  const s32 = await OnnxSession.create(exportDetector(model), { threads: 2 });
  const image = hashImage(120, 160, 'int8');
  const r32 = await s32.run(feed(image));
  const r8 = await s8.run(feed(image));
  const c = compareDetections(
    { boxes: r32['boxes']!.data as Float32Array, scores: r32['scores']!.data as Float32Array, labels: r32['labels']!.data as BigInt64Array },
    { boxes: r8['boxes']!.data as Float32Array, scores: r8['scores']!.data as Float32Array, labels: r8['labels']!.data as BigInt64Array },
    4,
    0.02,
  );
  t.diagnostic(`int8 vs float32: ${c.matched}/${(r32['scores']!.data as Float32Array).length} detections within 4 px and 0.02 score, max errors ${c.maxBoxError.toFixed(2)} px / ${c.maxScoreError.toFixed(4)}`);
  assert.ok(c.matched >= 0.8 * (r32['scores']!.data as Float32Array).length, `only ${c.matched} int8 detections near float32's`);
  await s8.release();
  await s32.release();
});
