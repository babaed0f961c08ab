/**
 * Seeded generator of a COCO-val-sized synthetic evaluation set: 5000 images, ~36k ground-truth
 * boxes over 80 categories (with crowd regions, an `area` field smaller than the box like real
 * segmentation areas, and some images without objects) and ~450k detections (jittered true
 * positives, wrong classes, background boxes; scores on a 0.001 grid so ties occur).
 * Same seed, same bytes: the benchmark and the pycocotools reference read the same files.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { CocoAnnotation, CocoDataset, CocoResult } from '../src/eval/index.js';
import { rng } from './detection_common.js';

const r2 = (v: number): number => Math.round(v * 100) / 100;

export interface SyntheticCocoOptions {
  seed?: number;
  images?: number;
  /** Mean ground-truth boxes per image (COCO val2017: ~7.3). */
  boxesPerImage?: number;
  /** Detections per image (kept at most 100, like a detector's output). */
  detsPerImage?: number;
}

/** Builds the ground truth and the detections in memory. */
export function makeSyntheticCoco(opts: SyntheticCocoOptions = {}): { gt: CocoDataset; dets: CocoResult[] } {
  const rand = rng(opts.seed ?? 2024);
  const nImg = opts.images ?? 5000;
  const perImg = opts.boxesPerImage ?? 7.3;
  const detsPerImg = opts.detsPerImage ?? 90;
  // COCO's 80 category ids are 1..90 with gaps.
  const gaps = new Set([12, 26, 29, 30, 45, 66, 68, 69, 71, 83]);
  const catIds = Array.from({ length: 90 }, (_, i) => i + 1).filter((id) => !gaps.has(id));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const images = Array.from({ length: nImg }, (_, i) => ({ id: 100000 + i * 7, width: 640, height: 480, file_name: `synthetic_${i}.jpg` }));
  const annotations: CocoAnnotation[] = [];
  const dets: CocoResult[] = [];

  const randomBox = (): number[] => {
    // Log-uniform size from 4 to 400 px covers small, medium and large like COCO does.
    const s = Math.exp(Math.log(4) + rand() * Math.log(100));
    const ar = Math.exp((rand() - 0.5) * 1.4);
    const w = Math.min(640, s * ar), h = Math.min(480, s / ar);
    return [r2(rand() * (640 - w)), r2(rand() * (480 - h)), r2(w), r2(h)];
  };

  let annId = 1;
  for (const img of images) {
    const n = rand() < 0.01 ? 0 : Math.floor(rand() * 2 * perImg + 0.5);
    const imgCats = Array.from({ length: 1 + Math.floor(rand() * 4) }, () => pick(catIds));
    const imgDets: CocoResult[] = [];
    for (let j = 0; j < n; j++) {
      const bbox = randomBox();
      const crowd = rand() < 0.01 ? 1 : 0;
      const cat = pick(imgCats);
      annotations.push({ id: annId++, image_id: img.id, category_id: cat, bbox, area: r2(bbox[2]! * bbox[3]! * (0.45 + 0.5 * rand())), iscrowd: crowd });
      const copies = rand() < 0.1 ? 0 : 1 + Math.floor(rand() * 3);
      for (let c = 0; c < copies; c++) {
        const sd = 0.12 * Math.max(bbox[2]!, bbox[3]!) * rand();
        const jit = (v: number): number => v + (rand() - 0.5) * 2 * sd;
        const box = [r2(jit(bbox[0]!)), r2(jit(bbox[1]!)), r2(Math.max(1, jit(bbox[2]!))), r2(Math.max(1, jit(bbox[3]!)))];
        imgDets.push({ image_id: img.id, category_id: rand() < 0.9 ? cat : pick(catIds), bbox: box, score: Math.round((0.3 + 0.7 * rand()) * 1000) / 1000 });
      }
    }
    while (imgDets.length < detsPerImg) {
      imgDets.push({ image_id: img.id, category_id: rand() < 0.5 ? pick(imgCats) : pick(catIds), bbox: randomBox(), score: Math.round(rand() * 0.6 * 1000) / 1000 });
    }
    dets.push(...imgDets.slice(0, 100));
  }
  const categories = catIds.map((id) => ({ id, name: `class_${id}`, supercategory: 'synthetic' }));
  return { gt: { info: { description: 'retinanet-ts synthetic COCO-val-sized set' }, images, annotations, categories }, dets };
}

/** Writes `gt.json` and `dets.json` into `dir` unless they already exist; returns their paths. */
export function writeSyntheticCoco(dir: string, opts: SyntheticCocoOptions = {}): { gtPath: string; detsPath: string } {
  const gtPath = path.join(dir, 'gt.json');
  const detsPath = path.join(dir, 'dets.json');
  if (!existsSync(gtPath) || !existsSync(detsPath)) {
    mkdirSync(dir, { recursive: true });
    const { gt, dets } = makeSyntheticCoco(opts);
    writeFileSync(gtPath, JSON.stringify(gt));
    writeFileSync(detsPath, JSON.stringify(dets));
  }
  return { gtPath, detsPath };
}
