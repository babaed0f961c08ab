import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  BBOX_XFORM_CLIP,
  BoxCoder,
  type BoxCoderWeights,
  type BoxFormat,
  boxArea,
  boxConvert,
  boxIou,
  clipBoxesToImage,
  generalizedBoxIou,
  removeSmallBoxes,
} from '../../src/detection/index.js';
import { assertClose, assertF32Equal, loadFixture } from './fixtures.js';

interface BoxesFixture {
  boxes1: number[];
  boxes2: number[];
  iou: number[];
  giou: number[];
  area1: number[];
  clip: { boxes: number[]; size: [number, number]; clipped: number[] };
  remove_small: { boxes: number[]; min_size: number; keep: number[] };
  convert: Record<string, number[]>;
  coder: { weights: number[]; gt: number[]; anchors: number[]; encoded: number[]; rel_codes: number[]; decoded: number[] }[];
  bbox_xform_clip: number;
}
const fx = loadFixture<BoxesFixture>('boxes.json');
const b1 = Float32Array.from(fx.boxes1);
const b2 = Float32Array.from(fx.boxes2);

test('box_iou, generalized_box_iou and box_area match torchvision bit for bit', () => {
  assertF32Equal(boxIou(b1, b2), fx.iou, 'iou');
  assertF32Equal(generalizedBoxIou(b1, b2), fx.giou, 'giou');
  assertF32Equal(boxArea(b1), fx.area1, 'area');
});

test('clip_boxes_to_image and remove_small_boxes match torchvision', () => {
  assertF32Equal(clipBoxesToImage(Float32Array.from(fx.clip.boxes), fx.clip.size), fx.clip.clipped, 'clip');
  assert.deepEqual(Array.from(removeSmallBoxes(Float32Array.from(fx.remove_small.boxes), fx.remove_small.min_size)), fx.remove_small.keep);
});

test('box_convert between xyxy, xywh and cxcywh matches torchvision', () => {
  for (const [key, expected] of Object.entries(fx.convert)) {
    const [from, to] = key.split('_to_') as [BoxFormat, BoxFormat];
    // torchvision's fixture converted boxes1 read as `from` format.
    assertF32Equal(boxConvert(b1, from, to), expected, key);
  }
});

test('BoxCoder encode/decode match torchvision (weights 1 and 10/10/5/5, log(1000/16) clamp)', () => {
  assert.equal(BBOX_XFORM_CLIP, fx.bbox_xform_clip);
  for (const c of fx.coder) {
    const coder = new BoxCoder(c.weights as unknown as BoxCoderWeights);
    // log/exp may differ from torch's vectorised float32 versions by an ulp.
    assertClose(coder.encode(Float32Array.from(c.gt), Float32Array.from(c.anchors)), c.encoded, 1e-6, 1e-6, 'encode');
    assertClose(coder.decode(Float32Array.from(c.rel_codes), Float32Array.from(c.anchors)), c.decoded, 1e-4, 1e-6, 'decode');
  }
});

// ------------------------------------------------------------------ properties
const coord = fc.float({ min: -500, max: 500, noNaN: true, noDefaultInfinity: true });
const extent = fc.float({ min: Math.fround(0.5), max: 300, noNaN: true, noDefaultInfinity: true });
const box = fc.tuple(coord, coord, extent, extent).map(([x, y, w, h]) => [x, y, Math.fround(x + w), Math.fround(y + h)]);
const boxes = (min: number, max: number) => fc.array(box, { minLength: min, maxLength: max }).map((bs) => Float32Array.from(bs.flat()));

test('property: IoU is symmetric, within [0, 1], and 1 on the diagonal', () => {
  fc.assert(
    fc.property(boxes(1, 12), boxes(1, 12), (a, b) => {
      const n = a.length / 4, m = b.length / 4;
      const ab = boxIou(a, b), ba = boxIou(b, a);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < m; j++) {
          const v = ab[i * m + j]!;
          assert.ok(v >= 0 && v <= 1, `iou ${v}`);
          assert.ok(Math.abs(v - ba[j * n + i]!) <= 1e-6);
        }
      }
      const aa = boxIou(a, a);
      for (let i = 0; i < n; i++) assert.ok(Math.abs(aa[i * n + i]! - 1) <= 1e-6);
      const g = generalizedBoxIou(a, b);
      for (let k = 0; k < g.length; k++) assert.ok(g[k]! <= ab[k]! + 1e-6 && g[k]! >= -1 - 1e-6);
    }),
  );
});

test('property: box_convert round-trips and clip stays inside the image', () => {
  fc.assert(
    fc.property(boxes(1, 10), fc.constantFrom<BoxFormat>('xywh', 'cxcywh'), fc.integer({ min: 1, max: 800 }), fc.integer({ min: 1, max: 800 }), (a, fmt, h, w) => {
      assertClose(boxConvert(boxConvert(a, 'xyxy', fmt), fmt, 'xyxy'), a, 1e-3, 1e-6, 'round trip');
      const c = clipBoxesToImage(a, [h, w]);
      for (let k = 0; k < c.length; k++) assert.ok(c[k]! >= 0 && c[k]! <= (k % 2 === 0 ? w : h));
      for (const i of removeSmallBoxes(a, 5)) assert.ok(a[4 * i + 2]! - a[4 * i]! >= 5 && a[4 * i + 3]! - a[4 * i + 1]! >= 5);
    }),
  );
});

test('property: decode(encode(gt)) recovers gt within float32 precision', () => {
  fc.assert(
    fc.property(boxes(1, 10), fc.constantFrom<BoxCoderWeights>([1, 1, 1, 1], [10, 10, 5, 5]), (gt, weights) => {
      // Anchors near the gt boxes so exp(dw) stays inside the clamp.
      const anchors = gt.map((v, k) => v + (k % 4 < 2 ? -3 : 4));
      const coder = new BoxCoder(weights);
      assertClose(coder.decode(coder.encode(gt, anchors), anchors), gt, 2e-3, 1e-5, 'decode(encode)');
    }),
  );
});

test('decoded box size never exceeds exp(log(1000/16)) times the anchor', () => {
  const coder = new BoxCoder();
  const out = coder.decode(Float32Array.of(0, 0, 100, 100), Float32Array.of(0, 0, 10, 20));
  assertClose([out[2]! - out[0]!, out[3]! - out[1]!], [625, 1250], 1e-2, 0, 'clamped size');
});
