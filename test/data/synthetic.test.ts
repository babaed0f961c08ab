import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadDataset } from '../../src/data/datasets/index.js';
import { loadImage } from '../../src/io/image.js';
import { generateSynthetic, SYNTHETIC_CLASSES, syntheticSample, writeSyntheticCoco } from '../../src/data/synthetic.js';

test('synthetic samples are deterministic, in range, non-overlapping, varied', () => {
  const a = generateSynthetic({ count: 12, seed: 3, imageSize: 128 });
  const b = generateSynthetic({ count: 12, seed: 3, imageSize: 128 });
  assert.deepEqual(a[5]!.image.data, b[5]!.image.data);
  assert.deepEqual(syntheticSample(5, { seed: 3, imageSize: 128, count: 99 }).boxes, a[5]!.boxes, 'image i does not depend on count');
  assert.notDeepEqual(generateSynthetic({ count: 1, seed: 4, imageSize: 128 })[0]!.boxes, a[0]!.boxes);
  const sides: number[] = [];
  const seen = new Set<number>();
  for (const s of a) {
    assert.equal(s.image.data.length, 3 * 128 * 128);
    assert.ok(s.image.data.every((v) => v >= 0 && v <= 1));
    assert.ok(s.labels.length >= 2 && s.labels.length <= 6);
    for (let i = 0; i < s.labels.length; i++) {
      seen.add(s.labels[i]!);
      const [x1, y1, x2, y2] = s.boxes.subarray(4 * i, 4 * i + 4);
      assert.ok(x1! >= 0 && y1! >= 0 && x2! <= 128 && y2! <= 128 && x2! > x1! && y2! > y1!);
      sides.push(x2! - x1!);
      for (let j = 0; j < i; j++) {
        const [u1, v1, u2, v2] = s.boxes.subarray(4 * j, 4 * j + 4);
        assert.ok(x1! >= u2! || u1! >= x2! || y1! >= v2! || v1! >= y2!, 'boxes do not overlap');
      }
    }
  }
  assert.equal(seen.size, SYNTHETIC_CLASSES.length);
  assert.ok(Math.min(...sides) < 16 && Math.max(...sides) > 60, `sizes ${Math.min(...sides)}..${Math.max(...sides)}`);
});

test('writeSyntheticCoco writes PNGs + COCO JSON that loadDataset reads back', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'syn-'));
  try {
    const json = await writeSyntheticCoco(dir, { count: 3, seed: 1, imageSize: 64, maxObjectSize: 40 });
    assert.equal(json, path.join(dir, 'annotations', 'instances_train.json'));
    const { dataset, problems } = await loadDataset(dir, { checkImages: 'header' });
    assert.deepEqual(problems, []);
    assert.deepEqual(dataset.classNames, SYNTHETIC_CLASSES);
    assert.deepEqual(dataset.categoryIds, [1, 2, 3, 4]);
    const mem = generateSynthetic({ count: 3, seed: 1, imageSize: 64, maxObjectSize: 40 });
    dataset.images.forEach((im, i) => {
      assert.deepEqual(im.boxes, mem[i]!.boxes);
      assert.deepEqual(im.labels, mem[i]!.labels);
    });
    const png = await loadImage(dataset.images[0]!.file);
    const maxDiff = png.data.reduce((m, v, k) => Math.max(m, Math.abs(v - mem[0]!.image.data[k]!)), 0);
    assert.ok(maxDiff <= 0.5 / 255 + 1e-6, `PNG is the 8-bit image (max diff ${maxDiff})`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
