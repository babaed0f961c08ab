import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type LevelOutputs, anchorsForImage, postprocessDetections, sigmoid32 } from '../../src/detection/index.js';
import { assertClose, loadFixture } from './fixtures.js';

interface PostCase {
  name: string;
  padded: [number, number];
  image_size: [number, number];
  num_classes: number;
  anchors_per_level: number[];
  score_thresh: number;
  nms_thresh: number;
  topk_candidates: number;
  detections_per_img: number;
  cls_logits: number[];
  bbox_regression: number[];
  boxes: number[];
  scores: number[];
  labels: number[];
}
const fx = loadFixture<{ cases: PostCase[] }>('postprocess.json');

function levelsOf(c: PostCase): LevelOutputs[] {
  const anchors = anchorsForImage(c.padded[0], c.padded[1]);
  const logits = Float32Array.from(c.cls_logits);
  const deltas = Float32Array.from(c.bbox_regression);
  let a0 = 0;
  return c.anchors_per_level.map((n, l) => {
    const level = {
      clsLogits: logits.subarray(a0 * c.num_classes, (a0 + n) * c.num_classes),
      bboxRegression: deltas.subarray(4 * a0, 4 * (a0 + n)),
      anchors: anchors[l]!,
    };
    a0 += n;
    return level;
  });
}

for (const c of fx.cases) {
  test(`postprocessDetections equals torchvision postprocess_detections: ${c.name}`, () => {
    const d = postprocessDetections(levelsOf(c), c.num_classes, c.image_size, {
      scoreThresh: c.score_thresh,
      nmsThresh: c.nms_thresh,
      topkCandidates: c.topk_candidates,
      detectionsPerImg: c.detections_per_img,
    });
    assert.deepEqual(Array.from(d.labels), c.labels);
    // Scores come from a float32 sigmoid that is within 2 ulp of torch's vectorised one.
    assertClose(d.scores, c.scores, 1e-6, 1e-6, 'scores');
    assertClose(d.boxes, c.boxes, 1e-4, 0, 'boxes');
  });
}

test('default keeps the paper\'s 100 detections per image', () => {
  const c = fx.cases[0]!;
  const d = postprocessDetections(levelsOf(c), c.num_classes, c.image_size);
  assert.equal(d.scores.length, 100);
  assert.deepEqual(Array.from(d.labels), c.labels.slice(0, 100));
});

test('no score above the threshold gives no detections', () => {
  const anchors = anchorsForImage(64, 64);
  const levels = anchors.map((a) => ({ clsLogits: new Float32Array((a.length / 4) * 2).fill(-10), bboxRegression: new Float32Array(a.length), anchors: a }));
  const d = postprocessDetections(levels, 2, [64, 64]);
  assert.equal(d.boxes.length, 0);
});

test('sigmoid32 agrees with float64 sigmoid to float32 precision and is monotone', () => {
  let prev = 0;
  for (let x = -30; x <= 30; x += 0.01) {
    const s = sigmoid32(x);
    assert.ok(Math.abs(s - 1 / (1 + Math.exp(-x))) <= 2.4e-7 * Math.max(s, 1e-30) + 1e-45);
    assert.ok(s >= prev);
    prev = s;
  }
});
