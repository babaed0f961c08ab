import type { RgbImage } from './types.js';

/**
 * Preprocessing that reproduces torchvision 0.14's `GeneralizedRCNNTransform` (eval mode) number
 * for number: normalize, then bilinear resize (torch's `interpolate` with a recomputed scale factor,
 * `align_corners=False`), then zero padding to a multiple of `sizeDivisible` into one NCHW batch.
 * Where torch computes in float32 we round with Math.fround so the output sizes match exactly
 * (e.g. a 21 px side scaled by 45/21 becomes 44, not 45) and the pixels match to ~1e-7.
 */

/** ImageNet RGB mean used by torchvision's detection models. */
export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
/** ImageNet RGB standard deviation used by torchvision's detection models. */
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];

/** Options of {@link transformBatch}; defaults are RetinaNet's (800, 1333, ImageNet statistics, 32). */
export interface TransformOptions {
  /** Target length in pixels of the short side. */
  minSize?: number;
  /** Upper bound in pixels of the long side after resizing. */
  maxSize?: number;
  mean?: readonly number[];
  std?: readonly number[];
  /** The padded batch's height and width are multiples of this. */
  sizeDivisible?: number;
  /** Short side per image, overriding `minSize` (training-time scale jitter, see augment.ts). */
  perImageMinSize?: readonly (number | undefined)[];
}

const f = Math.fround;

/** The scale factor torchvision applies to an image of `height x width` (a float32 value). */
export function resizeScale(height: number, width: number, minSize: number, maxSize: number): number {
  // `python_float / tensor` is `tensor.reciprocal() * python_float` in torch, which can differ
  // from a correctly rounded division by one ulp and so change the floor() of the output size.
  const lo = f(1 / Math.min(height, width));
  const hi = f(1 / Math.max(height, width));
  return Math.min(f(lo * minSize), f(hi * maxSize));
}

/**
 * Output `[height, width]` of torchvision's resize: `floor(side * scale)` in double precision, as
 * torch's interpolate. A side that would round to 0 (a 5000 x 2 strip, where torchvision fails)
 * is kept at 1 pixel.
 */
export function resizedSize(height: number, width: number, minSize: number, maxSize: number): [number, number] {
  const s = resizeScale(height, width, minSize, maxSize);
  return [Math.max(1, Math.floor(height * s)), Math.max(1, Math.floor(width * s))];
}

/** Returns `(image - mean) / std` per channel, in float32 as torch does. Input is CHW with 3 channels. */
export function normalize(image: RgbImage, mean: readonly number[] = IMAGENET_MEAN, std: readonly number[] = IMAGENET_STD): RgbImage {
  const plane = image.width * image.height;
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const m = f(mean[c]!);
    const s = f(std[c]!);
    const base = c * plane;
    for (let i = 0; i < plane; i++) out[base + i] = f(image.data[base + i]! - m) / s;
  }
  return { data: out, width: image.width, height: image.height };
}

interface AxisWeights {
  i0: Int32Array;
  i1: Int32Array;
  w0: Float32Array;
  w1: Float32Array;
}

// torch's compute_source_index_and_lambda (aten/src/ATen/native/UpSample.h), align_corners=False:
// a float32 scale, but the source index and lambda in double (the CPU accumulate type), then the
// lambdas stored as float32. Doing the index in float32 instead is off by up to 3e-5 per weight.
function axisWeights(inSize: number, outSize: number): AxisWeights {
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const w0 = new Float32Array(outSize);
  const w1 = new Float32Array(outSize);
  const scale = f(inSize / outSize);
  for (let d = 0; d < outSize; d++) {
    if (inSize === outSize) {
      i0[d] = d;
      i1[d] = d;
      w0[d] = 1;
      w1[d] = 0;
      continue;
    }
    let src = scale * (d + 0.5) - 0.5;
    if (src < 0) src = 0;
    const a = Math.trunc(src);
    const l1 = f(Math.min(Math.max(src - a, 0), 1));
    i0[d] = a;
    i1[d] = a + (a < inSize - 1 ? 1 : 0);
    w1[d] = l1;
    w0[d] = f(1 - l1);
  }
  return { i0, i1, w0, w1 };
}

/**
 * Bilinear resize of a CHW float image with `channels` planes, matching
 * `torch.nn.functional.interpolate(mode="bilinear", align_corners=False)` without antialiasing.
 */
