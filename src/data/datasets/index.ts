import { fs, path } from '../../platform/files.js';
import { imageSize } from '../../io/image.js';
import type { DetectionDataset } from '../types.js';
import type { DatasetBuilder, PendingImage } from './builder.js';
import { readCoco } from './coco.js';
import { readCsv } from './csv.js';
import type { ReadOptions } from './options.js';
import { DatasetError, ProblemLog, type DatasetProblem } from './problems.js';
import { readVoc } from './voc.js';
import { readYolo } from './yolo.js';

const { existsSync, readdirSync, statSync } = fs;

export { DatasetError, formatProblem, type DatasetProblem } from './problems.js';
export type { ReadOptions } from './options.js';

/** Annotation formats the readers understand. */
export type DatasetFormat = 'coco' | 'voc' | 'csv' | 'yolo';
export const DATASET_FORMATS: readonly DatasetFormat[] = ['coco', 'voc', 'csv', 'yolo'];

/**
 * Guesses the format of a dataset path: `.json` → coco, `.csv` → csv, a folder with `Annotations/`
 * (or only `.xml` files) → voc, a folder with `labels/` → yolo, a folder with `annotations/instances_*.json` → coco.
 * Throws a {@link DatasetError} saying what was expected when nothing fits.
 */
export function detectFormat(p: string): DatasetFormat {
  if (!existsSync(p)) throw new DatasetError(`${p}: no such file or folder`);
  if (statSync(p).isFile()) {
    const ext = path.extname(p).toLowerCase();
    if (ext === '.json') return 'coco';
    if (ext === '.csv') return 'csv';
    throw new DatasetError(`${p}: cannot tell the dataset format from a '${ext}' file (expected .json for COCO or .csv)`);
  }
  const entries = readdirSync(p);
  if (entries.includes('Annotations')) return 'voc';
  if (entries.includes('labels')) return 'yolo';
  if (entries.includes('annotations') && cocoFiles(path.join(p, 'annotations')).length > 0) return 'coco';
  if (entries.some((e) => e.toLowerCase().endsWith('.xml'))) return 'voc';
  throw new DatasetError(
    `${p}: cannot tell the dataset format: expected a COCO .json, a .csv, a VOC folder with Annotations/, a YOLO folder with labels/, or a folder with annotations/instances_*.json`,
  );
}

function cocoFiles(dir: string): string[] {
  try {
    return readdirSync(dir).filter((f) => /^instances_.+\.json$/.test(f)).sort();
  } catch {
    return [];
  }
}

/** The COCO JSON for a path: the path itself, or `annotations/instances_<split>.json` inside a folder. */
function cocoJsonPath(p: string, split: string | undefined): string {
  if (statSync(p).isFile()) return p;
  const dir = path.join(p, 'annotations');
  if (split) return path.join(dir, `instances_${split}.json`);
  const files = cocoFiles(dir);
  if (files.length === 1) return path.join(dir, files[0]!);
  throw new DatasetError(`${p}: several COCO annotation files (${files.join(', ')}); choose one with a split name`);
}

/** Options of {@link loadDataset}. */
export interface LoadOptions extends ReadOptions {
  /** Format; detected with {@link detectFormat} when absent. */
  format?: DatasetFormat;
  /** Fail on the first problem instead of skipping the faulty item with a warning. */
  strict?: boolean;
  /**
   * How much to check the image files: 'exists' (default) drops missing images, 'header' also reads
   * each image header to fill in unknown sizes and catch size mismatches, 'none' trusts the annotations.
   */
  checkImages?: 'none' | 'exists' | 'header';
  /** Called as image files are checked (`done` of `total`). */
  onProgress?: (done: number, total: number) => void;
}

/** A dataset with the problems found while reading it (always empty in strict mode). */
export interface LoadedDataset {
  dataset: DetectionDataset;
  format: DatasetFormat;
  problems: DatasetProblem[];
}

async function checkImageFiles(builder: DatasetBuilder, mode: 'exists' | 'header', log: ProblemLog, onProgress?: (done: number, total: number) => void): Promise<Set<PendingImage>> {
  const drop = new Set<PendingImage>();
  const queue = [...builder.pending];
  const total = queue.length;
  let done = 0;
  const worker = async () => {
    for (let img = queue.shift(); img; img = queue.shift(), onProgress?.(++done, total)) {
      if (!existsSync(img.file)) {
        log.report(img.origin.file, img.origin.line, `image file ${img.file} not found; image skipped`);
        drop.add(img);
        continue;
      }
      if (mode !== 'header') continue;
      try {
        const size = await imageSize(img.file);
        if (img.width !== undefined && (img.width !== size.width || img.height !== size.height)) {
          log.report(img.origin.file, img.origin.line, `annotation says ${img.width}x${img.height} but ${img.file} is ${size.width}x${size.height}; using the image's size`);
        }
        img.width = size.width;
        img.height = size.height;
      } catch (err) {
        log.report(img.origin.file, img.origin.line, `${(err as Error).message}; image skipped`);
        drop.add(img);
      }
    }
  };
  // A few header reads in flight hide file latency without hogging the (shared) CPU.
  await Promise.all(Array.from({ length: 4 }, worker));
  return drop;
}

/** Reads a dataset in any supported format into the internal {@link DetectionDataset} form. */
export async function loadDataset(p: string, options: LoadOptions = {}): Promise<LoadedDataset> {
  const format = options.format ?? detectFormat(p);
  if (!existsSync(p)) throw new DatasetError(`${p}: no such file or folder`);
  const log = new ProblemLog(options.strict ?? false);
  let builder: DatasetBuilder;
  switch (format) {
    case 'coco':
      builder = await readCoco(cocoJsonPath(p, options.split), options, log);
      break;
    case 'voc':
      builder = await readVoc(p, options, log);
      break;
    case 'csv':
      builder = await readCsv(p, options, log);
      break;
    case 'yolo':
      builder = await readYolo(p, options, log);
      break;
  }
  const mode = options.checkImages ?? 'exists';
  const drop = mode === 'none' ? new Set<PendingImage>() : await checkImageFiles(builder, mode, log, options.onProgress);
  const dataset = builder.finish(drop);
  // Parse-time and validation-time problems arrive in two passes; report them in file order.
  const problems = [...log.problems].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : (a.line ?? 0) - (b.line ?? 0)));
  return { dataset, format, problems };
}
