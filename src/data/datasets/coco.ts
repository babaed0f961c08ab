import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { DatasetBuilder } from './builder.js';
import type { ReadOptions } from './options.js';
import { fatal, type ProblemLog } from './problems.js';

interface CocoJson {
  images?: { id: number; file_name: string; width?: number; height?: number }[];
  annotations?: { id?: number; image_id: number; category_id: number; bbox: number[]; iscrowd?: number }[];
  categories?: { id: number; name: string }[];
}

/**
 * Folder the COCO images are in: `imagesDir` if given, else the first of the JSON's folder,
 * `<json dir>/images`, `<json dir>/../<name>` (for `annotations/instances_<name>.json`, the
 * official layout) and `<json dir>/../images` that holds the first image.
 */
export function cocoImageDir(jsonPath: string, firstImage: string | undefined, imagesDir?: string): string {
  if (imagesDir) return path.resolve(imagesDir);
  const dir = path.dirname(path.resolve(jsonPath));
  const candidates = [dir, path.join(dir, 'images')];
  const m = /^instances_(.+)\.json$/.exec(path.basename(jsonPath));
  if (m) candidates.push(path.join(dir, '..', m[1]!));
  candidates.push(path.join(dir, '..', 'images'));
  if (firstImage) for (const c of candidates) if (existsSync(path.join(c, firstImage))) return path.resolve(c);
  return dir;
}

/**
 * Reads COCO detection JSON. Classes are the categories sorted by id (labels 0..C-1,
 * `categoryIds` keeps the COCO ids); `bbox` `[x, y, w, h]` becomes xyxy; `iscrowd` is kept.
 */
export async function readCoco(jsonPath: string, options: ReadOptions, log: ProblemLog): Promise<DatasetBuilder> {
  let json: CocoJson;
  try {
    json = JSON.parse(await readFile(jsonPath, 'utf8')) as CocoJson;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    fatal(jsonPath, e.code === 'ENOENT' ? 'file not found' : `not valid JSON (${e.message})`);
  }
  if (typeof json !== 'object' || json === null || !Array.isArray(json.images) || !Array.isArray(json.categories)) {
    fatal(jsonPath, "not a COCO detection file: 'images' and 'categories' arrays are required");
  }
  const categories = [...json.categories].sort((a, b) => a.id - b.id);
  const labelOf = new Map(categories.map((c, i) => [c.id, i]));
  const builder = new DatasetBuilder(log, categories.map((c) => c.name), categories.map((c) => c.id));
  const dir = cocoImageDir(jsonPath, json.images[0]?.file_name, options.imagesDir);
  const byId = new Map<number, ReturnType<DatasetBuilder['addImage']>>();
  for (const im of json.images) {
    if (typeof im.file_name !== 'string' || typeof im.id !== 'number') {
      log.report(jsonPath, undefined, `image entry ${JSON.stringify(im).slice(0, 80)} lacks id or file_name; skipped`);
      continue;
    }
    if (byId.has(im.id)) {
      log.report(jsonPath, undefined, `image id ${im.id} appears twice; second skipped`);
      continue;
    }
    byId.set(im.id, builder.addImage(im.id, path.join(dir, im.file_name), { file: jsonPath }, im.width, im.height));
  }
  for (const a of json.annotations ?? []) {
    const where = `annotation id ${a.id ?? '?'}`;
    const img = byId.get(a.image_id);
    if (!img) {
      log.report(jsonPath, undefined, `${where}: unknown image_id ${a.image_id}; skipped`);
      continue;
    }
    const label = labelOf.get(a.category_id);
    if (label === undefined) {
      log.report(jsonPath, undefined, `${where}: unknown category_id ${a.category_id}; skipped`);
      continue;
    }
    if (!Array.isArray(a.bbox) || a.bbox.length !== 4) {
      log.report(jsonPath, undefined, `${where}: bbox must be [x, y, width, height]; skipped`);
      continue;
    }
    const [x, y, w, h] = a.bbox.map(Number) as [number, number, number, number];
    builder.addBox(img, { file: `${jsonPath} (${where})` }, [x, y, x + w, y + h], label, { crowd: a.iscrowd === 1 });
  }
  return builder;
}
