import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { decodeImage, ImageError, imageSize, loadImage, saveImage } from '../../src/io/image.js';

let dir = '';
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'img-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

// 3x2 RGB image: red, green, blue / white, black, grey
const rgb = Buffer.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 128, 128, 128]);

test('decodes PNG to CHW float in [0, 1] exactly', async () => {
  const png = await sharp(rgb, { raw: { width: 3, height: 2, channels: 3 } }).png().toBuffer();
  const im = await decodeImage(png);
  assert.equal(im.width, 3);
  assert.equal(im.height, 2);
  assert.deepEqual([...im.data.subarray(0, 6)].map((v) => Math.round(v * 255)), [255, 0, 0, 255, 0, 128]); // R plane
  assert.deepEqual([...im.data.subarray(6, 12)].map((v) => Math.round(v * 255)), [0, 255, 0, 255, 0, 128]); // G plane
  assert.equal(im.data[5], Math.fround(128 / 255));
});

test('grey and alpha inputs become RGB; WebP decodes', async () => {
  const grey = await sharp(Buffer.from([0, 100, 200, 255]), { raw: { width: 2, height: 2, channels: 1 } }).png().toBuffer();
  const g = await decodeImage(grey);
  assert.equal(g.data.length, 12);
  assert.deepEqual([...g.data.subarray(0, 4)], [...g.data.subarray(8, 12)]);
  assert.equal(Math.round(g.data[1]! * 255), 100);
  const rgba = await sharp(Buffer.from([10, 20, 30, 0, 40, 50, 60, 255]), { raw: { width: 2, height: 1, channels: 4 } }).png().toBuffer();
  const a = await decodeImage(rgba);
  assert.deepEqual([...a.data].map((v) => Math.round(v * 255)), [10, 40, 20, 50, 30, 60]);
  const webp = await sharp(rgb, { raw: { width: 3, height: 2, channels: 3 } }).webp({ lossless: true }).toBuffer();
  assert.deepEqual((await decodeImage(webp)).data, (await decodeImage(await sharp(rgb, { raw: { width: 3, height: 2, channels: 3 } }).png().toBuffer())).data);
});

test('EXIF orientation is applied to pixels and to imageSize', async () => {
  const file = path.join(dir, 'rot.jpg');
  // 4 wide x 2 high, stored with orientation 6 (rotate 90 clockwise to display)
  await sharp(Buffer.alloc(4 * 2 * 3, 200), { raw: { width: 4, height: 2, channels: 3 } })
    .jpeg()
    .withMetadata({ orientation: 6 })
    .toFile(file);
  const im = await loadImage(file);
  assert.deepEqual([im.width, im.height], [2, 4]);
  assert.deepEqual(await imageSize(file), { width: 2, height: 4 });
  const raw = await loadImage(file, { autoOrient: false });
  assert.deepEqual([raw.width, raw.height], [4, 2]);
  assert.deepEqual(await imageSize(file, { autoOrient: false }), { width: 4, height: 2 });
});

test('missing and corrupt files give errors naming the file', async () => {
  const missing = path.join(dir, 'nope.png');
  await assert.rejects(loadImage(missing), (err: Error) => err instanceof ImageError && err.message.includes(missing) && /no such file/.test(err.message));
  const bad = path.join(dir, 'bad.jpg');
  await writeFile(bad, Buffer.from('this is not a jpeg'));
  await assert.rejects(loadImage(bad), (err: Error) => err instanceof ImageError && err.message.includes(bad));
  await assert.rejects(imageSize(bad), (err: Error) => err instanceof ImageError && err.message.includes(bad));
  const png = await sharp(Buffer.alloc(64 * 64 * 3, 7), { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer();
  const cut = path.join(dir, 'cut.png');
  await writeFile(cut, png.subarray(0, png.length - 30));
  await assert.rejects(loadImage(cut), (err: Error) => err instanceof ImageError && err.message.includes(cut));
});

test('saveImage writes PNG losslessly', async () => {
  const png = await sharp(rgb, { raw: { width: 3, height: 2, channels: 3 } }).png().toBuffer();
  const im = await decodeImage(png);
  const out = path.join(dir, 'out.png');
  await saveImage(im, out);
  assert.deepEqual((await loadImage(out)).data, im.data);
});

const SHARED = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../shared/data');
const golden = JSON.parse(readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/data/decode_golden.json'), 'utf8')) as {
  file: string;
  width: number;
  height: number;
  channelSums: number[];
  weightedSum: number;
  firstRow: number[];
}[];

test('JPEG decoding is bit-identical to PIL (what torchvision pipelines use)', { skip: existsSync(SHARED) ? false : `shared datasets not found at ${SHARED}` }, async () => {
  for (const g of golden) {
    const im = await loadImage(path.join(SHARED, g.file));
    assert.deepEqual([im.width, im.height], [g.width, g.height]);
    const plane = im.width * im.height;
    const sums = [0, 0, 0];
    let weighted = 0;
    for (let p = 0; p < plane; p++) {
      for (let c = 0; c < 3; c++) {
        const v = Math.round(im.data[c * plane + p]! * 255);
        sums[c] += v;
        weighted += v * ((3 * p + c) % 251);
      }
    }
    assert.deepEqual(sums, g.channelSums, g.file);
    assert.equal(weighted, g.weightedSum, g.file);
  }
});
