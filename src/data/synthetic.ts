import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { chwToHwcBytes } from '../io/image.js';
import { Rng } from '../core/random.js';
import { xyxyToCocoBox } from '../eval/types.js';
import type { RgbImage } from './types.js';

/**
 * Seeded synthetic detection data: solid-coloured shapes (circle, square, triangle, cross) of
 * widely varying size (log-uniform, so many are small) on noisy, textured, low-saturation
 * backgrounds. Shapes are axis-aligned and never overlap much, so every box is unambiguous;
 * colour varies freely so the class has to be read from the outline. The project's demo training
 * run uses it as its built-in dataset.
 */

/** Class names, in label order. */
export const SYNTHETIC_CLASSES: readonly string[] = ['circle', 'square', 'triangle', 'cross'];

/** Options of the generator; all sizes in pixels. */
export interface SyntheticOptions {
  /** Number of images (default 200). */
  count?: number;
  /** Seed; image `i` depends only on (seed, i), not on `count` (default 0). */
  seed?: number;
  /** Image width and height (default 256). */
  imageSize?: number;
  /** Objects per image, inclusive range (default 2..6). */
  minObjects?: number;
  maxObjects?: number;
  /** Side length of the shapes' boxes, drawn log-uniformly (default 8..150). */
  minObjectSize?: number;
  maxObjectSize?: number;
  /**
   * Distractors per image, inclusive range (default 0..0): unlabelled shapes that are not one of
   * the classes — a ring, a hollow square, a diagonal cross, a bar, a diamond — in the shapes'
   * colours and sizes, placed clear of the objects. They make some background locations hard
   * negatives. With the default of none, images are exactly those of earlier versions.
   */
  minDistractors?: number;
  maxDistractors?: number;
}

/** Names of the distractor shapes, in their drawing order (`distractorCoverage` kinds). */
export const DISTRACTOR_KINDS: readonly string[] = ['ring', 'frame', 'saltire', 'bar', 'diamond'];

/** One generated image with its boxes (flat xyxy, pixels) and labels (indices into {@link SYNTHETIC_CLASSES}). */
export interface SyntheticSample {
  id: number;
  image: RgbImage;
  boxes: Float32Array;
  labels: Int32Array;
}

const SQRT5 = Math.sqrt(5);

function hsvToRgb(h: number, s: number, v: number): [number, number, number] {
  const k = (n: number) => (n + h * 6) % 6;
  const f = (n: number) => v - v * s * Math.max(0, Math.min(k(n), 4 - k(n), 1));
  return [f(5), f(3), f(1)];
}

/** Low-frequency noise in [-1, 1]: a random `cells x cells` grid, bilinearly upsampled. */
function valueNoise(rng: Rng, size: number, cells: number): Float32Array {
  const g = cells + 1;
  const grid = Float32Array.from({ length: g * g }, () => rng.uniform(-1, 1));
  const out = new Float32Array(size * size);
  const step = cells / size;
  for (let y = 0; y < size; y++) {
    const gy = y * step;
    const y0 = Math.floor(gy);
    const ty = gy - y0;
    for (let x = 0; x < size; x++) {
      const gx = x * step;
      const x0 = Math.floor(gx);
      const tx = gx - x0;
      const a = grid[y0 * g + x0]! * (1 - tx) + grid[y0 * g + x0 + 1]! * tx;
      const b = grid[(y0 + 1) * g + x0]! * (1 - tx) + grid[(y0 + 1) * g + x0 + 1]! * tx;
      out[y * size + x] = a * (1 - ty) + b * ty;
    }
  }
  return out;
}

