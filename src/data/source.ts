/**
 * Where training and validation samples come from: a dataset on disk (images decoded on demand)
 * or samples held in memory (the built-in synthetic data). Crowd boxes are left out of the
 * training targets, as RetinaNet's matcher has no notion of them.
 */
import { loadImage } from '../io/image.js';
import type { DetectionDataset, RgbImage } from './types.js';
import { type CocoAnnotation, type CocoDataset, xyxyToCocoBox } from '../eval/types.js';

/** One sample: an RGB image in [0, 1] with its boxes (flat xyxy, pixels) and 0-based labels. */
export interface Sample {
  image: RgbImage;
  boxes: Float32Array;
  labels: Int32Array;
}

export interface SampleSource {
  readonly length: number;
  readonly classNames: readonly string[];
  /** Category id per class index, for COCO output. */
  readonly categoryIds: readonly number[];
  /** Image id of sample i (COCO `image_id`). */
  imageId(i: number): number;
  /** A short name for messages (file name or `synthetic #i`). */
  describe(i: number): string;
  /** Width / height of sample i when known without decoding (aspect-ratio grouping). */
  aspect(i: number): number | undefined;
  get(i: number): Promise<Sample>;
  /** The dataset behind a file-backed source: lets a worker thread rebuild the source itself. */
  readonly dataset?: DetectionDataset;
  /** Ground truth of sample i for evaluation (crowd boxes included, flagged). */
  groundTruth(i: number): { boxes: Float32Array; labels: Int32Array; crowd: Uint8Array; width: number; height: number } | undefined;
}

function withoutCrowd(boxes: Float32Array, labels: Int32Array, crowd: Uint8Array): { boxes: Float32Array; labels: Int32Array } {
  if (!crowd.some((c) => c)) return { boxes, labels };
  const keep = [...labels.keys()].filter((k) => !crowd[k]);
  return {
    boxes: Float32Array.from(keep.flatMap((k) => [boxes[4 * k]!, boxes[4 * k + 1]!, boxes[4 * k + 2]!, boxes[4 * k + 3]!])),
    labels: Int32Array.from(keep.map((k) => labels[k]!)),
  };
}

/** A dataset read from disk; images are decoded when a sample is requested. */
export function datasetSource(ds: DetectionDataset): SampleSource {
  return {
    dataset: ds,
    length: ds.images.length,
    classNames: ds.classNames,
    categoryIds: ds.categoryIds,
    imageId: (i) => ds.images[i]!.id,
    describe: (i) => ds.images[i]!.file,
    aspect: (i) => {
      const im = ds.images[i]!;
      return im.width && im.height ? im.width / im.height : undefined;
    },
    async get(i) {
      const im = ds.images[i]!;
      const image = await loadImage(im.file);
      return { image, ...withoutCrowd(im.boxes, im.labels, im.crowd) };
    },
    groundTruth(i) {
      const im = ds.images[i]!;
      if (!im.width || !im.height) return undefined;
      return { boxes: im.boxes, labels: im.labels, crowd: im.crowd, width: im.width, height: im.height };
    },
  };
}

/** Samples already in memory (ids 1..n unless given). */
export function memorySource(samples: readonly (Sample & { id?: number })[], classNames: readonly string[]): SampleSource {
  return {
    length: samples.length,
    classNames,
    categoryIds: classNames.map((_, i) => i + 1),
    imageId: (i) => samples[i]!.id ?? i + 1,
    describe: (i) => `synthetic #${samples[i]!.id ?? i + 1}`,
    aspect: (i) => samples[i]!.image.width / samples[i]!.image.height,
    get: async (i) => samples[i]!,
    groundTruth(i) {
      const s = samples[i]!;
      return { boxes: s.boxes, labels: s.labels, crowd: new Uint8Array(s.labels.length), width: s.image.width, height: s.image.height };
    },
  };
}

/** COCO ground truth for a source (areas are box areas; crowd flags kept). */
export async function cocoGroundTruth(source: SampleSource, indices: readonly number[] = [...Array(source.length).keys()]): Promise<CocoDataset> {
  const images = [];
  const annotations: CocoAnnotation[] = [];
  for (const i of indices) {
    let gt = source.groundTruth(i);
    if (!gt) {
      const s = await source.get(i);
      gt = { boxes: s.boxes, labels: s.labels, crowd: new Uint8Array(s.labels.length), width: s.image.width, height: s.image.height };
    }
    const id = source.imageId(i);
    images.push({ id, width: gt.width, height: gt.height });
    for (let k = 0; k < gt.labels.length; k++) {
      const bbox = xyxyToCocoBox(gt.boxes, k);
      annotations.push({
        id: annotations.length + 1,
        image_id: id,
        category_id: source.categoryIds[gt.labels[k]!]!,
        bbox,
        area: bbox[2] * bbox[3],
        iscrowd: gt.crowd[k] ? 1 : 0,
      });
    }
  }
  return { images, annotations, categories: source.classNames.map((name, i) => ({ id: source.categoryIds[i]!, name })) };
}
