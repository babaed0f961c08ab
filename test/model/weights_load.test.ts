import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configFor, mergeConfig } from '../../src/model/config.js';
import { RetinaNet } from '../../src/model/model.js';
import { buildRetinaNet } from '../../src/model/retinanet.js';
import { resnetDepthOf, upgradeTorchvisionNames } from '../../src/model/weights.js';
import { defaultTrainableLayers, frozenStages } from '../../src/model/finetune.js';
import { encodeSafetensors, type Tensor } from '../../src/io/safetensors.js';
import { hashUniform, hashWeight } from '../../src/nn/hash_init.js';
import { Graph, type Tensor as GraphTensor } from '../../src/engine/graph.js';
import { grad } from '../../src/engine/autodiff.js';
import { lossTargetInputs, retinanetLoss } from '../../src/detection/losses.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'rn-weights-load-'));

/** A small RetinaNet with torchvision's v1 layout (plain conv heads) for quick loads. */
const small = configFor('retinanet_resnet18_fpn_small', { numClasses: 3, backbone: { baseWidth: 16 }, fpn: { channels: 32 }, transform: { minSize: 64, maxSize: 64 } });

function hashed(cfg = small): RetinaNet {
  const m = new RetinaNet(cfg);
  for (const [name, info] of m.store.info) m.store.values.set(name, hashWeight(name, info.shape));
  return m;
}

function save(name: string, tensors: Map<string, Tensor>): string {
  const file = path.join(tmp, name);
  writeFileSync(file, encodeSafetensors(tensors));
  return file;
}

function tensorsOf(m: RetinaNet, rename: (n: string) => string | null = (n) => n): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [name, info] of m.store.info) {
    const to = rename(name);
    if (to !== null) out.set(to, { dtype: 'F32', shape: [...info.shape], data: m.store.get(name) });
  }
  return out;
}

test('checkpoints written before torchvision\'s version-2 modules (the published COCO_V1 file) load: their names are upgraded as torchvision does', async () => {
  const v1 = (JSON.parse(readFileSync(path.join(root, 'test/fixtures/model/torchvision_v1_names.json'), 'utf8')) as { names: string[] }).names;
  // Names do not depend on widths: a narrow retinanet_resnet50_fpn builds in a fraction of the time.
  const model = new RetinaNet(configFor('retinanet_resnet50_fpn', { backbone: { baseWidth: 8 }, fpn: { channels: 32 } }));
  const dummy: Tensor = { dtype: 'F32', shape: [1], data: new Float32Array(1) };
  const upgraded = [...upgradeTorchvisionNames(new Map(v1.map((n) => [n, dummy]))).keys()];
  assert.ok(v1.includes('head.classification_head.conv.6.weight') && v1.includes('backbone.fpn.inner_blocks.0.weight'), 'the fixture holds old names');
  assert.deepEqual([...upgraded].sort(), [...model.store.info.keys()].sort(), 'torchvision\'s old names map onto ours');
  await model.dispose();

  // And a small model saved under old names loads with the same values.
  const m = hashed();
  const old = tensorsOf(m, (n) =>
    n.replace(/^(backbone\.fpn\.(?:inner|layer)_blocks\.\d+)\.0\.(weight|bias)$/, '$1.$2').replace(/^(head\.\w+\.conv)\.(\d+)\.0\.(weight|bias)$/, (_s, h: string, i: string, t: string) => `${h}.${2 * Number(i)}.${t}`),
  );
  assert.ok(old.has('head.regression_head.conv.2.weight'));
  const file = save('v1.safetensors', old);
  const fresh = new RetinaNet(small, 3);
  const report = await fresh.loadWeights(file);
  assert.equal(report.loaded.length, m.store.info.size);
  for (const name of m.store.info.keys()) assert.deepEqual(fresh.store.get(name), m.store.get(name), name);
});

test('weights files are told by content: a .pth is read like safetensors (its tensors are named in a mismatch); DataParallel names load', async () => {
  const m = new RetinaNet(small);
  await assert.rejects(m.loadWeights(path.join(root, 'test/fixtures/io/torch/torch113_sd_zip.pt')), /torch113_sd_zip\.pt do not fit retinanet_resnet18_fpn_small with 3 classes:[\s\S]*backbone\.body\.conv1\.weight: file \[4, 3, 3, 3\], model \[16, 3, 7, 7\]/);
  const h = hashed();
  const file = save('dp.safetensors', tensorsOf(h, (n) => `module.${n}`));
  await m.loadWeights(file);
  assert.deepEqual(m.store.get('head.classification_head.cls_logits.bias'), h.store.get('head.classification_head.cls_logits.bias'));
});

