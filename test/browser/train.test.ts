/**
 * Fine-tuning in Chromium: two training steps of the browser's trainer (onnxruntime-web) on the
 * same photos and boxes give the same losses as the Node trainer (onnxruntime-node), within
 * 1e-4 relative; the weights the page saves are a safetensors file (+ sidecar) that the Node CLI
 * loads and detects with, and they equal the Node-trained weights closely.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { memorySource } from '../../src/data/source.js';
import { loadImage } from '../../src/io/image.js';
import { decodeSafetensors } from '../../src/io/safetensors.js';
import type { StepRecord } from '../../src/train/log.js';
import { Trainer } from '../../src/train/trainer.js';
import { ROOT, SHARED_DATA, tinyHashModel } from '../export/helpers.js';
import { openBrowser, skipBrowser, within } from './helpers.js';

const PHOTOS = ['bccd/JPEGImages/BloodImage_00001.jpg', 'coco128/train2017/000000000009.jpg'].map((p) => path.join(SHARED_DATA, p));
/** Hand-drawn boxes (x1, y1, x2, y2 in the photos' pixels) and their classes. */
const BOXES = [
  [[100, 100, 300, 260], [350, 200, 500, 400]],
  [[50, 50, 400, 300]],
];
const LABELS = [[0, 1], [2]];
const CLASSES = ['circle', 'square', 'triangle', 'cross'];
const ITERS = 2;

const skip = skipBrowser() || (PHOTOS.every((p) => existsSync(p)) ? false : `photos of ${SHARED_DATA} not found: browser training test skipped`);

test('two training steps in Chromium give the Node trainer\'s losses; the saved weights load in the CLI', { skip, timeout: 600_000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'retinanet-browser-train-'));
  try {
    await tinyHashModel().saveWeights(path.join(dir, 'model.safetensors'));
    writeFileSync(path.join(dir, 'blank.html'), '<!doctype html><meta charset="utf-8"><title>test</title>');

    // Node: the library's Trainer (the CLI's) on the same samples, recipe and seed.
    const model = tinyHashModel();
    const samples = await Promise.all(PHOTOS.map(async (p, i) => ({ image: await loadImage(p), boxes: Float32Array.from(BOXES[i]!.flat()), labels: Int32Array.from(LABELS[i]!) })));
    const trainer = new Trainer(model, memorySource(samples, CLASSES), { iters: ITERS, batchSize: 2, seed: 0, threads: 1, prefetchWorker: false });
    const node = await trainer.run();
    assert.equal(node.stopped, 'done');

    const files: Record<string, string> = {};
    PHOTOS.forEach((p, i) => (files[`/photos/${i}.jpg`] = p));
    const session = await openBrowser({ folders: [{ prefix: '/fixture/', dir }], files, page: '/fixture/blank.html' });
    let browser: { result: { stopped: string }; records: StepRecord[]; weights: string; sidecar: string };
    try {
      browser = await within(session, session.page.evaluate(
        async ({ boxes, labels, classes, iters }) => {
          const lib = await import(new URL('/retinanet.js', location.href).href);
          const net = await lib.RetinaNet.fromWeights('/fixture/model.safetensors', { executionProvider: 'wasm' });
          const samples = [];
          for (let i = 0; i < boxes.length; i++) {
            const image = await lib.toRgbImage(`/photos/${i}.jpg`);
            samples.push({ image, boxes: Float32Array.from(boxes[i]!.flat()), labels: Int32Array.from(labels[i]!) });
          }
          console.log(`model loaded (${net.backend.description}), photos decoded`);
          const trainer = new lib.BrowserTrainer(net.model, lib.memorySource(samples, classes), { iters, batchSize: 2, seed: 0 });
          const result = await trainer.run({ onStep: (r: { iter: number }) => console.log(`step ${r.iter} done`) });
          console.log('trained');
          const saved = await net.saveWeights();
          let binary = '';
          for (let k = 0; k < saved.weights.length; k += 0x8000) binary += String.fromCharCode(...saved.weights.subarray(k, k + 0x8000));
          return { result, records: trainer.records, weights: btoa(binary), sidecar: saved.sidecar };
        },
        { boxes: BOXES, labels: LABELS, classes: CLASSES, iters: ITERS },
      ), 420_000);
    } finally {
      await session.close();
    }
    assert.equal(browser.result.stopped, 'done');
    assert.equal(browser.records.length, ITERS);
    for (let k = 0; k < ITERS; k++) {
      const n = node.records[k]!;
      const b = browser.records[k]!;
      const rel = (a: number, e: number): number => Math.abs(a - e) / Math.max(Math.abs(e), 1e-12);
      console.log(`# step ${k}: Node cls ${n.loss_cls} box ${n.loss_box} | Chromium cls ${b.loss_cls} box ${b.loss_box} | rel ${rel(b.loss_cls, n.loss_cls).toExponential(2)} ${rel(b.loss_box, n.loss_box).toExponential(2)}`);
      assert.equal(b.num_fg, n.num_fg, `step ${k}: the same anchors are foreground`);
      assert.ok(rel(b.loss_cls, n.loss_cls) <= 1e-4, `step ${k}: classification loss ${b.loss_cls} vs Node ${n.loss_cls}`);
      assert.ok(rel(b.loss_box, n.loss_box) <= 1e-4, `step ${k}: box loss ${b.loss_box} vs Node ${n.loss_box}`);
      assert.equal(b.lr, n.lr, `step ${k}: the same learning rate`);
    }

    // The page's weights: the Node-trained weights, and a file the CLI reads.
    const file = path.join(dir, 'browser.safetensors');
    writeFileSync(file, Buffer.from(browser.weights, 'base64'));
    writeFileSync(path.join(dir, 'browser.json'), browser.sidecar);
    const saved = decodeSafetensors(readFileSync(file));
    let worst = 0;
    let scale = 0;
    for (const [name, v] of model.store.values) {
      const t = saved.tensors.get(name);
      assert.ok(t, `saved weights hold ${name}`);
      const data = t.data as Float32Array;
      assert.equal(data.length, v.length, name);
      for (let i = 0; i < v.length; i++) {
        worst = Math.max(worst, Math.abs(data[i]! - v[i]!));
        scale = Math.max(scale, Math.abs(v[i]!));
      }
    }
    console.log(`# weights after ${ITERS} steps: max |Chromium - Node| ${worst.toExponential(2)} (largest weight ${scale.toFixed(3)})`);
    assert.ok(worst <= 1e-4 * Math.max(1, scale), `trained weights agree: max difference ${worst}`);
    const out = path.join(dir, 'det.json');
    const cli = spawnSync(process.execPath, [path.join(ROOT, 'dist/src/cli/main.js'), 'detect', PHOTOS[0]!, '--weights', file, '--out', out, '--threads', '1', '--quiet'], { encoding: 'utf8' });
    assert.equal(cli.status, 0, `the CLI detects with the page's weights: ${cli.stderr}`);
    assert.ok(Array.isArray(JSON.parse(readFileSync(out, 'utf8'))));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
