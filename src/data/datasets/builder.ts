import type { DatasetImage, DetectionDataset } from '../types.js';
import type { ProblemLog } from './problems.js';

// Annotation tools round, and some write `x2 = width` for 1-based coordinates: tolerate a pixel
// of overshoot silently (clipped), and flag anything further out.
const EDGE_TOLERANCE = 1;

/** Where an annotation came from, for problem messages. */
export interface Origin {
  file: string;
  line?: number;
}

interface PendingBox {
  origin: Origin;
  xyxy: [number, number, number, number];
  label: number;
  crowd: boolean;
  difficult: boolean;
}

/** An image as a reader produced it, before validation. Sizes may be filled in later from the image header. */
export interface PendingImage {
  id: number;
  file: string;
  width?: number;
  height?: number;
  /** Where the image was declared, for "file missing" messages. */
  origin: Origin;
  boxes: PendingBox[];
}

/**
 * Accumulates a reader's images and boxes; {@link finish} validates them: non-finite,
 * inverted or zero-size boxes are problems (skipped); boxes reaching outside a known image
 * size are problems too (clipped to the image, or skipped when entirely outside).
 */
export class DatasetBuilder {
  readonly pending: PendingImage[] = [];

  constructor(
    readonly log: ProblemLog,
    readonly classNames: string[],
    readonly categoryIds: number[],
  ) {}

  /** Adds an image; boxes are added to the returned object with {@link addBox}. */
  addImage(id: number, file: string, origin: Origin, width?: number, height?: number): PendingImage {
    const img: PendingImage = { id, file, origin, boxes: [] };
    if (width !== undefined && height !== undefined && width > 0 && height > 0) {
      img.width = width;
      img.height = height;
    }
    this.pending.push(img);
    return img;
  }

  /** Records a box (pixels, xyxy) with a class index on `image`. */
  addBox(image: PendingImage, origin: Origin, xyxy: [number, number, number, number], label: number, flags: { crowd?: boolean; difficult?: boolean } = {}): void {
    image.boxes.push({ origin, xyxy, label, crowd: flags.crowd ?? false, difficult: flags.difficult ?? false });
  }

  /** Validates every box and returns the dataset. Images listed in `drop` are left out. */
  finish(drop: ReadonlySet<PendingImage> = new Set()): DetectionDataset {
    const images: DatasetImage[] = [];
    for (const img of this.pending) {
      if (drop.has(img)) continue;
      const boxes: number[] = [];
      const labels: number[] = [];
      const crowd: number[] = [];
      const difficult: number[] = [];
      for (const b of img.boxes) {
        const xyxy = this.validate(img, b);
        if (!xyxy) continue;
        boxes.push(...xyxy);
        labels.push(b.label);
        crowd.push(b.crowd ? 1 : 0);
        difficult.push(b.difficult ? 1 : 0);
      }
      const out: DatasetImage = {
        id: img.id,
        file: img.file,
        boxes: Float32Array.from(boxes),
        labels: Int32Array.from(labels),
        crowd: Uint8Array.from(crowd),
        difficult: Uint8Array.from(difficult),
      };
      if (img.width !== undefined && img.height !== undefined) {
        out.width = img.width;
        out.height = img.height;
      }
      images.push(out);
    }
    return { classNames: this.classNames, categoryIds: this.categoryIds, images };
  }

  private validate(img: PendingImage, b: PendingBox): [number, number, number, number] | undefined {
    let [x1, y1, x2, y2] = b.xyxy;
    const { file, line } = b.origin;
    const box = `[${b.xyxy.map((v) => +v.toFixed(2)).join(', ')}]`;
    if (![x1, y1, x2, y2].every(Number.isFinite)) {
      this.log.report(file, line, `box ${box} has a non-numeric coordinate; skipped`);
      return undefined;
    }
    if (x2 < x1 || y2 < y1) {
      this.log.report(file, line, `box ${box} has x2 < x1 or y2 < y1; skipped`);
      return undefined;
    }
    if (img.width !== undefined && img.height !== undefined) {
      const W = img.width;
      const H = img.height;
      const t = EDGE_TOLERANCE;
      if (x1 < -t || y1 < -t || x2 > W + t || y2 > H + t) {
        const outside = x1 >= W || y1 >= H || x2 <= 0 || y2 <= 0;
        this.log.report(file, line, `box ${box} lies ${outside ? 'entirely' : 'partly'} outside the ${W}x${H} image; ${outside ? 'skipped' : 'clipped'}`);
        if (outside) return undefined;
      }
      x1 = Math.min(Math.max(x1, 0), W);
      x2 = Math.min(Math.max(x2, 0), W);
      y1 = Math.min(Math.max(y1, 0), H);
      y2 = Math.min(Math.max(y2, 0), H);
    }
    if (x2 - x1 <= 0 || y2 - y1 <= 0) {
      this.log.report(file, line, `box ${box} has zero width or height; skipped`);
      return undefined;
    }
    return [x1, y1, x2, y2];
  }
}
