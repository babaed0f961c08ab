import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { renderGrid, writeGrid } from '../../src/io/grid.js';
import type { RgbImage } from '../../src/io/image.js';

function grey(width: number, height: number): RgbImage {
  return { width, height, data: new Float32Array(3 * width * height).fill(128 / 255) };
}

test('renderGrid lays tiles out in rows, scales images and their boxes to the tile, pads with white', async () => {
  const tiles = [
    // 200x150 scales x2 into the 400x300 tile: the box edge at x = 10 lands at 20.
    { image: grey(200, 150), drawn: { boxes: Float32Array.of(10, 10, 60, 60), labels: Int32Array.of(0), colors: ['#ff0000'] }, options: { classNames: ['a'] } },
    // 100x100 fits as 300x300, centred: 50 px of white either side.
    { image: grey(100, 100), drawn: { boxes: Float32Array.of(50, 10, 90, 40), labels: Int32Array.of(0), colors: ['#00ff00'] }, options: { caption: 'caption' } },
    { image: grey(50, 50), drawn: { boxes: new Float32Array(0), labels: new Int32Array(0) } },
  ];
  const png = await renderGrid(tiles, 'grid.png', { columns: 2 });
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([info.width, info.height], [2 * 400 + 3 * 6, 2 * 300 + 3 * 6]);
  const px = (x: number, y: number): number[] => [...data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3)];
  const gap = 6;
  // Tile 1: the red box's left edge at 2 * 10 = 20, halfway down at 2 * 35 = 70; grey beside it.
  assert.deepEqual(px(gap + 20, gap + 70), [255, 0, 0]);
  assert.deepEqual(px(gap + 40, gap + 70), [128, 128, 128]);
  // Tile 2 starts at x = 2 * gap + 400: white padding, then the image from x + 50, its box at 3 * 50.
  const x2 = 2 * gap + 400;
  assert.deepEqual(px(x2 + 10, gap + 150), [255, 255, 255]);
  assert.deepEqual(px(x2 + 50 + 150, gap + 3 * 25), [0, 255, 0]);
  // Its caption bar darkens the bottom-left corner of the image.
  assert.ok(px(x2 + 52, gap + 296)[0]! < 100);
  // Tile 3 on the second row, the white gap above it.
  assert.deepEqual(px(gap + 200, gap + 300 + 3), [255, 255, 255]);
  assert.deepEqual(px(gap + 200, 2 * gap + 300 + 150), [128, 128, 128]);

  const dir = mkdtempSync(path.join(os.tmpdir(), 'rn-grid-'));
  try {
    await writeGrid(tiles, path.join(dir, 'g.jpg'));
    const meta = await sharp(path.join(dir, 'g.jpg')).metadata();
    assert.equal(meta.format, 'jpeg');
    assert.deepEqual([meta.width, meta.height], [3 * 400 + 4 * 6, 300 + 2 * 6]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