test('backbone weights: an ImageNet ResNet state_dict fills backbone.body.* only; a detector or another depth is refused with a hint', async () => {
  const h = hashed();
  const resnet = tensorsOf(h, (n) => (n.startsWith('backbone.body.') ? n.slice('backbone.body.'.length) : null));
  assert.equal(resnetDepthOf(resnet), 18);
  resnet.set('fc.weight', { dtype: 'F32', shape: [5, 128], data: new Float32Array(640) });
  resnet.set('fc.bias', { dtype: 'F32', shape: [5], data: new Float32Array(5) });
  resnet.set('bn1.num_batches_tracked', { dtype: 'I64', shape: [], data: BigInt64Array.of(3n) });
  const file = save('resnet.safetensors', resnet);
  const m = new RetinaNet(small, 9);
  const fresh = new RetinaNet(small, 9);
  const report = await m.loadBackboneWeights(file);
  assert.deepEqual(report.ignored.sort(), ['bn1.num_batches_tracked', 'fc.bias', 'fc.weight']);
  for (const name of m.store.info.keys()) {
    if (name.startsWith('backbone.body.')) assert.deepEqual(m.store.get(name), h.store.get(name), name);
    else assert.deepEqual(m.store.get(name), fresh.store.get(name), `${name} keeps its initialiser`);
  }
  assert.ok(report.initialized.includes('backbone.fpn.extra_blocks.p6.weight'));
  // A whole detector given as backbone weights, and a bare ResNet given as detector weights.
  const detector = save('detector.safetensors', tensorsOf(h));
  await assert.rejects(m.loadBackboneWeights(detector), /holds a whole RetinaNet: load it as weights, --weights/);
  await assert.rejects(m.loadWeights(file), /holds a bare ResNet, e\.g\. ImageNet weights: load it as backbone weights, --backbone-weights/);
  const r34 = new RetinaNet(mergeConfig(small, { backbone: { depth: 34 } }));
  await assert.rejects(r34.loadBackboneWeights(file), /holds a ResNet-18; the model's backbone is a ResNet-34: choose an architecture or config with backbone depth 18/);
});

test('backbone.bnEps is FrozenBatchNorm\'s eps: eps 0 with variance v + 1e-5 computes what eps 1e-5 does with v', async () => {
  // Small variances make eps matter (and amplify float32 rounding through the random network).
  const shifted = (eps: number, shift: number): RetinaNet => {
    const m = hashed(mergeConfig(small, { backbone: { bnEps: eps } }));
    for (const name of m.store.info.keys()) if (name.endsWith('running_var')) m.store.values.set(name, m.store.get(name).map((v) => v * 1e-3 + shift));
    return m;
  };
  const image = Float32Array.from(hashUniform('eps-image', 3 * 64 * 64));
  const logits = async (m: RetinaNet): Promise<Float32Array> => {
    const out = (await m.forward(image, [1, 3, 64, 64], 1)).clsLogits;
    await m.dispose();
    return out;
  };
  const diff = (x: Float32Array, y: Float32Array): number => x.reduce((w, v, i) => Math.max(w, Math.abs(v - y[i]!) / Math.max(1, Math.abs(y[i]!))), 0);
  const reference = await logits(shifted(1e-5, 0));
  const same = diff(await logits(shifted(0, 1e-5)), reference);
  const other = diff(await logits(shifted(1e-5, 1e-5)), reference);
  assert.ok(same < 1e-2, `eps 0 with v + 1e-5 vs eps 1e-5 with v: ${same} (eps changed: ${other})`);
  assert.ok(other > 100 * same, `eps changes the result: ${other} vs ${same}`);
});

/**
 * Backward nodes of the training graph of a model with `trainableLayers` = k that use a tensor
 * computed from the parameters of `stages` alone (their folded conv weights, BN scales): any
 * such node differentiates through those stages.
 */
function backwardThrough(k: number, stages: ReadonlySet<string>): { nodes: number; through: number; trainable: string[] } {
  const stage = (name: string): string => /^backbone\.body\.(conv1|bn1|layer\d)\./.exec(name)?.[1]?.replace('bn1', 'conv1') ?? '';
  const model = new RetinaNet(mergeConfig(small, { backbone: { trainableLayers: k } }));
  const trainable = model.store.trainableNames();
  // The training graph as buildTrainGraph makes it.
  const g = new Graph();
  const out = buildRetinaNet(g, model.store, g.input('images', 'float32', [1, 3, 64, 64]), model.config);
  const targets = lossTargetInputs(g, 1, out.levelAnchorCounts.reduce((a, b) => a + b, 0), 'l1');
  const loss = retinanetLoss(out.clsLogits, out.boxDeltas, targets, { classification: 'focal', alpha: 0.25, gamma: 2, box: 'l1' });
  const derived = new Set<GraphTensor>();
  for (const [name, t] of g.inputs) if (stages.has(stage(name))) derived.add(t);
  for (const node of g.nodes) {
    const inputs = node.inputs.filter((t): t is GraphTensor => !!t && !g.constants.has(t.name));
    if (inputs.length > 0 && inputs.every((t) => derived.has(t))) for (const o of node.outputs) derived.add(o);
  }
  const forward = g.nodes.length;
  grad(loss.total, trainable.map((n) => g.inputs.get(n)!));
  const backward = g.nodes.slice(forward);
  return { nodes: backward.length, through: backward.filter((n) => n.inputs.some((t) => t && derived.has(t))).length, trainable };
}

test('trainable backbone layers: torchvision\'s defaults, and the gradient graph never differentiates through a frozen stage', () => {
  assert.equal(defaultTrainableLayers(true), 3);
  assert.equal(defaultTrainableLayers(false), 5);
  assert.deepEqual(frozenStages(3), ['conv1', 'layer1']);
  assert.deepEqual(frozenStages(0), ['conv1', 'layer1', 'layer2', 'layer3', 'layer4']);
  const early = new Set(['conv1', 'layer1']);
  const k3 = backwardThrough(3, early);
  assert.equal(k3.through, 0, 'k=3: no backward node through conv1/layer1');
  assert.ok(k3.trainable.every((n) => !/^backbone\.body\.(conv1|bn1|layer1)\./.test(n)));
  const k0 = backwardThrough(0, new Set(frozenStages(0)));
  assert.equal(k0.through, 0, 'k=0: no backward node through the backbone');
  // The check does see it when the stages train.
  const k5 = backwardThrough(5, early);
  assert.ok(k5.through > 0, 'k=5: layer1 is differentiated');
  assert.ok(k0.nodes < k3.nodes && k3.nodes < k5.nodes, `backward nodes: k=0 ${k0.nodes}, k=3 ${k3.nodes}, k=5 ${k5.nodes}`);
});
