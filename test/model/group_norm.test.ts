/**
 * The GroupNorm architecture option (backbone.norm / fpn.norm 'group_norm'): torchvision's
 * state_dict names, torchvision's detections on the same weights, what trains, and gradients.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { encodeSafetensors } from '../../src/io/safetensors.js';
import { configFor } from '../../src/model/config.js';
import { RetinaNet } from '../../src/model/model.js';
import { hashUniform, hashWeight } from '../../src/nn/hash_init.js';
import { groupNormGroups } from '../../src/nn/layers.js';
import { op } from '../../src/engine/index.js';
import { gradCheck } from '../engine/gradcheck.js';

interface Fixture {
  num_classes: number;
  fpn_channels: number;
  image: { height: number; width: number; name: string };
  min_size: number;
  max_size: number;
  detections_per_img: number;
  state_dict: Record<string, number[]>;
  head: { num_anchors: number; cls_logits_sum: number; cls_logits_first: number[]; bbox_regression_sum: number };
  boxes: number[][];
  scores: number[];
  labels: number[];
}

const here = path.dirname(fileURLToPath(import.meta.url));
// scripts/fixtures/gen_retinanet_gn.py (torchvision 0.14).
const fx = JSON.parse(readFileSync(path.resolve(here, '../../../test/fixtures/model/retinanet_r18_gn_hash.json'), 'utf8')) as Fixture;

/** The fixture's architecture: ResNet-18 and FPN with GroupNorm, four-conv GroupNorm heads. */
function gnConfig(patch: Parameters<typeof configFor>[1] = {}): ReturnType<typeof configFor> {
  return configFor('retinanet_resnet18_fpn_small', {
    numClasses: fx.num_classes,
    backbone: { norm: 'group_norm' },
    fpn: { channels: fx.fpn_channels, norm: 'group_norm' },
    head: { convs: 4, groupNorm: true },
    transform: { minSize: fx.min_size, maxSize: fx.max_size },
    inference: { detectionsPerImg: fx.detections_per_img },
    ...patch,
  });
}

/**
 * torchvision's ResNet-18 state_dict with `norm_layer=GroupNorm`, written out from
 * torchvision/models/resnet.py: conv1/bn1, layerL.B.{conv1,bn1,conv2,bn2}, and the
 * downsample (conv1x1 `.0`, norm `.1`) of each stage's first block from layer2 on. A norm is
 * named `bn` whatever its kind; GroupNorm has weight and bias and no running statistics.
 */
function gnResnet18Names(): string[] {
  const names = ['conv1.weight', 'bn1.weight', 'bn1.bias'];
  for (let l = 1; l <= 4; l++) {
    for (let b = 0; b < 2; b++) {
      const p = `layer${l}.${b}`;
      names.push(`${p}.conv1.weight`, `${p}.bn1.weight`, `${p}.bn1.bias`, `${p}.conv2.weight`, `${p}.bn2.weight`, `${p}.bn2.bias`);
      if (l > 1 && b === 0) names.push(`${p}.downsample.0.weight`, `${p}.downsample.1.weight`, `${p}.downsample.1.bias`);
    }
  }
  return names;
}

test('a GroupNorm ResNet-18 has the parameter names of torchvision\'s resnet18(norm_layer=GroupNorm)', () => {
  const model = new RetinaNet(gnConfig());
  const body = [...model.store.info.keys()].filter((n) => n.startsWith('backbone.body.')).map((n) => n.slice('backbone.body.'.length));
  assert.deepEqual([...body].sort(), gnResnet18Names().sort());
  // torchvision's FPN with norm_layer: Conv2dNormActivation(conv without bias, norm), no activation.
  const fpn = [...model.store.info.keys()].filter((n) => n.startsWith('backbone.fpn.')).sort();
  const expected = [0, 1, 2].flatMap((i) => ['inner_blocks', 'layer_blocks'].flatMap((b) => [`${b}.${i}.0.weight`, `${b}.${i}.1.weight`, `${b}.${i}.1.bias`]));
  expected.push('extra_blocks.p6.weight', 'extra_blocks.p6.bias', 'extra_blocks.p7.weight', 'extra_blocks.p7.bias');
  assert.deepEqual(fpn, expected.map((n) => `backbone.fpn.${n}`).sort());
});