export function resizeBilinear(
  data: Float32Array,
  channels: number,
  height: number,
  width: number,
  outHeight: number,
  outWidth: number,
): Float32Array {
  // Same size: torch's kernel copies the input (and the weights would be 1 and 0 anyway). Images
  // already at the model's size (a 640x480 photo at short side 480, the demo's 192 px) skip ~4 ns
  // a value of interpolation: ~9 ms per 640x480 image, on the training step's critical path.
  if (outHeight === height && outWidth === width) return data.slice(0, channels * height * width);
  const ys = axisWeights(height, outHeight);
  const xs = axisWeights(width, outWidth);
  const out = new Float32Array(channels * outHeight * outWidth);
  for (let c = 0; c < channels; c++) {
    const src = c * height * width;
    let o = c * outHeight * outWidth;
    for (let y = 0; y < outHeight; y++) {
      const r0 = src + ys.i0[y]! * width;
      const r1 = src + ys.i1[y]! * width;
      const wy0 = ys.w0[y]!;
      const wy1 = ys.w1[y]!;
      for (let x = 0; x < outWidth; x++) {
        const a = xs.i0[x]!;
        const b = xs.i1[x]!;
        const wx0 = xs.w0[x]!;
        const wx1 = xs.w1[x]!;
        const top = f(f(data[r0 + a]! * wx0) + f(data[r0 + b]! * wx1));
        const bottom = f(f(data[r1 + a]! * wx0) + f(data[r1 + b]! * wx1));
        out[o++] = f(top * wy0) + f(bottom * wy1);
      }
    }
  }
  return out;
}

/** Resizes an RGB image as torchvision's `_resize_image_and_masks` (no normalization). */
export function resizeImage(image: RgbImage, minSize: number, maxSize: number): RgbImage {
  const [h, w] = resizedSize(image.height, image.width, minSize, maxSize);
  return { data: resizeBilinear(image.data, 3, image.height, image.width, h, w), width: w, height: h };
}

/**
 * Scales flat xyxy boxes from an image of size `from` = `[height, width]` to one of size `to`,
 * exactly as torchvision's `resize_boxes` (float32 ratios `to / from` per axis). Returns a new array.
 */
export function resizeBoxes(boxes: Float32Array, from: readonly [number, number], to: readonly [number, number]): Float32Array {
  const rh = f(to[0] / from[0]);
  const rw = f(to[1] / from[1]);
  const out = new Float32Array(boxes.length);
  for (let i = 0; i < boxes.length; i += 4) {
    out[i] = boxes[i]! * rw;
    out[i + 1] = boxes[i + 1]! * rh;
    out[i + 2] = boxes[i + 2]! * rw;
    out[i + 3] = boxes[i + 3]! * rh;
  }
  return out;
}

/** A padded NCHW batch. `data.length === shape[0] * shape[1] * shape[2] * shape[3]`. */
export interface ImageBatch {
  data: Float32Array;
  /** `[N, 3, H, W]`, H and W multiples of the size divisor. */
  shape: [number, number, number, number];
}

/** Copies CHW images into one zero-padded NCHW batch (bottom/right padding), as torchvision's `batch_images`. */
export function batchImages(images: readonly RgbImage[], sizeDivisible = 32): ImageBatch {
  if (images.length === 0) throw new RangeError('batchImages needs at least one image');
  const maxH = Math.max(...images.map((im) => im.height));
  const maxW = Math.max(...images.map((im) => im.width));
  const H = Math.ceil(maxH / sizeDivisible) * sizeDivisible;
  const W = Math.ceil(maxW / sizeDivisible) * sizeDivisible;
  const data = new Float32Array(images.length * 3 * H * W);
  images.forEach((im, n) => {
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < im.height; y++) {
        const from = (c * im.height + y) * im.width;
        data.set(im.data.subarray(from, from + im.width), ((n * 3 + c) * H + y) * W);
      }
    }
  });
  return { data, shape: [images.length, 3, H, W] };
}

/** Result of {@link transformBatch}. Sizes are `[height, width]`. */
export interface TransformedBatch extends ImageBatch {
  /** Size of each image after resizing, before padding (torchvision's `image_sizes`). */
  imageSizes: [number, number][];
  /** Size of each input image. */
  originalSizes: [number, number][];
  /** Target boxes scaled to the resized images, when boxes were given. */
  boxes?: Float32Array[];
}

/**
 * The whole `GeneralizedRCNNTransform.forward` in eval mode: normalize, resize, pad, batch.
 * `boxes[i]` (flat xyxy, original pixels of `images[i]`) are resized along when given.
 */
export function transformBatch(
  images: readonly RgbImage[],
  boxes?: readonly Float32Array[],
  options: TransformOptions = {},
): TransformedBatch {
  const minSize = options.minSize ?? 800;
  const maxSize = options.maxSize ?? 1333;
  const resized = images.map((im, i) => resizeImage(normalize(im, options.mean, options.std), options.perImageMinSize?.[i] ?? minSize, maxSize));
  const batch = batchImages(resized, options.sizeDivisible ?? 32);
  const imageSizes = resized.map((im): [number, number] => [im.height, im.width]);
  const originalSizes = images.map((im): [number, number] => [im.height, im.width]);
  const result: TransformedBatch = { ...batch, imageSizes, originalSizes };
  if (boxes) result.boxes = boxes.map((b, i) => resizeBoxes(b, originalSizes[i]!, imageSizes[i]!));
  return result;
}

/** Maps boxes predicted on a resized image (size `imageSize`) back to original pixels, as torchvision's `postprocess`. */
export function postprocessBoxes(
  boxes: Float32Array,
  imageSize: readonly [number, number],
  originalSize: readonly [number, number],
): Float32Array {
  return resizeBoxes(boxes, imageSize, originalSize);
}
