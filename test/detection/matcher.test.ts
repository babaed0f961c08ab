import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  AnchorIndex,
  BELOW_LOW_THRESHOLD,
  BETWEEN_THRESHOLDS,
  anchorsForImage,
  assignTargets,
  boxIou,
  concatLevels,
  matchDense,
  matchSparse,
} from '../../src/detection/index.js';
import { sanitizeGtBoxes } from '../../src/detection/targets.js';
import { assertClose, loadFixture } from './fixtures.js';

interface MatcherCase {
  name: string;
  padded: [number, number];
  image_size: [number, number] | null;
  gt_boxes: number[];
  gt_labels: number[];
  kept_gt: number[];
  matched_idxs: number[];
  foreground: number[];
  regression_targets: number[];
}
const fx = loadFixture<{ cases: MatcherCase[] }>('matcher.json');

for (const c of fx.cases) {
  test(`assignTargets matches torchvision Matcher(0.5, 0.4, low-quality) + BoxCoder: ${c.name}`, () => {
    const anchors = concatLevels(anchorsForImage(c.padded[0], c.padded[1]));
    const warnings: string[] = [];
    const r = assignTargets(anchors, Float32Array.from(c.gt_boxes), Int32Array.from(c.gt_labels), {
      ...(c.image_size ? { imageSize: c.image_size } : {}),
      onWarning: (m) => warnings.push(m),
    });
    assert.deepEqual(Array.from(r.keptGt), c.kept_gt);
    assert.deepEqual(Array.from(r.matchedIdxs), c.matched_idxs);
    assert.deepEqual(Array.from(r.foreground), c.foreground);
    assert.deepEqual(Array.from(r.labels), c.foreground.map((a) => c.gt_labels[c.matched_idxs[a]!]!));
    assertClose(r.regressionTargets, c.regression_targets, 1e-6, 1e-6, 'regression targets');
    for (const v of r.regressionTargets) assert.ok(Number.isFinite(v));
    assert.equal(warnings.length, c.gt_boxes.length / 4 - c.kept_gt.length + (c.name === 'needs_sanitizing' ? 2 : 0));
  });
}

test('an image without gt boxes gives all-background targets', () => {
  const anchors = concatLevels(anchorsForImage(64, 64));
  const r = assignTargets(anchors, new Float32Array(0), new Int32Array(0));
  assert.ok(r.matchedIdxs.every((v) => v === BELOW_LOW_THRESHOLD));
  assert.equal(r.foreground.length, 0);
  assert.equal(r.regressionTargets.length, 0);
});

test('dense matcher on box_iou equals the fixture too (ties go to the lowest gt index)', () => {
  const c = fx.cases[0]!;
  const anchors = concatLevels(anchorsForImage(c.padded[0], c.padded[1]));
  const gt = Float32Array.from(c.gt_boxes);
  assert.deepEqual(Array.from(matchDense(boxIou(gt, anchors), gt.length / 4, anchors.length / 4)), c.matched_idxs);
});

test('property: sparse (indexed) matching equals dense matching on random anchors and gt', () => {
  const coord = fc.integer({ min: 0, max: 200 });
  // Few distinct sizes, so anchors share size groups and pruning has something to skip.
  const size = fc.constantFrom(4, 8, 16, 24, 32, 48, 64, 80);
  const box = fc.tuple(coord, coord, size, size).map(([x, y, w, h]) => [x, y, x + w, y + h]);
  fc.assert(
    fc.property(
      fc.array(box, { minLength: 1, maxLength: 300, size: 'max' }),
      fc.array(box, { minLength: 0, maxLength: 8 }),
      fc.boolean(),
      (a, g, lowQuality) => {
        const anchors = Float32Array.from(a.flat());
        const gt = Float32Array.from(g.flat());
        const opts = { allowLowQualityMatches: lowQuality };
        const dense = matchDense(boxIou(gt, anchors), g.length, a.length, opts);
        const index = new AnchorIndex(anchors);
        const sparse = matchSparse(index.sparseIou(gt), opts);
        assert.deepEqual(Array.from(sparse), Array.from(dense));
        const pruned = matchSparse(index.sparseIou(gt, 0.4), opts, (i) => index.argmaxIou(gt, i));
        assert.deepEqual(Array.from(pruned), Array.from(dense), 'pruned');
        for (const v of sparse) assert.ok(v === BELOW_LOW_THRESHOLD || v === BETWEEN_THRESHOLDS || (v >= 0 && v < g.length));
      },
    ),
  );
});

test('property: degenerate or out-of-image gt boxes never produce NaN targets', () => {
  const anchors = concatLevels(anchorsForImage(64, 96));
  const index = new AnchorIndex(anchors);
  const v = fc.float({ min: -200, max: 300, noNaN: false, noDefaultInfinity: false });
  fc.assert(
    fc.property(fc.array(fc.tuple(v, v, v, v), { maxLength: 6 }), (g) => {
      const gt = Float32Array.from(g.flat());
      const r = assignTargets(anchors, gt, new Int32Array(g.length), { imageSize: [60, 90], index, onWarning: () => {} });
      for (const t of r.regressionTargets) assert.ok(Number.isFinite(t));
      for (const m of r.matchedIdxs) assert.ok(m < g.length);
    }),
  );
});

test('gt boxes past the border: float rounding (< 1e-3 px) is clipped silently, a real overhang is clipped with a warning', () => {
  const warnings: string[] = [];
  const boxes = Float32Array.from([10, 0.5, 240, 234.00001525878906, 10, 10, 260, 100, -3, 5, 50, 60]);
  const { boxes: clean, kept } = sanitizeGtBoxes(boxes, [234, 351], (m) => warnings.push(m));
  assert.deepEqual(Array.from(kept), [0, 1, 2]);
  assert.equal(clean[3], 234);
  assert.equal(clean[8], 0);
  assert.equal(warnings.length, 1, warnings.join('\n'));
  assert.match(warnings[0]!, /^gt box 2 \[-3, 5, 50, 60\] extends outside the 351x234 image; clipped$/);
});
