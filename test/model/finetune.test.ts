import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configFor, mergeConfig } from '../../src/model/config.js';
import { RetinaNet } from '../../src/model/model.js';
import { CLASSIFIER_PREFIX } from '../../src/model/weights.js';
import { describeLoad, loadStartingWeights } from '../../src/model/finetune.js';
import { hashUniform, hashWeight } from '../../src/nn/hash_init.js';
import { memorySource } from '../../src/data/source.js';
import { prepareBatch } from '../../src/train/batches.js';
import { buildTrainGraph, trainFeeds } from '../../src/train/train_graph.js';

interface GradStats { shape: number[]; sum: number; l2: number; max_abs: number; indices: number[]; values: number[] }
interface Fixture {
  image: { height: number; width: number };
  fpn_channels: number;
  images: { name: string; boxes: number[][]; labels: number[] }[];
  checkpoint_classes: number;
  classes: number;
  trainable_backbone_layers: number;
  cls_logits_bias: number[];
  loss_classification: number;
  loss_box: number;
  trainable: string[];
  grads: Record<string, GradStats>;
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const fx = JSON.parse(readFileSync(path.join(root, 'test/fixtures/model/finetune_r18.json'), 'utf8')) as Fixture;

test('fine-tuning a 91-class checkpoint to 3 classes: everything but the classifier loads; the step\'s losses and gradients equal torchvision\'s', async (t) => {
  const { height: h, width: w } = fx.image;
  const cfg91 = configFor('retinanet_resnet50_fpn', {
    numClasses: fx.checkpoint_classes,
    backbone: { depth: 18, trainableLayers: fx.trainable_backbone_layers },
    fpn: { channels: fx.fpn_channels, p6From: 'c5' },
    transform: { minSize: h, maxSize: w },
  });
  // The 91-class checkpoint: hash weights (the Python side builds the same).
  const checkpoint = new RetinaNet(cfg91);
  for (const [name, info] of checkpoint.store.info) checkpoint.store.values.set(name, hashWeight(name, info.shape));
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'rn-finetune-')), 'coco91.safetensors');
  await checkpoint.saveWeights(file);

  const cfg = mergeConfig(cfg91, { numClasses: fx.classes });
  const model = new RetinaNet(cfg, 7);
  // Strict loading (detect, eval) refuses the other class count...
  await assert.rejects(model.loadWeights(file), /do not fit retinanet_resnet50_fpn with 3 classes:\n {2}wrong shape \(2\):\n {4}head\.classification_head\.cls_logits\.weight: file \[819, 64, 3, 3\], model \[27, 64, 3, 3\]/);
  // ...fine-tuning loads everything else and re-initialises the classifier as the paper says.
  const report = (await loadStartingWeights(model, { weights: file }))!;
  assert.deepEqual(report.initialized, [`${CLASSIFIER_PREFIX}weight`, `${CLASSIFIER_PREFIX}bias`]);
  assert.equal(report.fileClasses, 91);
  assert.equal(report.loaded.length, model.store.info.size - 2);
  assert.match(describeLoad(report, cfg, 'coco91'), /^fine-tuning from coco91: \d+ tensors loaded; head\.classification_head\.cls_logits re-initialised for 3 classes \(the weights have 91\): normal std 0\.01, bias -log\(\(1 - 0\.01\) \/ 0\.01\) = -4\.595$/);
  for (const name of report.loaded) assert.deepEqual(model.store.get(name), checkpoint.store.get(name), `${name} loaded as is`);
  const weight = model.store.get(`${CLASSIFIER_PREFIX}weight`);
  const mean = weight.reduce((a, b) => a + b, 0) / weight.length;
  const std = Math.sqrt(weight.reduce((a, b) => a + (b - mean) ** 2, 0) / weight.length);
  assert.ok(Math.abs(mean) < 5e-4 && Math.abs(std - 0.01) < 3e-4, `cls_logits.weight ~ N(0, 0.01^2): mean ${mean}, std ${std}`);
  assert.deepEqual([...model.store.get(`${CLASSIFIER_PREFIX}bias`)], fx.cls_logits_bias, 'the prior bias equals torchvision\'s, bit for bit');

  // The same replaced head on both sides, then one training step.
  const clsName = `${CLASSIFIER_PREFIX}weight`;
  model.store.values.set(clsName, hashWeight(clsName, model.store.info.get(clsName)!.shape));
  assert.deepEqual([...model.store.trainableNames()].sort(), [...fx.trainable].sort(), 'trainable parameters (trainable_backbone_layers=3)');
  const samples = fx.images.map((im) => ({
    image: { data: Float32Array.from(hashUniform(im.name, 3 * h * w)), height: h, width: w },
    boxes: Float32Array.from(im.boxes.flat()),
    labels: Int32Array.from(im.labels),
  }));
  const source = memorySource(samples, ['a', 'b', 'c']);
  const batch = await prepareBatch(source, 0, [0, 1], { config: cfg, flip: false, padTo: 32, seed: 0, boxLoss: cfg.loss.box });
  assert.deepEqual(batch.shape, [2, 3, h, w]);
  const exe = await buildTrainGraph(model, 2, h, w, batch.anchors.length / 4, 2);
  const out = (await exe.exe.run(trainFeeds(model, batch))) as Float32Array[];
  await exe.release();
  await model.dispose();

  const rel = (a: number, b: number): number => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);
  assert.ok(rel(out[0]![0]!, fx.loss_classification) < 1e-6, `classification loss ${out[0]![0]} vs torchvision ${fx.loss_classification}`);
  assert.ok(rel(out[1]![0]!, fx.loss_box) < 1e-6, `box loss ${out[1]![0]} vs torchvision ${fx.loss_box}`);
  let worstNorm = 0;
  let worstValue = 0;
  exe.names.forEach((name, k) => {
    const g = out[2 + k]!;
    const e = fx.grads[name]!;
    assert.equal(g.length, e.shape.reduce((a, b) => a * b, 1), name);
    let l2 = 0;
    for (const v of g) l2 += v * v;
    l2 = Math.sqrt(l2);
    const normErr = rel(l2, e.l2);
    worstNorm = Math.max(worstNorm, normErr);
    assert.ok(normErr < 1e-5, `${name}: gradient norm ${l2} vs torchvision ${e.l2}`);
    e.indices.forEach((i, j) => {
      // Each value within 2e-5 of the tensor's largest gradient.
      const err = Math.abs(g[i]! - e.values[j]!) / e.max_abs;
      worstValue = Math.max(worstValue, err);
      assert.ok(err < 2e-5, `${name}[${i}]: ${g[i]} vs torchvision ${e.values[j]}`);
    });
  });
  t.diagnostic(`losses ${out[0]![0]} / ${out[1]![0]} (torchvision ${fx.loss_classification} / ${fx.loss_box}); ${exe.names.length} gradients: worst norm error ${worstNorm.toExponential(2)}, worst value error ${worstValue.toExponential(2)} of the tensor's max`);
});
