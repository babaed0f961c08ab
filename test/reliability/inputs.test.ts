/**
 * Images that break runs, found before a run (`data check` decodes every image) or refused
 * with a clear message when read (a decompression bomb), and skipped by detect and eval.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { ImageError, loadImage } from '../../src/io/image.js';
import { writeSyntheticCoco } from '../../src/data/synthetic.js';
import { duplicateNames } from '../../src/data/check.js';
import type { DatasetImage } from '../../src/data/types.js';
import { STACK_LINE, cli, tinyModel } from '../cli/helpers.js';

let dir = '';
let data = '';

/** A PNG that declares `width` x `height` pixels with a tiny (truncated) payload. */
function pngBomb(width: number, height: number): Buffer {
  const chunk = (type: string, body: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length);
    return Buffer.concat([len, Buffer.from(type, 'latin1'), body, Buffer.alloc(4)]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(1024))), chunk('IEND', Buffer.alloc(0))]);
}

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'rn-inputs-'));
  data = path.join(dir, 'data');
  await writeSyntheticCoco(data, { count: 4, imageSize: 64, seed: 3 });
  const img = (n: number): string => path.join(data, 'train', `00000${n}.png`);
  // Image 2 is truncated.
  const bytes = readFileSync(img(2));
  writeFileSync(img(2), bytes.subarray(0, Math.floor(bytes.length * 0.4)));
  // A photo stored 64 wide x 48 high with EXIF orientation 6 (shown rotated: 48 x 64), annotated
  // by a tool that ignored the rotation (64 x 48).
  const rotated = await sharp({ create: { width: 64, height: 48, channels: 3, background: 'gray' } }).jpeg().withMetadata({ orientation: 6 }).toBuffer();
  writeFileSync(path.join(data, 'train', '000003.jpg'), rotated);
  const ann = path.join(data, 'annotations', 'instances_train.json');
  const coco = JSON.parse(readFileSync(ann, 'utf8')) as { images: { id: number; file_name: string; width: number; height: number }[] };
  Object.assign(coco.images.find((im) => im.id === 3)!, { file_name: '000003.jpg', width: 64, height: 48 });
  writeFileSync(ann, JSON.stringify(coco));
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('data check decodes every image: a truncated file and an EXIF-rotated size that differs from the annotation are problems (exit 1)', () => {
  const r = cli('data', 'check', data);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stdout, /000002\.png: cannot decode image .*; training would skip it/);
  // (The header check finds the EXIF size mismatch before decoding.)
  assert.match(r.stdout, /annotation says 64x48 but .*000003\.jpg is 48x64/);
  const fast = cli('data', 'check', data, '--no-decode');
  assert.doesNotMatch(fast.stdout, /cannot decode/);
});

test('a decompression bomb is refused from its header, with the pixel limit in the message', async () => {
  const bomb = path.join(dir, 'bomb.png');
  writeFileSync(bomb, pngBomb(100000, 100000));
  await assert.rejects(loadImage(bomb), (e: unknown) => e instanceof ImageError && /100000 x 100000 pixels \(10000 MP\), over the limit of 100 MP/.test(e.message));
  // The limit is a flag; detect skips the image with the reason and goes on.
  const small = path.join(dir, 'small.png');
  copyFileSync(path.join(data, 'train', '000001.png'), small);
  const weights = await tinyModel(dir);
  const r = cli('detect', small, bomb, '--weights', weights, '--max-pixels', '4000', '--out', path.join(dir, 'd.json'));
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /small\.png is 64 x 64 pixels \(0\.0041 MP\), over the limit of 0\.004 MP.*skipped/);
  assert.match(r.stderr, /bomb\.png is 100000 x 100000 pixels.*skipped/);
  assert.doesNotMatch(r.stderr, STACK_LINE);
});

test('duplicated image file names are reported', () => {
  const im = (file: string): DatasetImage => ({ id: 1, file, boxes: new Float32Array(), labels: new Int32Array(), crowd: new Uint8Array(), difficult: new Uint8Array() });
  const problems = duplicateNames({ classNames: ['a'], categoryIds: [1], images: [im('/a/x.jpg'), im('/b/x.jpg'), im('/a/y.jpg'), im('/a/y.jpg')] });
  assert.equal(problems.length, 2);
  assert.match(problems[0]!.message, /file name x\.jpg is used by 2 images/);
  assert.match(problems[1]!.message, /listed 2 times/);
});