function background(rng: Rng, size: number): Float32Array {
  const plane = size * size;
  const data = new Float32Array(3 * plane);
  // Muted base colour (low saturation) so the saturated shapes stand out, plus two scales of texture.
  const base = hsvToRgb(rng.next(), rng.uniform(0, 0.3), rng.uniform(0.25, 0.75));
  const coarse = valueNoise(rng, size, rng.intRange(2, 5));
  const fine = valueNoise(rng, size, rng.intRange(12, 32));
  const coarseAmp = rng.uniform(0.05, 0.15);
  const fineAmp = rng.uniform(0.02, 0.08);
  const grain = rng.uniform(0.01, 0.04);
  for (let c = 0; c < 3; c++) {
    const tint = rng.uniform(0.8, 1.2);
    for (let i = 0; i < plane; i++) {
      data[c * plane + i] = base[c]! + tint * (coarseAmp * coarse[i]! + fineAmp * fine[i]!) + grain * rng.normal();
    }
  }
  return data;
}

/**
 * Coverage (0..1) of pixel centre (px, py) by the shape of `kind` inscribed in box (x1, y1, s):
 * a signed distance in pixels, clamped to a one-pixel ramp, gives cheap anti-aliasing.
 */
function coverage(kind: number, px: number, py: number, x1: number, y1: number, s: number): number {
  const u = px - x1;
  const v = py - y1;
  let d: number; // positive inside, pixels
  switch (kind) {
    case 0: {
      const r = s / 2;
      d = r - Math.hypot(u - r, v - r);
      break;
    }
    case 1:
      d = Math.min(u, v, s - u, s - v);
      break;
    case 2:
      // Isosceles triangle: apex at the top centre, base along the bottom edge of the box.
      d = Math.min(s - v, (2 * u + v - s) / SQRT5, (s + v - 2 * u) / SQRT5);
      break;
    default: {
      // Plus sign, arms one third of the box thick.
      const t = s / 3;
      const inH = Math.min(u, s - u, v - t, 2 * t - v);
      const inV = Math.min(v, s - v, u - t, 2 * t - u);
      d = Math.max(inH, inV);
    }
  }
  return Math.min(Math.max(d + 0.5, 0), 1);
}

/**
 * Coverage of a distractor of `kind` (index into DISTRACTOR_KINDS) in box (x1, y1, w, h); the
 * same one-pixel ramp as `coverage`. Each resembles a class in part: the ring a circle, the
 * frame a square, the saltire (a diagonal cross) the cross, the bar and the diamond a square.
 */
function distractorCoverage(kind: number, px: number, py: number, x1: number, y1: number, w: number, h: number): number {
  const u = px - x1;
  const v = py - y1;
  const s = Math.min(w, h);
  let d: number;
  switch (kind) {
    case 0: {
      // Ring: a circle with a hole of half its radius.
      const r = s / 2;
      const dist = Math.hypot(u - r, v - r);
      d = Math.min(r - dist, dist - r / 2);
      break;
    }
    case 1: {
      // Frame: a square outline, a sixth of the side thick.
      const t = Math.max(1.5, s / 6);
      const outer = Math.min(u, v, s - u, s - v);
      d = Math.min(outer, t - outer);
      break;
    }
    case 2: {
      // Saltire: the two diagonals, a sixth of the side thick, clipped to the box.
      const t = Math.max(1.5, s / 6);
      const a = Math.abs(u - v) / Math.SQRT2;
      const b = Math.abs(u + v - s) / Math.SQRT2;
      d = Math.min(t / 2 - Math.min(a, b), u, v, s - u, s - v);
      break;
    }
    case 3:
      // Bar: a filled rectangle of the box's (elongated) shape.
      d = Math.min(u, v, w - u, h - v);
      break;
    default:
      // Diamond: a square turned 45 degrees, inscribed in the box.
      d = (s / 2 - (Math.abs(u - s / 2) + Math.abs(v - s / 2))) / Math.SQRT2;
  }
  return Math.min(Math.max(d + 0.5, 0), 1);
}

