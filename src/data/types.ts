/**
 * Shared data types of the data layer. Conventions everywhere:
 * - images are RGB, CHW (channel planes R, G, B, each row-major `height x width`), float32;
 * - boxes are flat `[x1, y1, x2, y2, x1, y1, ...]` in pixels of the image they belong to
 *   (original-image pixels unless a function says otherwise), with x2 >= x1, y2 >= y1.
 */

export type { RgbImage } from '../io/image.js';

/** One annotated image of a {@link DetectionDataset}. All arrays are indexed per box (`boxes` has 4 per box). */
export interface DatasetImage {
  /** Dataset's image id (COCO `id`; otherwise the 1-based position in the dataset). */
  id: number;
  /** Absolute path of the image file. */
  file: string;
  /** Size in pixels when the annotation states it (COCO, VOC, raccoon CSV); undefined otherwise. */
  width?: number;
  height?: number;
  /** Flat xyxy boxes in original-image pixels, length 4N. */
  boxes: Float32Array;
  /** 0-based class index into `classNames`, length N. */
  labels: Int32Array;
  /** 1 for COCO `iscrowd` boxes (ignored by evaluation and training targets), length N. */
  crowd: Uint8Array;
  /** 1 for VOC `difficult` boxes, length N. */
  difficult: Uint8Array;
}

/** A detection dataset in the project's one internal form, whatever format it was read from. */
export interface DetectionDataset {
  /** Class names; a label is an index into this array. */
  classNames: string[];
  /** The dataset's own category id per class index (COCO category ids; 0..C-1 or the CSV ids otherwise), for COCO output. */
  categoryIds: number[];
  images: DatasetImage[];
}
