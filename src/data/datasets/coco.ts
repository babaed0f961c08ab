import { fs, path } from '../../platform/files.js';
import { DatasetBuilder } from './builder.js';
import type { ReadOptions } from './options.js';
import { fatal, type ProblemLog } from './problems.js';

const { existsSync, readFile } = fs;

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

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
/** A JSON value in a message: numbers and short strings as they are, anything else by its kind (objects can refuse String()). */
const show = (v: unknown): string =>
  typeof v === 'number' || typeof v === 'boolean' || v === null ? String(v) : typeof v === 'string' ? JSON.stringify(v.slice(0, 60)) : v === undefined ? 'missing' : Array.isArray(v) ? 'an array' : 'an object';
/** A bbox coordinate: a number, or a numeric string (some exporters write them); anything else is NaN (a problem later). */
const coord = (v: unknown): number => (typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN);
/** An image size: a positive number, else unknown. */
const size = (v: unknown): number | undefined => (typeof v === 'number' && v > 0 && Number.isFinite(v) ? v : undefined);

/**
 * Reads COCO detection JSON. Classes are the categories sorted by id (labels 0..C-1,
 * `categoryIds` keeps the COCO ids); `bbox` `[x, y, w, h]` becomes xyxy; `iscrowd` is kept.
 * Entries of the wrong shape are problems (skipped), never crashes.
 */
export async function readCoco(jsonPath: string, options: ReadOptions, log: ProblemLog): Promise<DatasetBuilder> {
  let json: CocoJson;
  try {
    json = JSON.parse(await readFile(jsonPath, 'utf8')) as CocoJson;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    fatal(jsonPath, e.code === 'ENOENT' ? 'file not found' : `not valid JSON (${e.message})`);
  }
  if (!isRecord(json) || !Array.isArray(json.images) || !Array.isArray(json.categories)) {
    fatal(jsonPath, "not a COCO detection file: 'images' and 'categories' arrays are required");
  }
  if (json.annotations !== undefined && !Array.isArray(json.annotations)) fatal(jsonPath, "'annotations' must be an array");
  const categories: { id: number; name: string }[] = [];
  const catIds = new Set<number>();
  (json.categories as unknown[]).forEach((c, i) => {
    if (!isRecord(c) || typeof c.id !== 'number' || typeof c.name !== 'string') {
      log.report(jsonPath, undefined, `category #${i} is not {"id": number, "name": string}; skipped`);
    } else if (catIds.has(c.id)) {
      log.report(jsonPath, undefined, `category id ${c.id} appears twice; second skipped`);
    } else {
      catIds.add(c.id);
      categories.push({ id: c.id, name: c.name });
    }
  });
  categories.sort((a, b) => a.id - b.id);
  const labelOf = new Map(categories.map((c, i) => [c.id, i]));
  const builder = new DatasetBuilder(log, categories.map((c) => c.name), categories.map((c) => c.id));
  const first = (json.images as unknown[])[0];
  const dir = cocoImageDir(jsonPath, isRecord(first) && typeof first.file_name === 'string' ? first.file_name : undefined, options.imagesDir);
  const byId = new Map<number, ReturnType<DatasetBuilder['addImage']>>();
  (json.images as unknown[]).forEach((im, i) => {
    if (!isRecord(im) || typeof im.file_name !== 'string' || typeof im.id !== 'number') {
      log.report(jsonPath, undefined, `image entry #${i}${isRecord(im) && im.id !== undefined ? ` (id ${show(im.id)})` : ''} lacks a numeric id or a file_name; skipped`);
      return;
    }
    if (byId.has(im.id)) {
      log.report(jsonPath, undefined, `image id ${im.id} appears twice; second skipped`);
      return;
    }
    byId.set(im.id, builder.addImage(im.id, path.join(dir, im.file_name), { file: jsonPath }, size(im.width), size(im.height)));
  });
  ((json.annotations ?? []) as unknown[]).forEach((a, i) => {
    if (!isRecord(a)) {
      log.report(jsonPath, undefined, `annotation #${i} is not an object; skipped`);
      return;
    }
    const where = `annotation id ${typeof a.id === 'number' || typeof a.id === 'string' ? show(a.id) : `? (#${i})`}`;
    const img = typeof a.image_id === 'number' ? byId.get(a.image_id) : undefined;
    if (!img) {
      log.report(jsonPath, undefined, `${where}: unknown image_id ${show(a.image_id)}; skipped`);
      return;
    }
    const label = typeof a.category_id === 'number' ? labelOf.get(a.category_id) : undefined;
    if (label === undefined) {
      log.report(jsonPath, undefined, `${where}: unknown category_id ${show(a.category_id)}; skipped`);
      return;
    }
    if (!Array.isArray(a.bbox) || a.bbox.length !== 4) {
      log.report(jsonPath, undefined, `${where}: bbox must be [x, y, width, height]; skipped`);
      return;
    }
    const [x, y, w, h] = a.bbox.map(coord) as [number, number, number, number];
    builder.addBox(img, { file: `${jsonPath} (${where})` }, [x, y, x + w, y + h], label, { crowd: a.iscrowd === 1 });
  });
  return builder;
}
