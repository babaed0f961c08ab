/**
 * Training from pretrained weights through the CLI: --weights with another class count
 * (fine-tuning), --backbone-weights (an ImageNet-style ResNet state_dict), and --lr 0 giving
 * back every loaded tensor bit for bit.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { writeSyntheticCoco } from '../../src/data/synthetic.js';
import { demoConfig } from '../../src/train/demo_config.js';
import { mergeConfig } from '../../src/model/config.js';
import { RetinaNet } from '../../src/model/model.js';
import { CLASSIFIER_PREFIX, readSidecar } from '../../src/model/weights.js';
import { decodeSafetensors, encodeSafetensors, type Tensor } from '../../src/io/safetensors.js';
import { hashWeight } from '../../src/nn/hash_init.js';
import { cli, tempDir } from './helpers.js';

let dir = '';
let data = '';
let config = '';

before(async () => {
  dir = tempDir('finetune');
  data = path.join(dir, 'data');
  await writeSyntheticCoco(data, { count: 4, imageSize: 64, seed: 1 });
  config = path.join(dir, 'tiny-config.json');
  const { classNames: _names, numClasses: _n, ...cfg } = demoConfig(64);
  // No backbone.trainableLayers: the default follows torchvision (3 from pretrained weights).
  const { trainableLayers: _t, ...backbone } = cfg.backbone;
  writeFileSync(config, JSON.stringify({ ...cfg, backbone, arch: 'retinanet_resnet18_fpn_small' }));
});

after(() => rmSync(dir, { recursive: true, force: true }));

function tensors(file: string): Map<string, Tensor> {
  return decodeSafetensors(new Uint8Array(readFileSync(file))).tensors;
}

function trainArgs(out: string, ...extra: string[]): string[] {
  return ['train', '--data', data, '--config', config, '--iters', '2', '--batch', '2', '--size-divisible', '32', '--threads', '1', '--lr', '0', '--out', out, ...extra];
}

test('train --weights with 7 classes on a 4-class dataset: one line says the classifier was re-initialised; with --lr 0 every loaded tensor comes back bit for bit', async () => {
  // A "pretrained" 7-class model of the same architecture, with hash weights (no zeros, no -0).
  const cfg7 = mergeConfig(demoConfig(64), { numClasses: 7, classNames: ['a', 'b', 'c', 'd', 'e', 'f', 'g'] });
  const pretrained = new RetinaNet(cfg7);
  for (const [name, info] of pretrained.store.info) pretrained.store.values.set(name, hashWeight(name, info.shape));
  const file = path.join(dir, 'pretrained7.safetensors');
  await pretrained.saveWeights(file, { classNames: cfg7.classNames });
  {
    const out = path.join(dir, 'run-ft');
    const r = cli(...trainArgs(out, '--weights', file));
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stderr.split('\n').filter((l) => l.includes('re-initialised'));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /^fine-tuning from .*pretrained7\.safetensors: \d+ tensors loaded; head\.classification_head\.cls_logits re-initialised for 4 classes \(the weights have 7\): normal std 0\.01, bias -log\(\(1 - 0\.01\) \/ 0\.01\) = -4\.595$/);
    const before = tensors(file);
    const after = tensors(path.join(out, 'model.safetensors'));
    let compared = 0;
    for (const [name, t] of after) {
      if (name.startsWith(CLASSIFIER_PREFIX)) continue;
      assert.ok(Buffer.from((before.get(name)!.data as Float32Array).buffer).equals(Buffer.from((t.data as Float32Array).buffer)), `${name} changed with --lr 0`);
      compared++;
    }
    assert.equal(compared, after.size - 2);
    const side = readSidecar(path.join(out, 'model.safetensors'))!;
    assert.equal(side.config.numClasses, 4);
    assert.equal(side.config.backbone.trainableLayers, 3, 'torchvision\'s default with pretrained weights');
  }
});

test('train --backbone-weights loads an ImageNet-style ResNet state_dict (fc.* ignored) into backbone.body.*; --trainable-backbone-layers K is kept', async () => {
  // A ResNet-18 (base width 32) state_dict as torchvision's resnet18 names it, with fc and num_batches_tracked.
  const model = new RetinaNet(demoConfig(64));
  const resnet = new Map<string, Tensor>();
  for (const [name, info] of model.store.info) {
    if (!name.startsWith('backbone.body.')) continue;
    const plain = name.slice('backbone.body.'.length);
    resnet.set(plain, { dtype: 'F32', shape: [...info.shape], data: hashWeight(name, info.shape) });
    if (plain.endsWith('running_var')) resnet.set(plain.replace('running_var', 'num_batches_tracked'), { dtype: 'I64', shape: [], data: BigInt64Array.of(7n) });
  }
  resnet.set('fc.weight', { dtype: 'F32', shape: [10, 256], data: new Float32Array(2560).fill(0.5) });
  resnet.set('fc.bias', { dtype: 'F32', shape: [10], data: new Float32Array(10) });
  const file = path.join(dir, 'resnet18w32.safetensors');
  writeFileSync(file, encodeSafetensors(resnet));
  const out = path.join(dir, 'run-bb');
  const r = cli(...trainArgs(out, '--backbone-weights', file, '--trainable-backbone-layers', '1'));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /^backbone from .*resnet18w32\.safetensors: \d+ tensors loaded into backbone\.body\.\* \(BatchNorm statistics included\), FPN and heads initialised$/m);
  const after = tensors(path.join(out, 'model.safetensors'));
  for (const [plain, t] of resnet) {
    if (plain.startsWith('fc.') || plain.endsWith('num_batches_tracked')) continue;
    assert.deepEqual(after.get(`backbone.body.${plain}`)!.data, t.data, plain);
  }
  assert.equal(readSidecar(path.join(out, 'model.safetensors'))!.config.backbone.trainableLayers, 1);
  // The wrong depth is named.
  const wrong = cli('train', '--data', data, '--arch', 'retinanet_resnet50_fpn', '--backbone-weights', file, '--iters', '1', '--quiet', '--out', path.join(dir, 'run-bb-wrong'));
  assert.equal(wrong.status, 2);
  assert.match(wrong.stderr, /holds a ResNet-18; the model's backbone is a ResNet-50/);
});
