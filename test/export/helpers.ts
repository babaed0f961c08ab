/**
 * Fixtures of the export tests: a small model with deterministic weights that detects things
 * (hash weights give scores around 0.1, above the 0.05 threshold, unlike a fresh initialisation),
 * test images of several sizes and aspect ratios, and a tolerant comparison of detections.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configFor } from '../../src/model/config.js';
import { RetinaNet } from '../../src/model/model.js';
import { hashUniform, hashWeight } from '../../src/nn/hash_init.js';
import { demoConfig } from '../../src/train/demo_config.js';
import { loadImage, type RgbImage } from '../../src/io/image.js';

/** The repository root (tests run from dist/test/...). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** The shared datasets beside the checkout. */
export const SHARED_DATA = path.resolve(ROOT, '../shared/data');

/**
 * The demo architecture (ResNet-18 at width 32, 64-channel FPN, GroupNorm heads, 4 classes)
 * resized to a short side of 96 and a long side of at most 128, with hash weights.
 */
export function tinyHashModel(inference: { scoreThresh?: number; detectionsPerImg?: number } = {}): RetinaNet {
  const base = demoConfig(96);
  const cfg = configFor('retinanet_resnet18_fpn_small', {
    ...base,
    name: base.name,
    transform: { minSize: 96, maxSize: 128 },
    inference,
  });
  const model = new RetinaNet(cfg, 0);
  for (const [name, info] of model.store.info) model.store.values.set(name, hashWeight(name, info.shape));
  model.categoryIds = [1, 2, 3, 4];
  return model;
}

/** A deterministic RGB image of `height` x `width` (values on the uint8 grid, as decoded images are). */
export function hashImage(height: number, width: number, seed: string): RgbImage {
  const u = hashUniform(seed, 3 * height * width);
  const data = Float32Array.from(u, (v) => Math.floor(v * 256) / 255);
  // A bright rectangle so that something stands out.
  for (let c = 0; c < 3; c++) {
    for (let y = height >> 2; y < (3 * height) >> 2; y++) data.fill(c === 0 ? 1 : 0.2, (c * height + y) * width + (width >> 3), (c * height + y) * width + ((5 * width) >> 3));
  }
  return { data, height, width };
}

/**
 * Generated images whose sizes exercise the resize: 4:3 (both bounds hit at once), 4:1 and 1:3
 * (the long side limit decides), smaller than the model's size (upscaled), exactly its size.
 */
export const GENERATED_SIZES: readonly [number, number][] = [
  [120, 160],
  [100, 400],
  [300, 90],
  [37, 53],
  [96, 128],
];

/**
 * Real photos from ../shared/data, or undefined when it is absent: 640x480 (BCCD), COCO's
 * 640x480 / 640x426 / 427x640, and from the raccoon set 577x1024 (portrait), 2000x1333,
 * 1280x720 (16:9, the long side decides) and a grayscale JPEG.
 */
export async function realImages(limit = 8): Promise<{ name: string; image: RgbImage }[] | undefined> {
  const pick = (dir: string, names: string[]): string[] => names.map((n) => path.join(SHARED_DATA, dir, n)).filter((p) => existsSync(p));
  if (!existsSync(SHARED_DATA)) return undefined;
  const files: string[] = [];
  files.push(...pick('bccd/JPEGImages', ['BloodImage_00001.jpg']));
  const coco = path.join(SHARED_DATA, 'coco128/train2017');
  if (existsSync(coco)) files.push(...readdirSync(coco).sort().slice(0, 3).map((f) => path.join(coco, f)));
  const raccoon = path.join(SHARED_DATA, 'raccoon/images');
  if (existsSync(raccoon)) files.push(...['raccoon-42.jpg', 'raccoon-183.jpg', 'raccoon-197.jpg', 'raccoon-150.jpg'].map((f) => path.join(raccoon, f)).filter((p) => existsSync(p)));
  if (files.length === 0) return undefined;
  const out: { name: string; image: RgbImage }[] = [];
  for (const f of files.slice(0, limit)) out.push({ name: path.basename(f), image: await loadImage(f) });
  return out;
}

/** Detections as the tests compare them (labels may be int64). */
export interface DetectionList {
  boxes: ArrayLike<number>;
  scores: ArrayLike<number>;
  labels: ArrayLike<number | bigint>;
}

export interface Comparison {
  /** Detections matched. */
  matched: number;
  maxBoxError: number;
  maxScoreError: number;
  /** What did not match, one line each (empty when the lists agree). */
  problems: string[];
}

/**
 * Matches `actual` to `expected` detection by detection: same label, every coordinate within
 * `boxTol` px, score within `scoreTol`. Order is not compared (equal scores may come in either
 * order). A detection without a partner is a problem unless its score lies within `scoreTol` of
 * the lowest score either list kept (the cut at detectionsPerImg or the threshold, where a
 * rounding difference may let a different candidate in).
 */
export function compareDetections(expected: DetectionList, actual: DetectionList, boxTol: number, scoreTol: number): Comparison {
  const ne = expected.scores.length;
  const na = actual.scores.length;
  const used = new Uint8Array(na);
  const problems: string[] = [];
  let maxBoxError = 0;
  let maxScoreError = 0;
  let matched = 0;
  let cut = Infinity;
  for (let i = 0; i < ne; i++) cut = Math.min(cut, expected.scores[i]!);
  for (let j = 0; j < na; j++) cut = Math.min(cut, actual.scores[j]!);
  const boxErr = (i: number, j: number): number => Math.max(...[0, 1, 2, 3].map((c) => Math.abs(expected.boxes[4 * i + c]! - actual.boxes[4 * j + c]!)));
  for (let i = 0; i < ne; i++) {
    let best = -1;
    let bestErr = Infinity;
    for (let j = 0; j < na; j++) {
      if (used[j] || Number(actual.labels[j]) !== Number(expected.labels[i]) || Math.abs(actual.scores[j]! - expected.scores[i]!) > scoreTol) continue;
      const e = boxErr(i, j);
      if (e < bestErr) {
        bestErr = e;
        best = j;
      }
    }
    if (best >= 0 && bestErr <= boxTol) {
      used[best] = 1;
      matched++;
      maxBoxError = Math.max(maxBoxError, bestErr);
      maxScoreError = Math.max(maxScoreError, Math.abs(actual.scores[best]! - expected.scores[i]!));
    } else if (expected.scores[i]! > cut + scoreTol) {
      problems.push(`expected #${i} (label ${expected.labels[i]}, score ${expected.scores[i]}) has no partner${best >= 0 ? ` (closest box off by ${bestErr.toFixed(4)} px)` : ''}`);
    }
  }
  for (let j = 0; j < na; j++) {
    if (!used[j] && actual.scores[j]! > cut + scoreTol) problems.push(`actual #${j} (label ${actual.labels[j]}, score ${actual.scores[j]}) has no partner`);
  }
  return { matched, maxBoxError, maxScoreError, problems };
}