test('the whole GroupNorm RetinaNet\'s names and shapes are torchvision\'s state_dict', () => {
  const model = new RetinaNet(gnConfig());
  const ours = Object.fromEntries([...model.store.info].map(([n, i]) => [n, [...i.shape]]));
  assert.deepEqual(ours, fx.state_dict);
});

test('the frozen-BatchNorm layout is unchanged: running statistics, biased FPN convs', () => {
  const model = new RetinaNet(configFor('retinanet_resnet18_fpn_small', { numClasses: 3 }));
  const names = [...model.store.info.keys()];
  assert.ok(names.includes('backbone.body.layer1.0.bn1.running_var'));
  assert.ok(names.includes('backbone.fpn.inner_blocks.0.0.bias'));
  assert.ok(!names.some((n) => n.startsWith('backbone.fpn.inner_blocks.0.1')));
});

test('with the same weights, the GroupNorm RetinaNet gives torchvision\'s detections', async (t) => {
  const model = new RetinaNet(gnConfig());
  for (const [name, info] of model.store.info) model.store.values.set(name, hashWeight(name, info.shape));
  const { height: h, width: w } = fx.image;
  const image = { data: Float32Array.from(hashUniform(fx.image.name, 3 * h * w)), height: h, width: w };
  const [det] = await model.detect([image], { threads: 2 });
  await model.dispose();
  assert.ok(det);
  assert.equal(det.scores.length, fx.scores.length, 'number of detections');
  const used = new Uint8Array(det.scores.length);
  let worstBox = 0;
  let worstScore = 0;
  for (let i = 0; i < fx.scores.length; i++) {
    let best = -1;
    let bestErr = Infinity;
    for (let j = 0; j < det.scores.length; j++) {
      if (used[j] || det.labels[j] !== fx.labels[i]) continue;
      const err = Math.max(...[0, 1, 2, 3].map((c) => Math.abs(det.boxes[4 * j + c]! - fx.boxes[i]![c]!)));
      if (err < bestErr) {
        bestErr = err;
        best = j;
      }
    }
    assert.ok(best >= 0 && bestErr <= 0.01, `torchvision detection ${i} (label ${fx.labels[i]}, score ${fx.scores[i]}) has no match within 0.01 px (closest ${bestErr})`);
    used[best] = 1;
    const scoreErr = Math.abs(det.scores[best]! - fx.scores[i]!);
    assert.ok(scoreErr <= 1e-4, `detection ${i}: score ${det.scores[best]} vs torchvision ${fx.scores[i]}`);
    worstBox = Math.max(worstBox, bestErr);
    worstScore = Math.max(worstScore, scoreErr);
  }
  t.diagnostic(`${fx.scores.length} detections matched; max box error ${worstBox.toExponential(2)} px, max score error ${worstScore.toExponential(2)}`);
});

test('GroupNorm affines train with their stage; frozen BatchNorm never does', () => {
  const trainable = (cfg: ReturnType<typeof configFor>): Set<string> => new Set(new RetinaNet(cfg).store.trainableNames());
  const all = trainable(gnConfig({ backbone: { norm: 'group_norm', trainableLayers: 5 } }));
  for (const n of ['backbone.body.bn1.weight', 'backbone.body.layer1.0.bn1.bias', 'backbone.body.layer2.0.downsample.1.weight', 'backbone.fpn.inner_blocks.0.1.weight']) assert.ok(all.has(n), n);
  // trainable_backbone_layers 3, as torchvision: conv1, bn1 and layer1 frozen, GroupNorm included.
  const three = trainable(gnConfig({ backbone: { norm: 'group_norm', trainableLayers: 3 } }));
  for (const n of ['backbone.body.conv1.weight', 'backbone.body.bn1.weight', 'backbone.body.layer1.0.bn1.weight']) assert.ok(!three.has(n), n);
  assert.ok(three.has('backbone.body.layer2.0.bn1.weight'));
  const bn = trainable(configFor('retinanet_resnet18_fpn_small', { numClasses: 3 }));
  assert.ok(!bn.has('backbone.body.layer2.0.bn1.weight'));
  assert.ok(bn.has('backbone.body.layer2.0.conv1.weight'));
});