function overlaps(boxes: number[], x1: number, y1: number, s: number): boolean {
  const gap = 2;
  for (let i = 0; i < boxes.length; i += 4) {
    if (x1 < boxes[i + 2]! + gap && x1 + s + gap > boxes[i]! && y1 < boxes[i + 3]! + gap && y1 + s + gap > boxes[i + 1]!) return true;
  }
  return false;
}

/** Generates image `index` of the dataset defined by `options` (deterministic). */
export function syntheticSample(index: number, options: SyntheticOptions = {}): SyntheticSample {
  const size = options.imageSize ?? 256;
  const minS = options.minObjectSize ?? 8;
  // Leave room for the other shapes next to the largest one.
  const maxS = Math.min(options.maxObjectSize ?? 150, Math.floor(0.6 * size));
  // Mix seed and index so neighbouring seeds/images do not share streams.
  const rng = new Rng(Math.imul((options.seed ?? 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35));
  const data = background(rng, size);
  const plane = size * size;
  const n = rng.intRange(options.minObjects ?? 2, options.maxObjects ?? 6);
  const boxes: number[] = [];
  const labels: number[] = [];
  for (let k = 0; k < n; k++) {
    let placed = false;
    let s = Math.round(Math.exp(rng.uniform(Math.log(minS), Math.log(maxS))));
    for (let attempt = 1; attempt <= 60 && !placed; attempt++) {
      // A crowded image may have no room left for a big shape: shrink it after every 10 misses.
      if (attempt % 10 === 0) s = Math.max(minS, Math.round(s / 2));
      const x1 = rng.intRange(0, size - s);
      const y1 = rng.intRange(0, size - s);
      if (overlaps(boxes, x1, y1, s)) continue;
      const kind = rng.int(SYNTHETIC_CLASSES.length);
      const colour = hsvToRgb(rng.next(), rng.uniform(0.6, 1), rng.uniform(0.55, 1));
      // Dark backgrounds get bright shapes and the other way round: keep contrast for small shapes.
      const bgLum = (data[(y1 + (s >> 1)) * size + x1 + (s >> 1)]! + data[plane + (y1 + (s >> 1)) * size + x1 + (s >> 1)]!) / 2;
      const scale = bgLum > 0.55 ? 0.45 : 1;
      for (let y = y1; y < y1 + s; y++) {
        for (let x = x1; x < x1 + s; x++) {
          const a = coverage(kind, x + 0.5, y + 0.5, x1, y1, s);
          if (a <= 0) continue;
          const p = y * size + x;
          for (let c = 0; c < 3; c++) data[c * plane + p] = (1 - a) * data[c * plane + p]! + a * colour[c]! * scale;
        }
      }
      boxes.push(x1, y1, x1 + s, y1 + s);
      labels.push(kind);
      placed = true;
    }
  }
  const maxD = options.maxDistractors ?? 0;
  // Drawn only when asked for, after the objects: without distractors the random stream (and
  // so every image) is that of a generator without them.
  if (maxD > 0) drawDistractors(rng, data, size, boxes, rng.intRange(options.minDistractors ?? 0, maxD), minS, maxS);
  for (let i = 0; i < data.length; i++) data[i] = Math.min(Math.max(data[i]! + 0.015 * rng.normal(), 0), 1);
  return { id: index + 1, image: { data, width: size, height: size }, boxes: Float32Array.from(boxes), labels: Int32Array.from(labels) };
}

/** Draws `count` distractors clear of the objects' boxes (and of each other) into `data`. */
function drawDistractors(rng: Rng, data: Float32Array, size: number, objects: readonly number[], count: number, minS: number, maxS: number): void {
  const plane = size * size;
  const taken = [...objects];
  for (let k = 0; k < count; k++) {
    const kind = rng.int(DISTRACTOR_KINDS.length);
    let s = Math.round(Math.exp(rng.uniform(Math.log(minS), Math.log(maxS))));
    // A bar is 2.5-4 times longer than it is wide, lying or standing.
    const elong = kind === 3 ? rng.uniform(2.5, 4) : 1;
    const lying = rng.bernoulli(0.5);
    for (let attempt = 1; attempt <= 30; attempt++) {
      if (attempt % 10 === 0) s = Math.max(minS, Math.round(s / 2));
      const long = Math.min(size, Math.round(s * elong));
      const w = lying ? long : s;
      const h = lying ? s : long;
      const x1 = rng.intRange(0, size - w);
      const y1 = rng.intRange(0, size - h);
      if (overlapsRect(taken, x1, y1, w, h)) continue;
      const colour = hsvToRgb(rng.next(), rng.uniform(0.6, 1), rng.uniform(0.55, 1));
      const bgLum = (data[(y1 + (h >> 1)) * size + x1 + (w >> 1)]! + data[plane + (y1 + (h >> 1)) * size + x1 + (w >> 1)]!) / 2;
      const scale = bgLum > 0.55 ? 0.45 : 1;
      for (let y = y1; y < y1 + h; y++) {
        for (let x = x1; x < x1 + w; x++) {
          const a = distractorCoverage(kind, x + 0.5, y + 0.5, x1, y1, w, h);
          if (a <= 0) continue;
          const p = y * size + x;
          for (let c = 0; c < 3; c++) data[c * plane + p] = (1 - a) * data[c * plane + p]! + a * colour[c]! * scale;
        }
      }
      taken.push(x1, y1, x1 + w, y1 + h);
      break;
    }
  }
}

function overlapsRect(boxes: readonly number[], x1: number, y1: number, w: number, h: number): boolean {
  const gap = 2;
  for (let i = 0; i < boxes.length; i += 4) {
    if (x1 < boxes[i + 2]! + gap && x1 + w + gap > boxes[i]! && y1 < boxes[i + 3]! + gap && y1 + h + gap > boxes[i + 1]!) return true;
  }
  return false;
}

/** Generates `options.count` samples in memory. */
export function generateSynthetic(options: SyntheticOptions = {}): SyntheticSample[] {
  return Array.from({ length: options.count ?? 200 }, (_, i) => syntheticSample(i, options));
}

/**
 * Writes the samples as PNGs to `<dir>/<split>/` and COCO JSON to `<dir>/annotations/instances_<split>.json`
 * (category ids 1..4), the layout {@link loadDataset} reads from `<dir>`. Returns the JSON path.
 */
export async function writeSyntheticCoco(dir: string, options: SyntheticOptions = {}, split = 'train'): Promise<string> {
  const imagesDir = path.join(dir, split);
  await mkdir(imagesDir, { recursive: true });
  await mkdir(path.join(dir, 'annotations'), { recursive: true });
  const images: object[] = [];
  const annotations: object[] = [];
  const count = options.count ?? 200;
  for (let i = 0; i < count; i++) {
    const s = syntheticSample(i, options);
    const fileName = `${String(s.id).padStart(6, '0')}.png`;
    const { width, height } = s.image;
    await sharp(chwToHwcBytes(s.image), { raw: { width, height, channels: 3 } }).png().toFile(path.join(imagesDir, fileName));
    images.push({ id: s.id, file_name: fileName, width, height });
    for (let k = 0; k < s.labels.length; k++) {
      const bbox = xyxyToCocoBox(s.boxes, k);
      annotations.push({ id: annotations.length + 1, image_id: s.id, category_id: s.labels[k]! + 1, bbox, area: bbox[2] * bbox[3], iscrowd: 0 });
    }
  }
  const categories = SYNTHETIC_CLASSES.map((name, i) => ({ id: i + 1, name, supercategory: 'shape' }));
  const json = path.join(dir, 'annotations', `instances_${split}.json`);
  await writeFile(json, JSON.stringify({ info: { description: 'retinanet-ts synthetic shapes', seed: options.seed ?? 0 }, images, annotations, categories }));
  return json;
}
