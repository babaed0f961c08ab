import { cellAnchors, gridSizesFor, RETINANET_ANCHOR_CONFIG, type AnchorConfig } from '../detection/anchors.js';
import { resizeBoxes, resizedSize } from './transform.js';
import type { DetectionDataset } from './types.js';
import type { SampleSource } from './source.js';

/** Upper edges (exclusive) of the box-size bins, in pixels of sqrt(area); the last bin is open. */
export const SIZE_BIN_EDGES: readonly number[] = [8, 16, 32, 64, 96, 128, 256, 512];

/** Counts of a dataset, computed by {@link datasetStats}. Box sizes are sqrt(area) in original pixels. */
export interface DatasetStats {
  images: number;
  imagesWithoutBoxes: number;
  boxes: number;
  crowdBoxes: number;
  difficultBoxes: number;
  /** Boxes per class index (crowd included). */
  boxesPerClass: number[];
  /** COCO's small (< 32), medium (32-96) and large (> 96) split by sqrt(area). */
  sizeCoco: { small: number; medium: number; large: number };
  /** Counts per bin of {@link SIZE_BIN_EDGES} (length edges + 1). */
  sizeBins: number[];
  /** Smallest and largest image width/height seen; undefined when no image size is known. */
  imageSizeRange?: { minWidth: number; maxWidth: number; minHeight: number; maxHeight: number };
  /** Anchor coverage, present when computed (needs image sizes). */
  anchorCoverage?: AnchorCoverage;
}

/** How well the default anchors fit the (non-crowd) boxes after the default resize. */
export interface AnchorCoverage {
  minSize: number;
  maxSize: number;
  /** Boxes checked (non-crowd, on images of known size). */
  checked: number;
  /** Boxes whose best anchor IoU is below 0.5: with RetinaNet's matcher they only get a low-quality match. */
  uncovered: number;
  /** `uncovered` per class index. */
  uncoveredPerClass: number[];
  /** Mean over checked boxes of the best anchor IoU. */
  meanBestIou: number;
}

/** Options of {@link datasetStats}. */
export interface StatsOptions {
  /** Compute {@link AnchorCoverage} (default true). */
  anchors?: boolean;
  /** Resize used before matching anchors (defaults: RetinaNet's 800 / 1333). */
  minSize?: number;
  maxSize?: number;
  anchorConfig?: AnchorConfig;
  /** Size divisor of the padded batch (32). */
  sizeDivisible?: number;
}

/**
 * Best IoU of each gt box (flat xyxy, pixels of the padded image) with the anchors that
 * `anchorsForImage(paddedH, paddedW, config)` generates, without enumerating them: the overlap
 * of two axis-aligned boxes of fixed sizes only shrinks as their centres move apart along either
 * axis, so per cell anchor the best grid position is one of the (at most 2 x 2) positions whose
 * centres bracket the gt centre.
 */
export function bestAnchorIou(gt: Float32Array, paddedH: number, paddedW: number, config: AnchorConfig = RETINANET_ANCHOR_CONFIG): Float32Array {
  const m = gt.length / 4;
  const best = new Float32Array(m);
  const grids = gridSizesFor(paddedH, paddedW, config.strides);
  grids.forEach(([gh, gw], level) => {
    const cell = cellAnchors(config.sizes[level]!, config.aspectRatios[level]!);
    const sy = Math.floor(paddedH / gh);
    const sx = Math.floor(paddedW / gw);
    for (let k = 0; k < cell.length; k += 4) {
      const [ax1, ay1, ax2, ay2] = [cell[k]!, cell[k + 1]!, cell[k + 2]!, cell[k + 3]!];
      const aArea = (ax2 - ax1) * (ay2 - ay1);
      for (let j = 0; j < m; j++) {
        const [x1, y1, x2, y2] = [gt[4 * j]!, gt[4 * j + 1]!, gt[4 * j + 2]!, gt[4 * j + 3]!];
        const gArea = (x2 - x1) * (y2 - y1);
        // Grid index whose anchor centre is just left of / above the gt centre.
        const fx = Math.floor(((x1 + x2) / 2 - (ax1 + ax2) / 2) / sx);
        const fy = Math.floor(((y1 + y2) / 2 - (ay1 + ay2) / 2) / sy);
        for (let gx = fx; gx <= fx + 1; gx++) {
          const cx = Math.min(Math.max(gx, 0), gw - 1) * sx;
          const iw = Math.min(x2, cx + ax2) - Math.max(x1, cx + ax1);
          if (iw <= 0) continue;
          for (let gy = fy; gy <= fy + 1; gy++) {
            const cy = Math.min(Math.max(gy, 0), gh - 1) * sy;
            const ih = Math.min(y2, cy + ay2) - Math.max(y1, cy + ay1);
            if (ih <= 0) continue;
            const inter = iw * ih;
            const iou = inter / (gArea + aArea - inter);
            if (iou > best[j]!) best[j] = iou;
          }
        }
      }
    }
  });
  return best;
}

