/**
 * COCO-format input types, as read from the standard JSON files. Boxes are COCO-style
 * `[x, y, w, h]` in pixels (top-left corner, width, height); areas are in square pixels.
 */

/** One image entry of a COCO dataset. Only `id` is used by the evaluator. */
export interface CocoImage {
  id: number;
  file_name?: string;
  width?: number;
  height?: number;
}

/** One category entry of a COCO dataset. */
export interface CocoCategory {
  id: number;
  name: string;
  supercategory?: string;
}

/** One ground-truth annotation. `area` is the object's (segmentation) area in px²; it decides small/medium/large. */
export interface CocoAnnotation {
  id: number;
  image_id: number;
  category_id: number;
  /** `[x, y, w, h]` in pixels. */
  bbox: readonly number[];
  /** Area in px² used for the small/medium/large split; defaults to `w * h` when absent. */
  area?: number;
  /** Crowd regions (1/true) match any number of detections and never count as misses. */
  iscrowd?: number | boolean;
  /** Accepted for compatibility but, exactly like pycocotools, overwritten by `iscrowd`. */
  ignore?: number | boolean;
}

/** A COCO ground-truth dataset (`instances_*.json`). */
export interface CocoDataset {
  images: readonly CocoImage[];
  annotations: readonly CocoAnnotation[];
  categories: readonly CocoCategory[];
  info?: unknown;
  licenses?: unknown;
}

/** One detection in the standard COCO results format. */
export interface CocoResult {
  image_id: number;
  category_id: number;
  /** `[x, y, w, h]` in pixels. */
  bbox: readonly number[];
  /** Confidence; higher ranks first. */
  score: number;
}

/**
 * Box k of a flat xyxy array (`[x1, y1, x2, y2, ...]`, pixels) as a COCO `bbox`
 * `[x, y, w, h]`: the one place where the two conventions meet.
 */
export function xyxyToCocoBox(boxes: ArrayLike<number>, k: number): [number, number, number, number] {
  const x1 = boxes[4 * k]!, y1 = boxes[4 * k + 1]!, x2 = boxes[4 * k + 2]!, y2 = boxes[4 * k + 3]!;
  return [x1, y1, x2 - x1, y2 - y1];
}
