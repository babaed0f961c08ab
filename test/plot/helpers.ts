/** A small seeded detection "run" (ground truth + imperfect detections) and checks of rendered figures. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { Rng } from '../../src/core/random.js';
import type { CocoAnnotation, CocoDataset, CocoResult } from '../../src/eval/types.js';

/**
 * 40 images of 320x240 with 1-6 boxes of 4 classes (cat and dog share the supercategory
 * 'animal'); detections find most boxes with jittered corners, confuse some cats and dogs, miss
 * some boxes and add background false positives. Scores are higher for the good detections.
 */
export function smallRun(seed = 0): { gt: CocoDataset; dets: CocoResult[] } {
  const rng = new Rng(seed);
  const categories = [
    { id: 1, name: 'cat', supercategory: 'animal' },
    { id: 2, name: 'dog', supercategory: 'animal' },
    { id: 3, name: 'car', supercategory: 'vehicle' },
    { id: 4, name: 'bike', supercategory: 'vehicle' },
  ];
  const images = Array.from({ length: 40 }, (_, i) => ({ id: i + 1, width: 320, height: 240, file_name: `im${i + 1}.png` }));
  const annotations: CocoAnnotation[] = [];
  const dets: CocoResult[] = [];
  for (const im of images) {
    const n = 1 + rng.int(6);
    for (let j = 0; j < n; j++) {
      const w = 12 + rng.uniform(0, 120), h = 12 + rng.uniform(0, 100);
      const x = rng.uniform(0, 320 - w), y = rng.uniform(0, 240 - h);
      const cat = 1 + rng.int(4);
      annotations.push({ id: annotations.length + 1, image_id: im.id, category_id: cat, bbox: [x, y, w, h], area: w * h, iscrowd: 0 });
      const u = rng.next();
      if (u < 0.12) continue; // missed
      const jit = u < 0.3 ? 0.35 : 0.06; // some poorly localised
      const label = cat <= 2 && rng.bernoulli(0.15) ? 3 - cat : cat; // cat <-> dog confusions
      const bbox = [x + rng.uniform(-jit, jit) * w, y + rng.uniform(-jit, jit) * h, w * (1 + rng.uniform(-jit, jit)), h * (1 + rng.uniform(-jit, jit))];
      dets.push({ image_id: im.id, category_id: label, bbox, score: Math.min(0.99, (u < 0.3 ? 0.35 : 0.6) + rng.uniform(0, 0.4)) });
    }
    for (let j = 0; j < rng.int(3); j++) {
      const w = 10 + rng.uniform(0, 60), h = 10 + rng.uniform(0, 60);
      dets.push({ image_id: im.id, category_id: 1 + rng.int(4), bbox: [rng.uniform(0, 320 - w), rng.uniform(0, 240 - h), w, h], score: rng.uniform(0.05, 0.6) });
    }
  }
  return { gt: { images, categories, annotations }, dets };
}

/** Asserts that `dir/file` is a PNG of sensible size and returns its width and height. */
export async function assertPng(dir: string, file: string, min = { width: 200, height: 150 }): Promise<{ width: number; height: number }> {
  const meta = await sharp(path.join(dir, file)).metadata();
  assert.equal(meta.format, 'png', file);
  assert.ok(meta.width! >= min.width && meta.height! >= min.height, `${file}: ${meta.width}x${meta.height}`);
  // Not a blank page: a rendered chart has dark pixels (axes, text).
  const { channels } = await sharp(path.join(dir, file)).stats();
  assert.ok(channels[0]!.min < 100, `${file} looks blank`);
  return { width: meta.width!, height: meta.height! };
}

/** The text of an SVG figure, checked to be one standalone SVG document. */
export function readSvg(dir: string, file: string): string {
  const svg = readFileSync(path.join(dir, file), 'utf8');
  assert.match(svg, /^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/, file);
  assert.match(svg, /<\/svg>\s*$/, file);
  return svg;
}

/** Asserts that each label appears as text in the SVG (legend entries, axis titles). */
export function assertLabels(svg: string, labels: readonly string[], what: string): void {
  for (const l of labels) assert.ok(svg.includes(`>${escapeXml(l)}</text>`), `${what}: no text '${l}'`);
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