test('GroupNorm groups: 32, never fewer than 2 channels per group', () => {
  assert.equal(groupNormGroups(64), 32);
  assert.equal(groupNormGroups(2048), 32);
  assert.equal(groupNormGroups(32), 16);
  assert.equal(groupNormGroups(16), 8);
  assert.equal(groupNormGroups(48), 24);
  assert.equal(groupNormGroups(96), 32);
  assert.equal(groupNormGroups(40), 20);
  assert.equal(groupNormGroups(3), 1);
});

test('config: unknown norms are refused by name', () => {
  assert.throws(() => configFor('retinanet_resnet18_fpn_small', { backbone: { norm: 'batch_norm' as 'group_norm' } }), /backbone\.norm must be 'frozen_bn' or 'group_norm'/);
  assert.throws(() => configFor('retinanet_resnet18_fpn_small', { fpn: { norm: 'bn' as 'group_norm' } }), /fpn\.norm must be 'none' or 'group_norm'/);
});

test('gradient of conv -> GroupNorm -> ReLU (a backbone layer) matches finite differences', async (t) => {
  const r = await gradCheck(
    ([x, w, g, b]) => op.relu(op.groupNorm(op.conv(x!, w!, null, { pads: 1 }), 3, g!, b!)),
    [{ shape: [2, 2, 4, 4] }, { shape: [6, 2, 3, 3] }, { shape: [6] }, { shape: [6] }],
  );
  assert.ok(r.checked > 0);
  t.diagnostic(`${r.dtype}: ${r.checked} coordinates, max relative error ${r.maxRelErr.toExponential(2)}`);
});

test('backbone weights: a GroupNorm ResNet checkpoint loads; a BatchNorm one is refused with a hint', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'rn-gn-'));
  try {
    const body = (m: RetinaNet): Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> =>
      new Map(
        [...m.store.info]
          .filter(([n]) => n.startsWith('backbone.body.'))
          .map(([n, info]) => [n.slice('backbone.body.'.length), { dtype: 'F32' as const, shape: [...info.shape], data: hashWeight(n, info.shape) }]),
      );
    // A narrow ResNet-18 (width 16) keeps the files small; names are the same at any width.
    const narrow = gnConfig({ backbone: { norm: 'group_norm', baseWidth: 16 } });
    const gnFile = path.join(dir, 'r18_gn.safetensors');
    writeFileSync(gnFile, encodeSafetensors(body(new RetinaNet(narrow))));
    const model = new RetinaNet(narrow);
    const report = await model.loadBackboneWeights(gnFile);
    assert.equal(report.loaded.length, 60);
    assert.deepEqual(model.store.get('backbone.body.layer3.0.downsample.1.weight'), hashWeight('backbone.body.layer3.0.downsample.1.weight', [64]));
    const bnFile = path.join(dir, 'r18_bn.safetensors');
    writeFileSync(bnFile, encodeSafetensors(body(new RetinaNet(configFor('retinanet_resnet18_fpn_small', { numClasses: 3, backbone: { baseWidth: 16 } })))));
    await assert.rejects(model.loadBackboneWeights(bnFile), /unexpected[\s\S]*bn1\.running_mean[\s\S]*is a BatchNorm ResNet and the model's backbone uses GroupNorm/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
