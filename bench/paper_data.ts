/**
 * The data of `retinanet bench paper`: the sparse synthetic set (written once as PNGs + COCO
 * JSON, so every run and every process reads the same images, and `retinanet data check` /
 * `eval --data` read it too), and the foreground/background anchor counts that show how much
 * imbalance a set has (COCO128 at 800 px against ours).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { writeAtomic } from '../src/core/atomic.js';
import { SYNTHETIC_CLASSES, type SyntheticOptions, syntheticSample } from '../src/data/synthetic.js';
import { loadDataset } from '../src/data/datasets/index.js';
import { resizeBoxes, resizedSize } from '../src/data/transform.js';
import { assignTargets } from '../src/detection/targets.js';
import { chwToHwcBytes } from '../src/io/image.js';
import { xyxyToCocoBox } from '../src/eval/types.js';
import { anchorsFor } from '../src/model/anchors.js';
import { type RetinaNetConfig, configFor } from '../src/model/config.js';
import type { DataSpec } from './paper_spec.js';
import { median } from '../src/core/stats.js';

export const SPLITS = ['train', 'val', 'test'] as const;
export type Split = (typeof SPLITS)[number];

/** Generator options of a split: each split has its own seed, so val and test are held out. */
export function splitOptions(data: DataSpec, split: Split): SyntheticOptions {
  return {
    imageSize: data.imageSize,
    minObjects: data.minObjects,
    maxObjects: data.maxObjects,
    minObjectSize: data.minObjectSize,
    maxObjectSize: data.maxObjectSize,
    minDistractors: data.minDistractors,
    maxDistractors: data.maxDistractors,
    seed: 1000 + 3 * data.seed + SPLITS.indexOf(split),
  };
}

export function splitCount(data: DataSpec, split: Split): number {
  return data[split];
}

export function annotationsFile(dir: string, split: Split): string {
  return path.join(dir, 'annotations', `instances_${split}.json`);
}

/** Whether `dir` holds every split of `data` (the JSON is written last, after its images). */
export function datasetReady(dir: string, data: DataSpec): boolean {
  return SPLITS.every((s) => {
    const f = annotationsFile(dir, s);
    if (!existsSync(f)) return false;
    try {
      const info = (JSON.parse(readFileSync(f, 'utf8')) as { info?: { spec?: unknown } }).info?.spec;
      return JSON.stringify(info) === JSON.stringify({ ...data, split: s });
    } catch {
      return false;
    }
  });
}

/** One written image: its COCO entry and annotations. */
export interface WrittenImage {
  id: number;
  file_name: string;
  width: number;
  height: number;
  boxes: number[];
  labels: number[];
}

/** Writes images [from, to) of a split as PNGs under `dir/<split>/` (a slice, so processes can share the work). */
export async function writeImages(dir: string, data: DataSpec, split: Split, from: number, to: number): Promise<WrittenImage[]> {
  const opts = splitOptions(data, split);
  const imagesDir = path.join(dir, split);
  mkdirSync(imagesDir, { recursive: true });
  const out: WrittenImage[] = [];
  for (let i = from; i < to; i++) {
    const s = syntheticSample(i, opts);
    const fileName = `${String(s.id).padStart(6, '0')}.png`;
    const { width, height } = s.image;
    const png = await sharp(chwToHwcBytes(s.image), { raw: { width, height, channels: 3 } }).png().toBuffer();
    await writeAtomic(path.join(imagesDir, fileName), png);
    out.push({ id: s.id, file_name: fileName, width, height, boxes: [...s.boxes], labels: [...s.labels] });
  }
  return out;
}

/** Writes a split's COCO JSON from its images (after all of them are on disk). */
export async function writeAnnotations(dir: string, data: DataSpec, split: Split, images: readonly WrittenImage[]): Promise<void> {
  mkdirSync(path.join(dir, 'annotations'), { recursive: true });
  const sorted = [...images].sort((a, b) => a.id - b.id);
  const annotations: object[] = [];
  for (const im of sorted) {
    const boxes = Float32Array.from(im.boxes);
    im.labels.forEach((label, k) => {
      const bbox = xyxyToCocoBox(boxes, k);
      annotations.push({ id: annotations.length + 1, image_id: im.id, category_id: label + 1, bbox, area: bbox[2] * bbox[3], iscrowd: 0 });
    });
  }
  const json = {
    info: { description: 'retinanet-ts sparse synthetic shapes with distractors (bench paper)', spec: { ...data, split } },
    images: sorted.map(({ id, file_name, width, height }) => ({ id, file_name, width, height })),
    annotations,
    categories: SYNTHETIC_CLASSES.map((name, i) => ({ id: i + 1, name, supercategory: 'shape' })),
  };
  await writeAtomic(annotationsFile(dir, split), JSON.stringify(json));
}

