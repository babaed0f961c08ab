import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RETINANET_ANCHOR_CONFIG, anchorsForImage, makeAnchorConfig, anchorsPerLocation, cellAnchors, concatLevels, gridSizesFor } from '../../src/detection/index.js';
import { assertF32Equal, loadFixture } from './fixtures.js';

interface AnchorFixture {
  default_sizes: number[][];
  default_aspect_ratios: number[][];
  cell_anchors: number[][];
  full: { padded: [number, number]; grids: [number, number][]; num_anchors: number; anchors: number[] }[];
  sampled: { padded: [number, number]; grids: [number, number][]; strides: [number, number][]; num_anchors: number; indices: number[]; anchors: number[] }[];
  custom: { sizes: number[][]; aspect_ratios: number[][]; padded: [number, number]; grids: [number, number][]; anchors: number[] };
}
const fx = loadFixture<AnchorFixture>('anchors.json');

test('default config matches retinanet_resnet50_fpn (int() truncation of 2^(k/3) sizes)', () => {
  assert.deepEqual(RETINANET_ANCHOR_CONFIG.sizes, fx.default_sizes);
  assert.deepEqual(RETINANET_ANCHOR_CONFIG.aspectRatios, fx.default_aspect_ratios);
  assert.deepEqual(anchorsPerLocation(), [9, 9, 9, 9, 9]);
  fx.cell_anchors.forEach((expected, l) => {
    assertF32Equal(cellAnchors(RETINANET_ANCHOR_CONFIG.sizes[l]!, RETINANET_ANCHOR_CONFIG.aspectRatios[l]!), expected, `cell anchors P${l + 3}`);
  });
});

test('anchors equal torchvision AnchorGenerator output, same order (small images)', () => {
  for (const c of fx.full) {
    const [h, w] = c.padded;
    assert.deepEqual(gridSizesFor(h, w, RETINANET_ANCHOR_CONFIG.strides), c.grids);
    const all = concatLevels(anchorsForImage(h, w));
    assert.equal(all.length, 4 * c.num_anchors);
    assertF32Equal(all, c.anchors, `anchors ${h}x${w}`);
  }
});

test('anchors on 800-1344 px images: torchvision strides (e.g. 61 on P6) and sampled values', () => {
  for (const c of fx.sampled) {
    const [h, w] = c.padded;
    assert.deepEqual(gridSizesFor(h, w, RETINANET_ANCHOR_CONFIG.strides), c.grids);
    const all = concatLevels(anchorsForImage(h, w));
    assert.equal(all.length, 4 * c.num_anchors);
    const picked = c.indices.flatMap((i) => Array.from(all.subarray(4 * i, 4 * i + 4)));
    assertF32Equal(picked, c.anchors, `anchors ${h}x${w}`);
  }
});

test('custom sizes / ratios / levels with explicit grids', () => {
  const c = fx.custom;
  const levels = anchorsForImage(c.padded[0], c.padded[1], { sizes: c.sizes, aspectRatios: c.aspect_ratios, strides: [8, 16] }, c.grids);
  assert.equal(levels.length, 2);
  assertF32Equal(concatLevels(levels), c.anchors, 'custom anchors');
});

test('makeAnchorConfig builds levels from base sizes x scales x ratios', () => {
  const c = makeAnchorConfig({ baseSizes: [16, 32, 64], scales: [1, 1.5], aspectRatios: [1], strides: [4, 8, 16] });
  assert.deepEqual(c.sizes, [[16, 24], [32, 48], [64, 96]]);
  assert.deepEqual(anchorsPerLocation(c), [2, 2, 2]);
  const levels = anchorsForImage(32, 32, c);
  assert.deepEqual(levels.map((l) => l.length / 4), [8 * 8 * 2, 4 * 4 * 2, 2 * 2 * 2]);
  assert.deepEqual(makeAnchorConfig().strides, [8, 16, 32, 64, 128]);
});

test('mismatched config lengths are rejected', () => {
  assert.throws(() => anchorsForImage(64, 64, { sizes: [[32]], aspectRatios: [[1], [1]], strides: [8] }), RangeError);
});
