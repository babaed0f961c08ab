import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  batchImages,
  postprocessBoxes,
  resizeBilinear,
  resizedSize,
  transformBatch,
} from '../../src/data/transform.js';
import type { RgbImage } from '../../src/data/types.js';

const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/data');

interface Golden {
  images: { shape: [number, number, number]; data: number[] }[];
  boxes: number[][];
  cases: {
    minSize: number;
    maxSize: number;
    batchShape: number[];
    imageSizes: [number, number][];
    batch: number[] | null;
    checksum: [number, number];
    boxes: number[][];
    boxesBack: number[][];
  }[];
}

const golden = JSON.parse(readFileSync(path.join(fixtures, 'transform_golden.json'), 'utf8')) as Golden;
const images: RgbImage[] = golden.images.map((im) => ({ data: Float32Array.from(im.data), height: im.shape[1], width: im.shape[2] }));
const boxes = golden.boxes.map((b) => Float32Array.from(b));

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i]! - Math.fround(expected[i]!));
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  assert.ok(worst <= tol, `${what}: max |diff| ${worst} at ${at} (${actual[at]} vs ${expected[at]})`);
}

for (const c of golden.cases) {
  test(`transform matches torchvision GeneralizedRCNNTransform (min ${c.minSize}, max ${c.maxSize})`, () => {
    const out = transformBatch(images, boxes, { minSize: c.minSize, maxSize: c.maxSize });
    assert.deepEqual(out.shape, c.batchShape);
    assert.deepEqual(out.imageSizes, c.imageSizes);
    if (c.batch) {
      // Observed max 4.8e-7 (<= 2 ulp: torch's loop order/FMA differ); float32 source indices gave ~2e-6.
      assertClose(out.data, c.batch, 1e-6, 'batch pixels');
    } else {
      let sum = 0;
      let abs = 0;
      for (const v of out.data) {
        sum += v;
        abs += Math.abs(v);
      }
      assert.ok(Math.abs(sum - c.checksum[0]) < 1e-5 * c.checksum[1], `sum ${sum} vs ${c.checksum[0]}`);
      assert.ok(Math.abs(abs - c.checksum[1]) < 1e-5 * c.checksum[1], `abs sum ${abs} vs ${c.checksum[1]}`);
    }
    out.boxes!.forEach((b, i) => assertClose(b, c.boxes[i]!, 0, `boxes[${i}]`));
    out.boxes!.forEach((b, i) => {
      const back = postprocessBoxes(b, out.imageSizes[i]!, out.originalSizes[i]!);
      assertClose(back, c.boxesBack[i]!, 0, `postprocessed boxes[${i}]`);
    });
  });
}

test('resizedSize follows torch float32 rounding of the scale', () => {
  assert.deepEqual(resizedSize(29, 21, 45, 80), [62, 44]); // 21 * fround(45/21) < 45
  assert.deepEqual(resizedSize(480, 640, 800, 1333), [800, 1066]);
  assert.deepEqual(resizedSize(100, 1000, 800, 1333), [133, 1333]);
});

test('resizeBilinear: identity at the same size, constant images stay constant', () => {
  const data = Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 0.1);
  const same = resizeBilinear(data, 2, 3, 4, 3, 4);
  assert.deepEqual(same, data);
  same[0] = 7; // a copy: the caller may write into it
  assert.equal(data[0], 0);
  const flat = new Float32Array(3 * 5 * 7).fill(0.25);
  for (const v of resizeBilinear(flat, 3, 5, 7, 11, 3)) assert.equal(v, 0.25);
});

test('batchImages pads bottom/right with zeros to a multiple of the divisor', () => {
  const a: RgbImage = { data: new Float32Array(3 * 2 * 3).fill(1), height: 2, width: 3 };
  const b = batchImages([a], 4);
  assert.deepEqual(b.shape, [1, 3, 4, 4]);
  assert.deepEqual([...b.data.subarray(0, 16)], [1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
});
