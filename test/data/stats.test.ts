import { test } from 'node:test';
import assert from 'node:assert/strict';
import { anchorsForImage, concatLevels } from '../../src/detection/anchors.js';
import { AnchorIndex } from '../../src/detection/anchor_index.js';
import { Rng } from '../../src/core/random.js';
import { bestAnchorIou, datasetStats } from '../../src/data/stats.js';
import type { DetectionDataset } from '../../src/data/types.js';

test('bestAnchorIou equals the max over all generated anchors', () => {
  const rng = new Rng(11);
  for (const [ph, pw] of [[320, 416], [800, 1088], [64, 96]] as const) {
    const gt = new Float32Array(4 * 200);
    for (let j = 0; j < 200; j++) {
      const w = Math.exp(rng.uniform(Math.log(2), Math.log(pw)));
      const h = Math.exp(rng.uniform(Math.log(2), Math.log(ph)));
      const x = rng.uniform(-0.1 * w, pw - 0.9 * w);
      const y = rng.uniform(-0.1 * h, ph - 0.9 * h);
      gt.set([x, y, x + w, y + h], 4 * j);
    }
    const index = new AnchorIndex(concatLevels(anchorsForImage(ph, pw)));
    const s = index.sparseIou(gt);
    const fast = bestAnchorIou(gt, ph, pw);
    for (let j = 0; j < 200; j++) {
      let m = 0;
      for (let k = s.start[j]!; k < s.start[j + 1]!; k++) m = Math.max(m, s.iou[k]!);
      assert.ok(Math.abs(fast[j]! - m) < 1e-5, `${ph}x${pw} gt ${j}: ${fast[j]} vs ${m}`);
    }
  }
});

test('datasetStats counts classes, sizes, crowd and coverage', () => {
  const ds: DetectionDataset = {
    classNames: ['a', 'b'],
    categoryIds: [0, 1],
    images: [
      { id: 1, file: 'x', width: 640, height: 480, boxes: Float32Array.from([0, 0, 10, 10, 0, 0, 50, 50, 0, 0, 200, 200]), labels: Int32Array.from([0, 1, 1]), crowd: Uint8Array.from([0, 0, 1]), difficult: Uint8Array.from([1, 0, 0]) },
      { id: 2, file: 'y', boxes: new Float32Array(0), labels: new Int32Array(0), crowd: new Uint8Array(0), difficult: new Uint8Array(0) },
    ],
  };
  const s = datasetStats(ds);
  assert.equal(s.images, 2);
  assert.equal(s.imagesWithoutBoxes, 1);
  assert.deepEqual(s.boxesPerClass, [1, 2]);
  assert.deepEqual(s.sizeCoco, { small: 1, medium: 1, large: 1 });
  assert.deepEqual(s.sizeBins, [0, 1, 0, 1, 0, 0, 1, 0, 0]);
  assert.equal(s.crowdBoxes, 1);
  assert.equal(s.difficultBoxes, 1);
  assert.deepEqual(s.imageSizeRange, { minWidth: 640, maxWidth: 640, minHeight: 480, maxHeight: 480 });
  // 10 px box at scale 800/480 is ~16.7 px: best IoU with a 32 px anchor ~0.27
  assert.equal(s.anchorCoverage!.checked, 2);
  assert.deepEqual(s.anchorCoverage!.uncoveredPerClass, [1, 0]);
});
