import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DetectionDataset } from '../../src/data/types.js';
import { WIDE_MODEL_EPOCHS, anchorSizes, scratchRecipe, scratchStats } from '../../src/train/scratch_recipe.js';

/** A dataset of `n` images of `w` x `h` (or unknown size), each with boxes of side `side` px per class. */
function dataset(n: number, sizes: { w?: number; h?: number }[], sides: number[], classNames = sides.map((_, i) => `c${i}`)): DetectionDataset {
  return {
    classNames,
    categoryIds: classNames.map((_, i) => i + 1),
    images: Array.from({ length: n }, (_, i) => {
      const { w, h } = sizes[i % sizes.length]!;
      const boxes: number[] = [];
      sides.forEach((s) => boxes.push(4, 4, 4 + s, 4 + s));
      return {
        id: i + 1,
        file: `im${i}.jpg`,
        width: w,
        height: h,
        boxes: Float32Array.from(boxes),
        labels: Int32Array.from(sides.map((_, c) => c)),
        crowd: new Uint8Array(sides.length),
        difficult: new Uint8Array(sides.length),
      };
    }),
  };
}

test('statistics: relative box sizes per class, median image sides, one size or several', () => {
  const st = scratchStats(dataset(10, [{ w: 640, h: 480 }], [48, 240]));
  assert.equal(st.images, 10);
  assert.equal(st.boxes, 20);
  assert.deepEqual(st.boxesPerClass, [10, 10]);
  assert.equal(st.shortSide, 480);
  assert.equal(st.longSide, 640);
  assert.ok(st.sameSize);
  assert.ok(Math.abs(st.relativeSize[0]!.p10 - 0.1) < 1e-9);
  assert.ok(Math.abs(st.relativeSize[1]!.p50 - 0.5) < 1e-9);
  assert.ok(!scratchStats(dataset(4, [{ w: 640, h: 480 }, { w: 500, h: 375 }], [48])).sameSize);
  assert.equal(scratchStats(dataset(4, [{}], [48])).relativeSize[0], undefined);
});

test('large objects: the smallest input (256 px), the small model, default anchors, GroupNorm everywhere', () => {
  const c = scratchRecipe(dataset(160, [{ w: 640, h: 480 }, { w: 500, h: 400 }], [240]), { timeBudget: 900, cores: 2 });
  assert.equal(c.config.transform.minSize, 256);
  assert.equal(c.config.transform.maxSize, 352);
  assert.equal(c.config.backbone.norm, 'group_norm');
  assert.equal(c.config.fpn.norm, 'group_norm');
  assert.ok(c.config.head.groupNorm);
  assert.equal(c.config.backbone.baseWidth, 32);
  assert.equal(c.config.backbone.trainableLayers, 5);
  assert.deepEqual(c.config.anchors.sizes, anchorSizes(0));
  assert.equal(c.recipe.padTo, 128, 'several image sizes: pad to 128');
  assert.deepEqual(c.recipe.minSizes, [192, 224, 256]);
  assert.ok(c.reasons.length >= 6);
  for (const r of c.reasons) assert.ok(r.choice.length > 0 && r.because.length > 0);
  assert.match(c.reasons.find((r) => r.choice.startsWith('input'))!.because, /256 px is the floor/);
});

test('small objects: the input grows to bring them to 32 px, up to the images\' own size', () => {
  // 20 px boxes in 640x480 images: 32 px would need 768 px, more than the images have (480).
  const c = scratchRecipe(dataset(100, [{ w: 640, h: 480 }], [20, 200]), { timeBudget: 900 });
  assert.equal(c.config.transform.minSize, 480);
  assert.equal(c.config.transform.maxSize, 640);
  assert.equal(c.recipe.padTo, 32, 'one image size: pad to 32, one batch shape');
  // At 480 px the 20 px boxes have no anchor with IoU >= 0.5 among 32-512; one octave smaller covers them.
  assert.deepEqual(c.config.anchors.sizes, anchorSizes(-1));
  // 40 px boxes in 640x480: 32 px at 384.
  assert.equal(scratchRecipe(dataset(100, [{ w: 640, h: 480 }], [40])).config.transform.minSize, 384);
});

test('the wider model only when the budget gives it enough passes over the data', () => {
  const small = scratchRecipe(dataset(20, [{ w: 640, h: 480 }], [240]), { timeBudget: 3600, cores: 8 });
  assert.equal(small.config.backbone.baseWidth, 64);
  assert.equal(small.config.fpn.channels, 128);
  assert.ok(small.estimate.epochs >= WIDE_MODEL_EPOCHS);
  const big = scratchRecipe(dataset(2000, [{ w: 640, h: 480 }], [240]), { timeBudget: 900, cores: 2 });
  assert.equal(big.config.backbone.baseWidth, 32);
});

test('image sizes unknown: 384 px, and caller-chosen sizes are kept', () => {
  assert.equal(scratchRecipe(dataset(50, [{}], [100])).config.transform.minSize, 384);
  const given = scratchRecipe(dataset(50, [{ w: 640, h: 480 }], [240]), { minSize: 320, maxSize: 400 });
  assert.equal(given.config.transform.minSize, 320);
  assert.equal(given.config.transform.maxSize, 400);
  assert.deepEqual(given.recipe.minSizes, [256, 288, 320]);
  assert.equal(scratchRecipe(dataset(50, [{ w: 64, h: 64 }], [20]), { minSize: 64 }).recipe.minSizes, undefined, 'no jitter below 32 px steps');
});

test('the choice is deterministic and carries the data\'s classes', () => {
  const ds = dataset(30, [{ w: 640, h: 480 }, { w: 300, h: 500 }], [60, 120], ['cat', 'dog']);
  const a = scratchRecipe(ds, { timeBudget: 600 });
  const b = scratchRecipe(ds, { timeBudget: 600 });
  assert.deepEqual(a, b);
  assert.equal(a.config.numClasses, 2);
  assert.deepEqual(a.config.classNames, ['cat', 'dog']);
});
