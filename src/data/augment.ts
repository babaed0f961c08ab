import type { Rng } from '../core/random.js';
import type { RgbImage } from './types.js';

/** Mirrors flat xyxy boxes of an image `width` pixels wide: `x1' = W - x2, x2' = W - x1` (torchvision's references). */
export function hflipBoxes(boxes: Float32Array, width: number): Float32Array {
  const out = new Float32Array(boxes.length);
  for (let i = 0; i < boxes.length; i += 4) {
    out[i] = width - boxes[i + 2]!;
    out[i + 1] = boxes[i + 1]!;
    out[i + 2] = width - boxes[i]!;
    out[i + 3] = boxes[i + 3]!;
  }
  return out;
}

/** Mirrors a CHW image left-right. Returns a new image. */
export function hflipImage(image: RgbImage): RgbImage {
  const { width: W, height: H } = image;
  const out = new Float32Array(image.data.length);
  for (let row = 0; row < 3 * H; row++) {
    const o = row * W;
    for (let x = 0; x < W; x++) out[o + x] = image.data[o + W - 1 - x]!;
  }
  return { data: out, width: W, height: H };
}

/** Training augmentation settings. */
export interface AugmentOptions {
  /** Probability of a horizontal flip (default 0.5). */
  flipProbability?: number;
  /**
   * Short-side lengths to choose from per image (scale jitter), e.g. `[640, 672, ..., 800]`.
   * Default: no jitter (`minSize` is left undefined and the transform's default applies).
   */
  minSizes?: readonly number[];
}

/** An augmented sample; `minSize` is the short side chosen for it, to pass to the transform. */
export interface AugmentedSample {
  image: RgbImage;
  /** Flat xyxy boxes in pixels of `image`. */
  boxes: Float32Array;
  flipped: boolean;
  minSize?: number;
}

/**
 * Random horizontal flip (image and boxes together) and a random short-side choice, drawn from
 * `rng` in a fixed order (flip, then size) so a seed reproduces the same augmentation.
 */
export function augment(image: RgbImage, boxes: Float32Array, rng: Rng, options: AugmentOptions = {}): AugmentedSample {
  const flipped = rng.bernoulli(options.flipProbability ?? 0.5);
  const sample: AugmentedSample = flipped
    ? { image: hflipImage(image), boxes: hflipBoxes(boxes, image.width), flipped }
    : { image, boxes, flipped };
  if (options.minSizes && options.minSizes.length > 0) sample.minSize = rng.choice(options.minSizes);
  return sample;
}

/** The usual multi-scale training sizes: `from` to `to` in steps of `step` (e.g. 640..800 by 32). */
export function scaleRange(from: number, to: number, step = 32): number[] {
  const out: number[] = [];
  for (let s = from; s <= to; s += step) out.push(s);
  return out;
}
