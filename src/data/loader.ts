import { augment, type AugmentOptions } from './augment.js';
import { loadImage } from './image.js';
import { Rng } from './random.js';
import { SYNTHETIC_CLASSES, syntheticSample, type SyntheticOptions } from './synthetic.js';
import { transformBatch, type TransformedBatch, type TransformOptions } from './transform.js';
import type { DetectionDataset, RgbImage } from './types.js';

/** One training/evaluation sample: an image in [0, 1] with its boxes (flat xyxy, pixels of `image`) and labels. */
export interface Sample {
  /** Dataset image id (COCO id), to match predictions with ground truth. */
  id: number;
  image: RgbImage;
  boxes: Float32Array;
  labels: Int32Array;
}

/** Random access to samples, whether decoded from files or generated. */
export interface SampleSource {
  readonly length: number;
  readonly classNames: readonly string[];
  get(index: number): Promise<Sample>;
}

/**
 * Samples of a dataset, decoding each image when asked. Crowd boxes are dropped (as torchvision's
 * COCO training references do) unless `keepCrowd`; difficult boxes are kept.
 */
export function datasetSource(dataset: DetectionDataset, options: { keepCrowd?: boolean } = {}): SampleSource {
  return {
    length: dataset.images.length,
    classNames: dataset.classNames,
    async get(index: number): Promise<Sample> {
      const im = dataset.images[index];
      if (!im) throw new RangeError(`sample ${index} out of range (${dataset.images.length})`);
      const image = await loadImage(im.file);
      if (options.keepCrowd || !im.crowd.includes(1)) return { id: im.id, image, boxes: im.boxes, labels: im.labels };
      const keep = [...im.labels.keys()].filter((i) => !im.crowd[i]);
      const boxes = new Float32Array(4 * keep.length);
      keep.forEach((i, k) => boxes.set(im.boxes.subarray(4 * i, 4 * i + 4), 4 * k));
      return { id: im.id, image, boxes, labels: Int32Array.from(keep, (i) => im.labels[i]!) };
    },
  };
}

/** Samples of the synthetic shapes dataset, generated on demand (nothing touches the disk). */
export function syntheticSource(options: SyntheticOptions = {}): SampleSource {
  return {
    length: options.count ?? 200,
    classNames: SYNTHETIC_CLASSES,
    async get(index: number): Promise<Sample> {
      const s = syntheticSample(index, options);
      return { id: s.id, image: s.image, boxes: s.boxes, labels: s.labels };
    },
  };
}

/** Options of {@link batches}. */
export interface BatchOptions {
  batchSize: number;
  /** Shuffle the order each epoch (default false). */
  shuffle?: boolean;
  /** Seed of shuffling and augmentation (default 0); epoch `e` uses a stream derived from it. */
  seed?: number;
  epoch?: number;
  /** Augmentation (training); omit for evaluation. */
  augment?: AugmentOptions;
  /** Preprocessing options (defaults: 800 / 1333, ImageNet statistics). */
  transform?: TransformOptions;
  /** Keep a last batch smaller than `batchSize` (default true). */
  keepLast?: boolean;
}

/** A preprocessed batch ready for the network, with its targets in resized-image pixels. */
export interface Batch extends TransformedBatch {
  ids: number[];
  /** Boxes per image, scaled to `imageSizes` (what the loss and anchors see). */
  boxes: Float32Array[];
  labels: Int32Array[];
}

/**
 * One epoch of preprocessed batches: order (optionally shuffled), augmentation (flip, scale
 * jitter) and {@link transformBatch}, all reproducible from `seed` and `epoch`.
 */
export async function* batches(source: SampleSource, options: BatchOptions): AsyncGenerator<Batch> {
  if (!(options.batchSize >= 1)) throw new RangeError('batchSize must be >= 1');
  const rng = new Rng(Math.imul((options.seed ?? 0) + 1, 0x9e3779b1) ^ Math.imul((options.epoch ?? 0) + 1, 0x85ebca6b));
  const order = [...Array(source.length).keys()];
  if (options.shuffle) rng.shuffle(order);
  const keepLast = options.keepLast ?? true;
  for (let at = 0; at < order.length; at += options.batchSize) {
    const idx = order.slice(at, at + options.batchSize);
    if (idx.length < options.batchSize && !keepLast) break;
    const samples = await Promise.all(idx.map((i) => source.get(i)));
    const images: RgbImage[] = [];
    const boxes: Float32Array[] = [];
    const minSizes: (number | undefined)[] = [];
    for (const s of samples) {
      if (options.augment) {
        const a = augment(s.image, s.boxes, rng, options.augment);
        images.push(a.image);
        boxes.push(a.boxes);
        minSizes.push(a.minSize);
      } else {
        images.push(s.image);
        boxes.push(s.boxes);
        minSizes.push(undefined);
      }
    }
    const t = transformBatch(images, boxes, { ...options.transform, perImageMinSize: minSizes });
    yield { ...t, boxes: t.boxes!, ids: samples.map((s) => s.id), labels: samples.map((s) => s.labels) };
  }
}
