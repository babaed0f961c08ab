/**
 * The exported model run by Python's onnxruntime (the way users outside Node run it) gives the
 * detections of RetinaNet.detect: boxes within 0.5 px, scores within 1e-4, same labels. Skipped
 * without a Python that imports onnxruntime and numpy: set RETINANET_PYTHON to one, or create
 * ../venv-ort beside the checkout (python3 -m venv ../venv-ort && ../venv-ort/bin/pip install
 * onnxruntime==1.30.0 numpy).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chwToHwcBytes, type RgbImage } from '../../src/io/image.js';
import { exportDetector } from '../../src/model/export.js';
import { exportDetectorInt8 } from '../../src/model/quantize.js';
import { OnnxDetector } from '../../src/model/detector.js';
import { GENERATED_SIZES, ROOT, compareDetections, hashImage, realImages, tinyHashModel } from './helpers.js';

/** A Python that imports onnxruntime and numpy, or undefined. */
function findPython(): string | undefined {
  const candidates = [process.env['RETINANET_PYTHON'], path.resolve(ROOT, '../venv-ort/bin/python'), 'python3'].filter((c): c is string => !!c);
  for (const py of candidates) {
    const r = spawnSync(py, ['-c', 'import onnxruntime, numpy'], { encoding: 'utf8' });
    if (r.status === 0) return py;
  }
  return undefined;
}

const python = findPython();
const SKIP = python ? false : 'no Python with onnxruntime and numpy (set RETINANET_PYTHON, or: python3 -m venv ../venv-ort && ../venv-ort/bin/pip install onnxruntime==1.30.0 numpy)';

interface PythonResult {
  onnxruntime: string;
  class_names: string[];
  results: { boxes: number[]; scores: number[]; labels: number[] }[];
}

function runPython(dir: string, model: Uint8Array, images: { name: string; image: RgbImage }[]): PythonResult {
  const modelFile = path.join(dir, 'model.onnx');
  writeFileSync(modelFile, model);
  const manifest = images.map(({ image }, i) => {
    const file = path.join(dir, `image${i}.rgb`);
    writeFileSync(file, chwToHwcBytes(image));
    return { file, height: image.height, width: image.width };
  });
  writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
  const out = path.join(dir, 'out.json');
  const r = spawnSync(python!, [path.join(ROOT, 'test/export/ort_detect.py'), modelFile, path.join(dir, 'manifest.json'), out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(readFileSync(out, 'utf8')) as PythonResult;
}

async function testImages(t: test.TestContext): Promise<{ name: string; image: RgbImage }[]> {
  const images = GENERATED_SIZES.map(([h, w]) => ({ name: `generated ${w}x${h}`, image: hashImage(h, w, `py${h}x${w}`) }));
  const real = await realImages();
  if (real) images.push(...real);
  else t.diagnostic('../shared/data not found: real photos skipped (generated images only)');
  return images;
}

test('Python onnxruntime runs the exported model and gives RetinaNet.detect\'s detections', { skip: SKIP }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rn-py-'));
  const model = tinyHashModel();
  try {
    const images = await testImages(t);
    const py = runPython(dir, exportDetector(model), images);
    assert.deepEqual(py.class_names, model.classNames);
    t.diagnostic(`Python onnxruntime ${py.onnxruntime} (${python})`);
    for (const [i, { name, image }] of images.entries()) {
      const [host] = await model.detect([image], { threads: 2 });
      const c = compareDetections(host!, py.results[i]!, 0.5, 1e-4);
      assert.deepEqual(c.problems, [], `${name}: ${c.problems.slice(0, 5).join('; ')}`);
      assert.ok(host!.scores.length > 0 && c.matched >= host!.scores.length - 2, `${name}: ${c.matched} of ${host!.scores.length} matched`);
      t.diagnostic(`${name} ${image.width}x${image.height}: ${c.matched}/${host!.scores.length} matched, max box error ${c.maxBoxError.toExponential(1)} px, max score error ${c.maxScoreError.toExponential(1)}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await model.dispose();
  }
});

test('Python onnxruntime runs the int8 model as onnxruntime-node does', { skip: SKIP }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rn-py8-'));
  const model = tinyHashModel();
  try {
    const images = await testImages(t);
    const { bytes } = await exportDetectorInt8(model, images.slice(0, 3).map((x) => x.image), { threads: 2 });
    const py = runPython(dir, bytes, images);
    writeFileSync(path.join(dir, 'int8.onnx'), bytes);
    const node = await OnnxDetector.load(path.join(dir, 'int8.onnx'));
    for (const [i, { name, image }] of images.entries()) {
      const [ours] = await node.detect([image], { threads: 2 });
      const c = compareDetections(ours!, py.results[i]!, 0.5, 1e-4);
      assert.deepEqual(c.problems, [], `${name}: ${c.problems.slice(0, 5).join('; ')}`);
    }
    await node.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await model.dispose();
  }
});
