/**
 * The browser side's JPEG decoder (mozjpeg compiled to WebAssembly, src/platform/image.browser.ts)
 * gives sharp's pixels bit for bit (the Node side, src/platform/image.ts) on real photos of
 * ../shared/data, with EXIF orientation applied or not; the header reader agrees on sizes.
 * Run here in Node, where both decoders load; test/browser/detect.test.ts checks it in Chromium.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { images as browserImages, useDecoderModules } from '../../src/platform/image.browser.js';
import { images as nodeImages } from '../../src/platform/image.js';
import { ROOT, SHARED_DATA } from '../export/helpers.js';

/** Up to `n` JPEGs of each shared dataset folder. */
function photos(n: number): string[] {
  const dirs = ['bccd/JPEGImages', 'coco128/train2017', 'raccoon/images', 'voc100/images'];
  return dirs.flatMap((d) => {
    const dir = path.join(SHARED_DATA, d);
    if (!existsSync(dir)) return [];
    return readdirSync(dir).filter((f) => /\.jpe?g$/i.test(f)).sort().slice(0, n).map((f) => path.join(dir, f));
  });
}

const files = photos(10);

test('mozjpeg in WebAssembly decodes real photos to sharp\'s bytes exactly', { skip: files.length === 0 ? `no photos in ${SHARED_DATA}` : false }, async () => {
  useDecoderModules({ jpeg: await WebAssembly.compile(readFileSync(path.join(ROOT, 'node_modules/@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm'))) });
  let pixels = 0;
  for (const file of files) {
    const bytes = new Uint8Array(readFileSync(file));
    for (const autoOrient of [true, false]) {
      const a = await nodeImages.decode(bytes, { maxPixels: 1e8, autoOrient });
      const b = await browserImages.decode(bytes, { maxPixels: 1e8, autoOrient });
      assert.deepEqual([b.width, b.height], [a.width, a.height], `${file}: size`);
      let diff = 0;
      for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) diff++;
      assert.equal(diff, 0, `${path.relative(SHARED_DATA, file)} (autoOrient ${autoOrient}): ${diff} of ${a.data.length} bytes differ`);
      pixels += a.width * a.height;
    }
    const h = await browserImages.header(bytes);
    const n = await nodeImages.header(bytes);
    assert.deepEqual([h.width, h.height, h.orientation ?? 1], [n.width, n.height, n.orientation ?? 1], `${file}: header`);
  }
  console.log(`# ${files.length} photos, ${(pixels / 2e6).toFixed(1)} Mpixel each way: identical`);
});
