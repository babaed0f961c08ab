import { anchorsForImage, concatLevels, RETINANET_ANCHOR_CONFIG, type AnchorConfig } from '../detection/anchors.js';
import { AnchorIndex } from '../detection/anchor_index.js';
import { resizeBoxes, resizedSize } from './transform.js';
import type { DetectionDataset } from './types.js';

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

/** Best IoU of each gt box (flat xyxy, resized-image pixels) with the anchors of a padded image. */
export function bestAnchorIou(boxes: Float32Array, index: AnchorIndex): Float32Array {
  const s = index.sparseIou(boxes);
  const best = new Float32Array(s.numGt);
  for (let j = 0; j < s.numGt; j++) {
    let m = 0;
    for (let k = s.start[j]!; k < s.start[j + 1]!; k++) if (s.iou[k]! > m) m = s.iou[k]!;
    best[j] = m;
  }
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

function anchorCoverage(ds: DetectionDataset, options: StatsOptions): AnchorCoverage {
  const minSize = options.minSize ?? 800;
  const maxSize = options.maxSize ?? 1333;
  const div = options.sizeDivisible ?? 32;
  const config = options.anchorConfig ?? RETINANET_ANCHOR_CONFIG;
  const cov: AnchorCoverage = { minSize, maxSize, checked: 0, uncovered: 0, uncoveredPerClass: new Array<number>(ds.classNames.length).fill(0), meanBestIou: 0 };
  // Anchors depend only on the padded size; datasets usually have few distinct ones.
  const indices = new Map<string, AnchorIndex>();
  let sum = 0;
  for (const im of ds.images) {
    if (im.width === undefined || im.height === undefined || im.labels.length === 0) continue;
    const keep: number[] = [];
    for (let i = 0; i < im.labels.length; i++) if (!im.crowd[i]) keep.push(i);
    if (keep.length === 0) continue;
    const [h, w] = resizedSize(im.height, im.width, minSize, maxSize);
    const ph = Math.ceil(h / div) * div;
    const pw = Math.ceil(w / div) * div;
    const key = `${ph}x${pw}`;
    let index = indices.get(key);
    if (!index) {
      index = new AnchorIndex(concatLevels(anchorsForImage(ph, pw, config)));
      indices.set(key, index);
    }
    const gt = new Float32Array(4 * keep.length);
    keep.forEach((i, k) => gt.set(im.boxes.subarray(4 * i, 4 * i + 4), 4 * k));
    const best = bestAnchorIou(resizeBoxes(gt, [im.height, im.width], [h, w]), index);
    keep.forEach((i, k) => {
      cov.checked++;
      sum += best[k]!;
      if (best[k]! < 0.5) {
        cov.uncovered++;
        const label = im.labels[i]!;
        if (label >= 0 && label < cov.uncoveredPerClass.length) cov.uncoveredPerClass[label]!++;
      }
    });
  }
  cov.meanBestIou = cov.checked > 0 ? sum / cov.checked : 0;
  return cov;
}
