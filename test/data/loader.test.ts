import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { batches, datasetSource, syntheticSource, type Batch } from '../../src/data/loader.js';
import type { DetectionDataset } from '../../src/data/types.js';

async function collect(it: AsyncGenerator<Batch>): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of it) out.push(b);
  return out;
}

test('batches: seeded shuffle + augmentation are reproducible, shapes and targets consistent', async () => {
  const source = syntheticSource({ count: 5, imageSize: 64, seed: 2 });
  const opts = { batchSize: 2, shuffle: true, seed: 9, augment: { minSizes: [64, 96] }, transform: { maxSize: 200 } };
  const a = await collect(batches(source, opts));
  const b = await collect(batches(source, opts));
  assert.deepEqual(a.map((x) => x.ids), b.map((x) => x.ids));
  assert.deepEqual(a.map((x) => x.boxes), b.map((x) => x.boxes));
  assert.deepEqual(a.map((x) => x.ids.length), [2, 2, 1]);
  assert.deepEqual(a.flatMap((x) => x.ids).sort(), [1, 2, 3, 4, 5]);
  const other = await collect(batches(source, { ...opts, epoch: 1 }));
  assert.notDeepEqual(other.map((x) => x.ids), a.map((x) => x.ids));
  for (const batch of a) {
    assert.equal(batch.data.length, batch.shape.reduce((p, d) => p * d, 1));
    batch.imageSizes.forEach(([h, w], i) => {
      assert.ok([64, 96].includes(h) && h === w);
      const bx = batch.boxes[i]!;
      assert.equal(bx.length, 4 * batch.labels[i]!.length);
      for (let k = 0; k < bx.length; k += 4) assert.ok(bx[k]! >= 0 && bx[k + 2]! <= w + 1e-3);
    });
  }
  assert.equal((await collect(batches(source, { batchSize: 2, keepLast: false }))).length, 2);
});

test('datasetSource decodes images and drops crowd boxes', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'loader-'));
  try {
    const file = path.join(dir, 'a.png');
    await writeFile(file, await sharp(Buffer.alloc(8 * 6 * 3, 255), { raw: { width: 8, height: 6, channels: 3 } }).png().toBuffer());
    const ds: DetectionDataset = {
      classNames: ['a', 'b'],
      categoryIds: [1, 2],
      images: [{ id: 42, file, boxes: Float32Array.from([0, 0, 2, 2, 1, 1, 5, 5]), labels: Int32Array.from([1, 0]), crowd: Uint8Array.from([1, 0]), difficult: new Uint8Array(2) }],
    };
    const s = await datasetSource(ds).get(0);
    assert.equal(s.id, 42);
    assert.deepEqual([s.image.width, s.image.height], [8, 6]);
    assert.equal(s.image.data[0], 1);
    assert.deepEqual([...s.boxes], [1, 1, 5, 5]);
    assert.deepEqual([...s.labels], [0]);
    assert.equal((await datasetSource(ds, { keepCrowd: true }).get(0)).labels.length, 2);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
