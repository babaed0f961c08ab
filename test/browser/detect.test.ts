/**
 * The bundle in Chromium detects what the Node CLI detects: the same weights (a small model with
 * hash weights, saved as safetensors + sidecar), three real photos, every box within 0.5 px and
 * every score within 1e-3. The pixels are the same on both sides: the bundle decodes JPEG with
 * mozjpeg compiled to WebAssembly, and its decoded bytes hash equal to sharp's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadImage } from '../../src/io/image.js';
import { ROOT, SHARED_DATA, compareDetections, tinyHashModel } from '../export/helpers.js';
import { PIXEL_HASH_SOURCE, openBrowser, pixelHash, skipBrowser } from './helpers.js';

/** Three photos of different sizes: BCCD 640x480, COCO 640x426 (or the next), raccoon 2000x1333 portrait-ish. */
const PHOTOS = ['bccd/JPEGImages/BloodImage_00001.jpg', 'coco128/train2017/000000000009.jpg', 'raccoon/images/raccoon-183.jpg'].map((p) => path.join(SHARED_DATA, p));

interface CocoResult {
  image_id: number;
  category_id: number;
  bbox: number[];
  score: number;
}

const skip = skipBrowser() || (PHOTOS.every((p) => { try { readFileSync(p); return true; } catch { return false; } }) ? false : `photos of ${SHARED_DATA} not found: browser parity test skipped`);

test('bundle in Chromium: the same pixels and the same detections as the Node CLI on three photos', { skip, timeout: 600_000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'retinanet-browser-'));
  try {
    const model = tinyHashModel();
    await model.saveWeights(path.join(dir, 'model.safetensors'));
    writeFileSync(path.join(dir, 'blank.html'), '<!doctype html><meta charset="utf-8"><title>test</title>');
    // The Node CLI's detections.
    const out = path.join(dir, 'det.json');
    const cli = spawnSync(process.execPath, [path.join(ROOT, 'dist/src/cli/main.js'), 'detect', ...PHOTOS, '--weights', path.join(dir, 'model.safetensors'), '--out', out, '--threads', '1', '--quiet'], { encoding: 'utf8' });
    assert.equal(cli.status, 0, cli.stderr);
    const results = JSON.parse(readFileSync(out, 'utf8')) as CocoResult[];
    const images = JSON.parse(readFileSync(out.replace(/\.json$/, '.images.json'), 'utf8')) as { id: number; file_name: string }[];
    const nodeHashes = await Promise.all(PHOTOS.map(async (p) => pixelHash((await loadImage(p)).data)));

    const files: Record<string, string> = {};
    PHOTOS.forEach((p, i) => (files[`/photos/${i}.jpg`] = p));
    const session = await openBrowser({ folders: [{ prefix: '/fixture/', dir }], files, page: '/fixture/blank.html' });
    try {
      const browser = await session.page.evaluate(
        async ({ count, hashSource }) => {
          const hash = (0, eval)(`(${hashSource})`) as (d: Float32Array) => string;
          const lib = await import(new URL('/retinanet.js', location.href).href);
          const model = await lib.RetinaNet.fromWeights('/fixture/model.safetensors', { executionProvider: 'wasm' });
          const out = [];
          for (let i = 0; i < count; i++) {
            const blob = await (await fetch(`/photos/${i}.jpg`)).blob();
            const rgb = await lib.toRgbImage(blob);
            // Chromium's own decoder (an <img>), for the record.
            const img = new Image();
            img.src = `/photos/${i}.jpg`;
            await img.decode();
            const viaImg = await lib.toRgbImage(img);
            const det = await model.detect(blob);
            out.push({ hash: hash(rgb.data), imgHash: hash(viaImg.data), width: rgb.width, height: rgb.height, boxes: Array.from(det.boxes as Float32Array), scores: Array.from(det.scores as Float32Array), labels: Array.from(det.labels as Int32Array) });
          }
          return { out, backend: model.backend.description, isolated: crossOriginIsolated, categoryIds: model.model.categoryIds };
        },
        { count: PHOTOS.length, hashSource: PIXEL_HASH_SOURCE },
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n${session.log.join('\n')}`);
      });
      assert.equal(browser.isolated, true, 'the page is cross-origin isolated');
      console.log(`# backend in Chromium: ${browser.backend}`);
      for (const [i, photo] of PHOTOS.entries()) {
        const b = browser.out[i]!;
        assert.equal(b.hash, nodeHashes[i], `${path.basename(photo)}: the bundle's decoded pixels equal sharp's`);
        console.log(`# ${path.basename(photo)} ${b.width}x${b.height}: Chromium's own <img> decode ${b.imgHash === nodeHashes[i] ? 'equals' : 'differs from'} sharp's`);
        const id = images.find((im) => im.file_name === photo || path.basename(im.file_name) === path.basename(photo))!.id;
        const mine = results.filter((r) => r.image_id === id);
        const expected = {
          boxes: mine.flatMap((r) => [r.bbox[0]!, r.bbox[1]!, r.bbox[0]! + r.bbox[2]!, r.bbox[1]! + r.bbox[3]!]),
          scores: mine.map((r) => r.score),
          labels: mine.map((r) => r.category_id),
        };
        const actual = { boxes: b.boxes, scores: b.scores, labels: b.labels.map((l) => browser.categoryIds[l] ?? l) };
        assert.ok(expected.scores.length > 0, `${path.basename(photo)}: the CLI detects something (${expected.scores.length})`);
        const cmp = compareDetections(expected, actual, 0.5, 1e-3);
        console.log(`# ${path.basename(photo)}: ${cmp.matched}/${expected.scores.length} CLI detections matched (browser ${actual.scores.length}), max box error ${cmp.maxBoxError.toExponential(2)} px, max score error ${cmp.maxScoreError.toExponential(2)}`);
        assert.deepEqual(cmp.problems, [], path.basename(photo));
      }
    } finally {
      await session.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
