import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { configFor } from '../../src/model/config.js';
import { RetinaNet } from '../../src/model/model.js';
import { hashUniform, hashWeight } from '../../src/nn/hash_init.js';

interface Fixture {
  image: { height: number; width: number; name: string };
  min_size: number;
  max_size: number;
  detections_per_img: number;
  checksums: Record<string, number>;
  head: { num_anchors: number; cls_logits_sum: number; cls_logits_first: number[]; bbox_regression_sum: number };
  boxes: number[][];
  scores: number[];
  labels: number[];
}

const here = path.dirname(fileURLToPath(import.meta.url));
const fx = JSON.parse(readFileSync(path.resolve(here, '../../../test/fixtures/model/retinanet_r50_hash.json'), 'utf8')) as Fixture;

test('retinanet_resnet50_fpn with the same weights gives torchvision\'s detections', async (t) => {
  const cfg = configFor('retinanet_resnet50_fpn', {
    transform: { minSize: fx.min_size, maxSize: fx.max_size },
    inference: { detectionsPerImg: fx.detections_per_img },
  });
  const model = new RetinaNet(cfg);
  for (const [name, info] of model.store.info) model.store.values.set(name, hashWeight(name, info.shape));
  for (const [name, sum] of Object.entries(fx.checksums)) {
    const ours = model.store.get(name).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(ours - sum) < 1e-6 * Math.max(1, Math.abs(sum)), `hash weights differ from Python's for ${name}: ${ours} vs ${sum}`);
  }
  const { height: h, width: w } = fx.image;
  const image = { data: Float32Array.from(hashUniform(fx.image.name, 3 * h * w)), height: h, width: w };

  const [det] = await model.detect([image], { threads: 2 });
  await model.dispose();
  assert.ok(det);
  assert.equal(det.scores.length, fx.scores.length, 'number of detections');
  // Match each torchvision detection to ours: same label, boxes within 0.01 px, scores within 1e-4.
  // Order can differ only among equal scores (saturated sigmoids), so match as sets.
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
    assert.ok(best >= 0 && bestErr <= 0.01, `torchvision detection ${i} (label ${fx.labels[i]}, score ${fx.scores[i]}, box ${fx.boxes[i]}) has no match within 0.01 px (closest ${bestErr})`);
    used[best] = 1;
    const scoreErr = Math.abs(det.scores[best]! - fx.scores[i]!);
    assert.ok(scoreErr <= 1e-4, `detection ${i}: score ${det.scores[best]} vs torchvision ${fx.scores[i]}`);
    worstBox = Math.max(worstBox, bestErr);
    worstScore = Math.max(worstScore, scoreErr);
  }
  t.diagnostic(`${fx.scores.length} detections matched; max box error ${worstBox.toExponential(2)} px, max score error ${worstScore.toExponential(2)}`);
});
