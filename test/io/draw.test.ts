import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { detectionsSvg, drawDetections, renderDetections } from '../../src/io/draw.js';
import type { RgbImage } from '../../src/data/types.js';

const black: RgbImage = { data: new Float32Array(3 * 48 * 64), width: 64, height: 48 };
const drawn = { boxes: Float32Array.from([10, 20, 40, 40, 0, 0, 5, 5]), labels: Int32Array.from([0, 1]), scores: Float32Array.from([0.9, 0.1]) };

test('detectionsSvg escapes names, filters by score', () => {
  const svg = detectionsSvg(64, 48, drawn, { classNames: ['<cat>', 'dog'], minScore: 0.5 });
  assert.match(svg, /&#60;cat&#62; 0\.90/);
  assert.doesNotMatch(svg, /dog/);
});

test('renderDetections draws box outlines on the image, PNG and JPEG', async () => {
  const png = await renderDetections(black, drawn, 'x.png', { classNames: ['cat', 'dog'] });
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([info.width, info.height], [64, 48]);
  const at = (x: number, y: number) => [...data.subarray((y * 64 + x) * info.channels, (y * 64 + x) * info.channels + 3)];
  assert.ok(at(25, 40).some((v) => v > 100), 'bottom edge of box 0 is coloured');
  assert.deepEqual(at(25, 30), [0, 0, 0], 'inside of the box untouched');
  const dir = await mkdtemp(path.join(tmpdir(), 'draw-'));
  try {
    const file = path.join(dir, 'out.jpg');
    await drawDetections(black, drawn, file);
    const bytes = await readFile(file);
    assert.deepEqual([...bytes.subarray(0, 2)], [0xff, 0xd8]);
    const fromFile = path.join(dir, 'again.png');
    await drawDetections(file, drawn, fromFile);
    assert.equal((await sharp(fromFile).metadata()).width, 64);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