/** Statistics of a dataset: counts per class, box size histograms and anchor coverage. */
export function datasetStats(ds: DetectionDataset, options: StatsOptions = {}): DatasetStats {
  const C = ds.classNames.length;
  const stats: DatasetStats = {
    images: ds.images.length,
    imagesWithoutBoxes: 0,
    boxes: 0,
    crowdBoxes: 0,
    difficultBoxes: 0,
    boxesPerClass: new Array<number>(C).fill(0),
    sizeCoco: { small: 0, medium: 0, large: 0 },
    sizeBins: new Array<number>(SIZE_BIN_EDGES.length + 1).fill(0),
  };
  for (const im of ds.images) {
    const n = im.labels.length;
    if (n === 0) stats.imagesWithoutBoxes++;
    if (im.width !== undefined && im.height !== undefined) {
      const r = (stats.imageSizeRange ??= { minWidth: Infinity, maxWidth: 0, minHeight: Infinity, maxHeight: 0 });
      r.minWidth = Math.min(r.minWidth, im.width);
      r.maxWidth = Math.max(r.maxWidth, im.width);
      r.minHeight = Math.min(r.minHeight, im.height);
      r.maxHeight = Math.max(r.maxHeight, im.height);
    }
    for (let i = 0; i < n; i++) {
      stats.boxes++;
      stats.crowdBoxes += im.crowd[i]!;
      stats.difficultBoxes += im.difficult[i]!;
      const label = im.labels[i]!;
      if (label >= 0 && label < C) stats.boxesPerClass[label]!++;
      const side = Math.sqrt((im.boxes[4 * i + 2]! - im.boxes[4 * i]!) * (im.boxes[4 * i + 3]! - im.boxes[4 * i + 1]!));
      if (side < 32) stats.sizeCoco.small++;
      else if (side <= 96) stats.sizeCoco.medium++;
      else stats.sizeCoco.large++;
      let bin = SIZE_BIN_EDGES.findIndex((e) => side < e);
      if (bin < 0) bin = SIZE_BIN_EDGES.length;
      stats.sizeBins[bin]!++;
    }
  }
  if (options.anchors ?? true) stats.anchorCoverage = anchorCoverage(ds, options);
  return stats;
}

/** The boxes of one image (flat xyxy, original pixels) with its size: what coverage is computed on. */
export interface ImageBoxes {
  width: number;
  height: number;
  boxes: Float32Array;
  labels: Int32Array;
  /** Crowd flags (crowd boxes are not checked). */
  crowd?: Uint8Array;
}

/** The images of a dataset whose size is known. */
export function imageBoxesOf(ds: DetectionDataset): ImageBoxes[] {
  const out: ImageBoxes[] = [];
  for (const im of ds.images) if (im.width !== undefined && im.height !== undefined) out.push({ width: im.width, height: im.height, boxes: im.boxes, labels: im.labels, crowd: im.crowd });
  return out;
}

/**
 * Best anchor IoU of each box of one image after the resize (`minSize` / `maxSize`, padding to
 * `sizeDivisible`), in box order; crowd boxes get NaN.
 */
export function boxAnchorIous(im: ImageBoxes, options: StatsOptions = {}): Float32Array {
  const minSize = options.minSize ?? 800;
  const maxSize = options.maxSize ?? 1333;
  const div = options.sizeDivisible ?? 32;
  const config = options.anchorConfig ?? RETINANET_ANCHOR_CONFIG;
  const [h, w] = resizedSize(im.height, im.width, minSize, maxSize);
  const best = bestAnchorIou(resizeBoxes(im.boxes, [im.height, im.width], [h, w]), Math.ceil(h / div) * div, Math.ceil(w / div) * div, config);
  if (im.crowd) for (let i = 0; i < best.length; i++) if (im.crowd[i]) best[i] = NaN;
  return best;
}

/** Anchor coverage of the non-crowd boxes of `images` (`numClasses` sizes the per-class counts). */
export function anchorCoverageOf(images: Iterable<ImageBoxes>, numClasses: number, options: StatsOptions = {}): AnchorCoverage {
  const cov: AnchorCoverage = { minSize: options.minSize ?? 800, maxSize: options.maxSize ?? 1333, checked: 0, uncovered: 0, uncoveredPerClass: new Array<number>(numClasses).fill(0), meanBestIou: 0 };
  let sum = 0;
  for (const im of images) {
    if (im.labels.length === 0) continue;
    const best = boxAnchorIous(im, options);
    for (let i = 0; i < best.length; i++) {
      const b = best[i]!;
      if (Number.isNaN(b)) continue;
      cov.checked++;
      sum += b;
      if (b < 0.5) {
        cov.uncovered++;
        const label = im.labels[i]!;
        if (label >= 0 && label < numClasses) cov.uncoveredPerClass[label]!++;
      }
    }
  }
  cov.meanBestIou = cov.checked > 0 ? sum / cov.checked : 0;
  return cov;
}

function anchorCoverage(ds: DetectionDataset, options: StatsOptions): AnchorCoverage {
  return anchorCoverageOf(imageBoxesOf(ds), ds.classNames.length, options);
}

/** The boxes of every sample of a source whose ground truth is known without decoding (file-backed sources with image sizes, in-memory ones). */
export function sourceBoxes(source: SampleSource): ImageBoxes[] {
  const out: ImageBoxes[] = [];
  for (let i = 0; i < source.length; i++) {
    const g = source.groundTruth(i);
    if (g) out.push({ width: g.width, height: g.height, boxes: g.boxes, labels: g.labels, crowd: g.crowd });
  }
  return out;
}
