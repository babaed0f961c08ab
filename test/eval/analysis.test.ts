import { test } from 'node:test';
import assert from 'node:assert/strict';
import { COCO_REC_THRS, confusionMatrix, errorAnalysis, evaluateCoco, scoreCurves, type CocoDataset } from '../../src/eval/index.js';
import { smallRun } from '../plot/helpers.js';

const gt: CocoDataset = {
  images: [{ id: 1 }, { id: 2 }],
  categories: [
    { id: 1, name: 'cat', supercategory: 'animal' },
    { id: 2, name: 'dog', supercategory: 'animal' },
    { id: 3, name: 'car', supercategory: 'vehicle' },
  ],
  annotations: [
    { id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 50, 50], area: 2500 },
    { id: 2, image_id: 1, category_id: 2, bbox: [100, 0, 50, 50], area: 2500 },
    { id: 3, image_id: 2, category_id: 3, bbox: [0, 0, 50, 50], area: 2500 },
    { id: 4, image_id: 2, category_id: 1, bbox: [100, 100, 40, 40], area: 1600, iscrowd: 1 },
  ],
};

test('confusionMatrix: own-class match, class confusion, background detection, miss; crowd regions count nowhere', () => {
  const cm = confusionMatrix(
    gt,
    [
      { image_id: 1, category_id: 1, bbox: [1, 1, 50, 50], score: 0.9 }, // cat on cat: TP
      { image_id: 1, category_id: 1, bbox: [100, 0, 50, 50], score: 0.8 }, // cat on the dog: confusion
      { image_id: 1, category_id: 3, bbox: [200, 200, 20, 20], score: 0.7 }, // nothing there: background
      { image_id: 2, category_id: 3, bbox: [0, 0, 50, 50], score: 0.1 }, // below the threshold: the car is missed
      { image_id: 2, category_id: 2, bbox: [105, 105, 20, 20], score: 0.9 }, // inside a crowd region
    ],
    { scoreThreshold: 0.5 },
  );
  assert.deepEqual(cm.labels, ['cat', 'dog', 'car', 'background']);
  assert.deepEqual(cm.counts, [
    [1, 0, 0, 0],
    [1, 0, 0, 1],
    [0, 0, 0, 1],
    [0, 0, 1, 0],
  ]);
  assert.deepEqual(cm.perImage, [
    { imageId: 1, gts: 2, missed: 1, dets: 3, background: 1, confused: 1, missedIds: [2] },
    { imageId: 2, gts: 1, missed: 1, dets: 1, background: 0, confused: 0, missedIds: [3] },
  ]);
});

test('scoreCurves: precision, recall and F1 of the detections scoring at or above each threshold', () => {
  const c = scoreCurves(
    gt,
    [
      { image_id: 1, category_id: 1, bbox: [0, 0, 50, 50], score: 0.9 },
      { image_id: 1, category_id: 1, bbox: [300, 300, 50, 50], score: 0.6 },
      { image_id: 2, category_id: 3, bbox: [0, 0, 50, 50], score: 0.3 },
    ],
    { thresholds: [0, 0.5, 0.95] },
  );
  assert.deepEqual(c.perClass.map((k) => k.name), ['cat', 'dog', 'car']);
  const [cat, dog, car] = c.perClass;
  assert.deepEqual([...cat!.precision], [0.5, 0.5, NaN]);
  assert.deepEqual([...cat!.recall], [1, 1, 0]);
  assert.deepEqual([...cat!.f1], [2 / 3, 2 / 3, 0]);
  assert.deepEqual([...dog!.f1], [0, 0, 0]);
  assert.deepEqual([...car!.f1], [1, 0, 0]);
  assert.deepEqual([...c.overall.f1], [(2 / 3 + 1) / 3, 2 / 9, 0]);
  assert.equal(c.best.threshold, 0);
});

test('errorAnalysis: C75/C50/Loc are the COCO PR curves; Sim forgives same-supercategory confusions, Oth any', () => {
  // A cat detection on the dog (same supercategory) and one on the car (another).
  const dets = [
    { image_id: 1, category_id: 1, bbox: [100, 0, 50, 50], score: 0.9 },
    { image_id: 2, category_id: 1, bbox: [0, 0, 50, 50], score: 0.8 },
    { image_id: 1, category_id: 1, bbox: [0, 0, 50, 50], score: 0.7 },
  ];
  const e = errorAnalysis(gt, dets);
  const cat = e.perClass[0]!;
  const at = (type: number, r: number): number => cat.curves[type]![0]![COCO_REC_THRS.indexOf(r)]!;
  // tp / (tp + fp + eps), as pycocotools.
  const close = (a: number, b: number): void => assert.ok(Math.abs(a - b) < 1e-12, `${a} vs ${b}`);
  // Loc: the true cat comes third, precision 1/3 at recall 1.
  close(at(2, 1), 1 / 3);
  // Sim: the dog confusion is forgiven, so 1/2; Oth: both, so 1; BG and FN 1.
  close(at(3, 1), 1 / 2);
  close(at(4, 1), 1);
  assert.equal(at(5, 1), 1);
  assert.equal(at(6, 1), 1);
  assert.equal(cat.ap[6]![0], 1);
});

test('errorAnalysis on a small run: curves nest (C75 <= C50 <= Loc <= Sim <= Oth <= BG <= FN) and C50 equals COCOeval at IoU 0.5', () => {
  const { gt: g, dets } = smallRun(1);
  const e = errorAnalysis(g, dets);
  const coco = evaluateCoco(g, dets, { maxDets: [1, 10, 100] });
  const { R, K, A, M } = coco.shape;
  for (const [k, c] of e.perClass.entries()) {
    for (let a = 0; a < A; a++) {
      for (let r = 0; r < R; r++) {
        for (let t = 1; t < 7; t++) assert.ok(c.curves[t]![a]![r]! >= c.curves[t - 1]![a]![r]! - 1e-12, `${c.name} area ${a} r ${r} type ${t}`);
        const p50 = coco.precision[(((0 * R + r) * K + k) * A + a) * M + (M - 1)]!;
        assert.equal(c.curves[1]![a]![r], p50 === -1 ? 0 : p50);
      }
    }
  }
});