/** Foreground, ignored and background anchors of one image under the project's matcher. */
export interface AnchorCount {
  anchors: number;
  foreground: number;
  ignored: number;
  background: number;
}

/**
 * Counts anchors per image as training assigns them: the image resized as the config's
 * transform does and padded to `sizeDivisible`, the config's anchors, `assignTargets` (IoU >= 0.5
 * foreground, including the matcher's low-quality matches; < 0.4 background; in between ignored).
 */
export function countAnchors(images: readonly { width: number; height: number; boxes: Float32Array }[], cfg: RetinaNetConfig, sizeDivisible = 32): AnchorCount[] {
  return images.map((im) => {
    const [h, w] = resizedSize(im.height, im.width, cfg.transform.minSize, cfg.transform.maxSize);
    const ph = Math.ceil(h / sizeDivisible) * sizeDivisible;
    const pw = Math.ceil(w / sizeDivisible) * sizeDivisible;
    const set = anchorsFor(cfg, ph, pw);
    const boxes = resizeBoxes(im.boxes, [im.height, im.width], [h, w]);
    const t = assignTargets(set.all, boxes, new Int32Array(boxes.length / 4), { imageSize: [h, w], index: set.index(), onWarning: () => undefined });
    let ignored = 0;
    let background = 0;
    for (const m of t.matchedIdxs) {
      if (m === -2) ignored++;
      else if (m === -1) background++;
    }
    return { anchors: set.all.length / 4, foreground: t.foreground.length, ignored, background };
  });
}

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Summary of per-image anchor counts: the background : foreground ratio per image and pooled. */
export interface RatioSummary {
  name: string;
  setting: string;
  images: number;
  anchorsPerImage: number;
  foregroundPerImage: { median: number; mean: number };
  backgroundPerImage: number;
  /** Background / foreground anchors, per image (median, mean) and over all images (pooled). */
  ratio: { median: number; mean: number; pooled: number };
}

export function summarizeCounts(name: string, setting: string, counts: readonly AnchorCount[]): RatioSummary {
  const withFg = counts.filter((c) => c.foreground > 0);
  const ratios = withFg.map((c) => c.background / c.foreground);
  const fg = counts.map((c) => c.foreground);
  return {
    name,
    setting,
    images: counts.length,
    anchorsPerImage: mean(counts.map((c) => c.anchors)),
    foregroundPerImage: { median: median(fg), mean: mean(fg) },
    backgroundPerImage: mean(counts.map((c) => c.background)),
    ratio: {
      median: median(ratios),
      mean: mean(ratios),
      pooled: counts.reduce((a, c) => a + c.background, 0) / Math.max(1, counts.reduce((a, c) => a + c.foreground, 0)),
    },
  };
}

/**
 * COCO128's real boxes (non-crowd, images with at least one) under torchvision's default
 * RetinaNet: resized to 800 (max 1333) or `minSize`, default anchors (32-512, 3 x 3).
 */
export async function cocoRatios(cocoDir: string, minSize = 800, maxSize = 1333): Promise<RatioSummary | undefined> {
  const json = path.join(cocoDir, 'annotations', 'instances_train2017.json');
  if (!existsSync(json)) return undefined;
  const { dataset } = await loadDataset(json, { checkImages: 'none' });
  const images = dataset.images
    .filter((im) => im.width && im.height)
    .map((im) => {
      const keep = [...im.labels.keys()].filter((k) => !im.crowd[k]);
      return { width: im.width!, height: im.height!, boxes: Float32Array.from(keep.flatMap((k) => [...im.boxes.subarray(4 * k, 4 * k + 4)])) };
    })
    .filter((im) => im.boxes.length > 0);
  const cfg = configFor('retinanet_resnet50_fpn', { transform: { minSize, maxSize } });
  return summarizeCounts('COCO128 (real COCO boxes)', `${minSize} px (max ${maxSize}), default anchors 32-512 x 3 scales x 3 ratios`, countAnchors(images, cfg));
}

/** Our synthetic sets: generated in memory (boxes only matter), with the bench's model config. */
export function syntheticRatios(name: string, setting: string, opts: SyntheticOptions, count: number, cfg: RetinaNetConfig): RatioSummary {
  const images = Array.from({ length: count }, (_, i) => {
    const s = syntheticSample(i, opts);
    return { width: s.image.width, height: s.image.height, boxes: s.boxes };
  });
  return summarizeCounts(name, setting, countAnchors(images, cfg));
}

/** A written split of ours, read back from its COCO JSON (boxes only; images are not decoded). */
export async function splitRatios(dir: string, split: Split, name: string, setting: string, cfg: RetinaNetConfig): Promise<RatioSummary> {
  const { dataset } = await loadDataset(annotationsFile(dir, split), { checkImages: 'none' });
  const images = dataset.images.map((im) => ({ width: im.width!, height: im.height!, boxes: im.boxes }));
  return summarizeCounts(name, setting, countAnchors(images, cfg));
}
