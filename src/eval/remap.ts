/**
 * Results saved as a whole COCO object (`{images, categories, annotations}`) often carry their
 * own image and category ids (e.g. 0-based, or in another order). This maps them onto the
 * ground truth's ids through `file_name` and category `name`, the only keys both sides share.
 */
import { EvalInputError } from './errors.js';
import { checkCocoGroundTruth } from './coco.js';
import { isRecord, showId } from './json_shape.js';
import type { CocoDataset, CocoResult } from './types.js';

/** A results file in the shape of a COCO dataset; `annotations` are the detections. */
export interface CocoResultsObject {
  images?: readonly { id: number; file_name?: string }[];
  categories?: readonly { id: number; name?: string }[];
  annotations: readonly CocoResult[];
}

/** What `remapResults` changed, for a one-line note to the user. */
export interface RemapSummary {
  imagesRemapped: boolean;
  categoriesRemapped: boolean;
  /** Detections whose category name is not in the ground truth (dropped). */
  droppedUnknownCategory: number;
}

/**
 * Returns the detections of `res` with ids translated to `gt`'s: images by `file_name` (when `res`
 * lists images with file names) and categories by `name` (when `res` lists named categories).
 * Ids are left alone on a side whose ids and names/file names already agree with the ground truth.
 */
export function remapResults(gt: CocoDataset, res: CocoResultsObject): { dets: CocoResult[]; summary: RemapSummary } {
  checkCocoGroundTruth(gt);
  checkResultsObject(res);
  const imgMap = new Map<number, number>();
  let imagesRemapped = false;
  if (res.images?.length && res.images.every((im) => typeof im.file_name === 'string')) {
    const byFile = new Map(gt.images.filter((im) => im.file_name !== undefined).map((im) => [im.file_name!, im.id] as const));
    for (const im of res.images) {
      const id = byFile.get(im.file_name!);
      if (id === undefined) throw new EvalInputError(`results image ${showId(im.file_name)} (id ${showId(im.id)}) is not in the ground truth`);
      imgMap.set(im.id, id);
      if (id !== im.id) imagesRemapped = true;
    }
  }
  const catMap = new Map<number, number | null>();
  let categoriesRemapped = false;
  if (res.categories?.length && res.categories.every((c) => typeof c.name === 'string')) {
    const byName = new Map(gt.categories.map((c) => [c.name, c.id] as const));
    for (const c of res.categories) {
      const id = byName.get(c.name!);
      catMap.set(c.id, id ?? null);
      if (id !== c.id) categoriesRemapped = true;
    }
  }
  let droppedUnknownCategory = 0;
  const dets: CocoResult[] = [];
  for (const d of res.annotations) {
    let category_id = d.category_id;
    if (categoriesRemapped && catMap.has(d.category_id)) {
      const id = catMap.get(d.category_id);
      if (id === null || id === undefined) {
        droppedUnknownCategory++;
        continue;
      }
      category_id = id;
    }
    const image_id = imagesRemapped ? (imgMap.get(d.image_id) ?? d.image_id) : d.image_id;
    dets.push({ image_id, category_id, bbox: d.bbox, score: d.score });
  }
  return { dets, summary: { imagesRemapped, categoriesRemapped, droppedUnknownCategory } };
}

/** A results object as read from JSON: "images" and "categories" (optional) and "annotations" are arrays of objects. */
function checkResultsObject(res: unknown): asserts res is CocoResultsObject {
  if (!isRecord(res) || !Array.isArray(res.annotations)) throw new EvalInputError('a COCO results object needs an "annotations" array');
  for (const key of ['images', 'categories', 'annotations'] as const) {
    const list = res[key];
    if (list === undefined && key !== 'annotations') continue;
    if (!Array.isArray(list)) throw new EvalInputError(`the results object's "${key}" must be an array`);
    const bad = list.findIndex((e) => !isRecord(e));
    if (bad >= 0) throw new EvalInputError(`the results object's ${key} #${bad} is not an object`);
  }
}
