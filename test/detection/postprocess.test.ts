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

/**
 * One level, NMS off (IoU threshold 1) and every candidate returned, so the output is the
 * per-level choice itself; anchor i is [i, 0, i + 1, 1] (deltas 0), so a box names its anchor.
 */
function chooseAll(logits: Float32Array, k: number, topk: number, scoreThresh: number): { anchor: number[]; label: number[]; score: number[] } {
  const a = logits.length / k;
  const anchors = new Float32Array(4 * a);
  for (let i = 0; i < a; i++) anchors.set([i, 0, i + 1, 1], 4 * i);
  const d = postprocessDetections([{ clsLogits: logits, bboxRegression: new Float32Array(4 * a), anchors }], k, [1e7, 1e7], {
    scoreThresh, nmsThresh: 1, topkCandidates: topk, detectionsPerImg: logits.length,
  });
  return { anchor: Array.from({ length: d.scores.length }, (_, i) => Math.round(d.boxes[4 * i]!)), label: Array.from(d.labels), score: Array.from(d.scores) };
}

/** The definition: sigmoid on every logit, keep > threshold, best topk by score, ties to the lower index. */
function chooseNaive(logits: Float32Array, k: number, topk: number, scoreThresh: number): { anchor: number[]; label: number[]; score: number[] } {
  const t = Math.fround(scoreThresh);
  const c: { i: number; s: number }[] = [];
  logits.forEach((x, i) => {
    const s = sigmoid32(x);
    if (s > t) c.push({ i, s });
  });
  c.sort((p, q) => q.s - p.s || p.i - q.i);
  const top = c.slice(0, topk);
  return { anchor: top.map((e) => Math.floor(e.i / k)), label: top.map((e) => e.i % k), score: top.map((e) => e.s) };
}

test('the streaming top-k chooses what sigmoid over every logit chooses (many candidates, ties, saturation)', () => {
  let seed = 7;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const gauss = (): number => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const k = 5;
  const n = 40000 * k;
  const cases: [string, (i: number) => number, number, number][] = [
    ['continuous, topk 50', () => 2 * gauss(), 50, 0.05],
    ['quantized (heavy ties), topk 1000', () => Math.round(8 * gauss()) / 4, 1000, 0.05],
    ['saturated (score 1.0 ties), topk 100', () => 10 + 30 * rand(), 100, 0.05],
    ['rising along the scan, topk 20', (i) => i / n * 6 - 3 + 0.1 * gauss(), 20, 0.05],
    ['best near the threshold, topk 10', () => -2.9444 + 1e-4 * gauss(), 10, 0.05],
    ['threshold 0, very negative logits, topk 300', () => -100 + 200 * rand(), 300, 0],
  ];
  for (const [name, gen, topk, thresh] of cases) {
    const logits = Float32Array.from({ length: n }, (_, i) => gen(i));
    const got = chooseAll(logits, k, topk, thresh);
    const want = chooseNaive(logits, k, topk, thresh);
    assert.ok(want.score.length > 0, name);
    assert.deepEqual(got, want, name);
  }
});
