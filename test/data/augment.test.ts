import { test } from 'node:test';
import assert from 'node:assert/strict';
import { augment, hflipBoxes, hflipImage, scaleRange } from '../../src/data/augment.js';
import { Rng } from '../../src/core/random.js';
import { transformBatch } from '../../src/data/transform.js';
import type { RgbImage } from '../../src/data/types.js';

const image: RgbImage = { data: Float32Array.from({ length: 3 * 2 * 3 }, (_, i) => i), width: 3, height: 2 };

test('Rng is deterministic per seed and roughly uniform', () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const xs = Array.from({ length: 1000 }, () => a.next());
  assert.deepEqual(xs, Array.from({ length: 1000 }, () => b.next()));
  assert.notDeepEqual(xs.slice(0, 5), Array.from({ length: 5 }, () => new Rng(43).next()));
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.05);
  const r = new Rng(1);
  const counts = [0, 0, 0];
  for (let i = 0; i < 3000; i++) counts[r.int(3)]!++;
  assert.ok(counts.every((c) => c > 900 && c < 1100), String(counts));
  assert.deepEqual(new Rng(5).shuffle([1, 2, 3, 4, 5]).sort(), [1, 2, 3, 4, 5]);
  const n = Array.from({ length: 2000 }, () => r.normal());
  const nm = n.reduce((s, x) => s + x, 0) / n.length;
  const nv = n.reduce((s, x) => s + (x - nm) ** 2, 0) / n.length;
  assert.ok(Math.abs(nm) < 0.1 && Math.abs(nv - 1) < 0.1, `${nm} ${nv}`);
});

test('horizontal flip mirrors pixels and boxes consistently', () => {
  const f = hflipImage(image);
  assert.deepEqual([...f.data.subarray(0, 6)], [2, 1, 0, 5, 4, 3]);
  assert.deepEqual([...hflipImage(f).data], [...image.data]);
  assert.deepEqual([...hflipBoxes(Float32Array.from([0, 0, 1, 2, 1, 0, 3, 1]), 3)], [2, 0, 3, 2, 0, 0, 2, 1]);
});

test('augment is reproducible from the seed and picks sizes from the list', () => {
  const boxes = Float32Array.from([0, 0, 1, 1]);
  const sizes = scaleRange(640, 800);
  assert.deepEqual(sizes, [640, 672, 704, 736, 768, 800]);
  const run = (seed: number) => {
    const rng = new Rng(seed);
    return Array.from({ length: 20 }, () => augment(image, boxes, rng, { minSizes: sizes }));
  };
  const a = run(7);
  assert.deepEqual(a.map((s) => [s.flipped, s.minSize]), run(7).map((s) => [s.flipped, s.minSize]));
  assert.ok(a.some((s) => s.flipped) && a.some((s) => !s.flipped));
  assert.ok(a.every((s) => sizes.includes(s.minSize!)));
  const flipped = a.find((s) => s.flipped)!;
  assert.deepEqual([...flipped.boxes], [2, 0, 3, 1]);
  const none = augment(image, boxes, new Rng(1), { flipProbability: 0 });
  assert.equal(none.flipped, false);
  assert.equal(none.minSize, undefined);
});

test('transformBatch honours a per-image short side', () => {
  const big: RgbImage = { data: new Float32Array(3 * 20 * 30), width: 30, height: 20 };
  const out = transformBatch([big, big], undefined, { minSize: 40, maxSize: 1000, perImageMinSize: [undefined, 10] });
  assert.deepEqual(out.imageSizes, [[40, 60], [10, 15]]);
});
