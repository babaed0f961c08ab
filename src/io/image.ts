import type { Sharp } from 'sharp';
import { InputError } from '../core/errors.js';
import { fs, path } from '../platform/files.js';
import { images } from '../platform/image.js';
import type { ImageEncoding } from '../platform/types.js';

const { readFile, writeFile } = fs;

/** An RGB image, CHW float32. `data.length === 3 * height * width`; values in [0, 1] unless normalized. */
export interface RgbImage {
  data: Float32Array;
  width: number;
  height: number;
}

/** An image file that is missing, unreadable or not a decodable JPEG/PNG/WebP/...; the message names the file. */
export class ImageError extends InputError {
  override name = 'ImageError';
}

function describe(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOENT') return 'no such file';
  if (e.code === 'EACCES') return 'permission denied';
  if (e.code === 'EISDIR') return 'is a directory';
  return (e.message ?? String(err)).split('\n')[0]!;
}

/** Interleaved 8-bit RGB (HWC) to CHW float32 in [0, 1]. */
export function hwcBytesToChw(bytes: Uint8Array, width: number, height: number, channels = 3): Float32Array {
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let i = 0, p = 0; p < plane; p++, i += channels) {
    out[p] = bytes[i]! / 255;
    out[plane + p] = bytes[i + 1]! / 255;
    out[2 * plane + p] = bytes[i + 2]! / 255;
  }
  return out;
}

/** CHW float image (values in [0, 1], clamped) to interleaved 8-bit RGB bytes, rounding to nearest. */
export function chwToHwcBytes(image: RgbImage): Uint8Array {
  const plane = image.width * image.height;
  const out = new Uint8Array(3 * plane);
  for (let p = 0, i = 0; p < plane; p++, i += 3) {
    for (let c = 0; c < 3; c++) {
      const v = image.data[c * plane + p]!;
      out[i + c] = v <= 0 ? 0 : v >= 1 ? 255 : Math.round(v * 255);
    }
  }
  return out;
}

/**
 * Images above this many pixels are refused before decoding (100 MP: a 50 MP photo decodes to
 * 600 MB of float32; a "decompression bomb" declaring 100000 x 100000 would need 120 GB).
 * The RETINANET_MAX_PIXELS environment variable changes the default (worker threads inherit it).
 */
export const DEFAULT_MAX_PIXELS = 100_000_000;

function megapixels(n: number): string {
  return String(Number((n / 1e6).toPrecision(3)));
}

function defaultMaxPixels(): number {
  const v = Number(globalThis.process?.env?.['RETINANET_MAX_PIXELS']);
  return Number.isFinite(v) && v > 0 ? v : DEFAULT_MAX_PIXELS;
}

/** Options of {@link decodeImage} and {@link loadImage}. */
export interface ImageDecodeOptions {
  /** Refuse images with more pixels than this (default {@link DEFAULT_MAX_PIXELS}). */
  maxPixels?: number;
  /**
   * Apply the EXIF orientation (default true), as a photo viewer shows the image. Set false for
   * annotations made on the stored pixels (what plain PIL `Image.open` gives).
   */
  autoOrient?: boolean;
}

/**
 * Decodes an encoded image (JPEG, PNG, WebP, GIF, TIFF... whatever sharp reads) to RGB CHW float32 in [0, 1].
 * EXIF orientation is applied unless `autoOrient: false`; grey is expanded to RGB; alpha is
 * dropped without compositing, like PIL's `convert("RGB")` that torchvision pipelines use.
 * `name` is used in error messages.
 */
export async function decodeImage(bytes: Uint8Array, name = '<buffer>', options: ImageDecodeOptions = {}): Promise<RgbImage> {
  const maxPixels = options.maxPixels ?? defaultMaxPixels();
  // The header's size is checked first: a bomb is refused before any pixel is decoded.
  let header: { width?: number; height?: number };
  try {
    header = await images.header(bytes);
  } catch (err) {
    throw new ImageError(`cannot decode image ${name}: ${describe(err)}`);
  }
  if (header.width !== undefined && header.height !== undefined && header.width * header.height > maxPixels) {
    throw new ImageError(
      `image ${name} is ${header.width} x ${header.height} pixels (${megapixels(header.width * header.height)} MP), over the limit of ${megapixels(maxPixels)} MP; refused (a decompression bomb, or raise the limit)`,
    );
  }
  try {
    // The platform's decoder (sharp in Node) ignores embedded colour profiles, as PIL (and so
    // torchvision) does: converting with them would shift pixel values (by ~6/255 on some COCO
    // images) away from what reference models saw.
    const { data, width, height } = await images.decode(bytes, { maxPixels, autoOrient: options.autoOrient !== false });
    return { data: hwcBytesToChw(data, width, height), width, height };
  } catch (err) {
    throw new ImageError(`cannot decode image ${name}: ${describe(err)}`);
  }
}

/** Reads and decodes an image file; see {@link decodeImage}. Errors name the file. */
export async function loadImage(file: string, options: ImageDecodeOptions = {}): Promise<RgbImage> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new ImageError(`cannot read image ${file}: ${describe(err)}`);
  }
  return decodeImage(bytes, file, options);
}

/** Width and height of an image file as {@link loadImage} would return them with the same options, read from the header only. */
export async function imageSize(file: string, options: ImageDecodeOptions = {}): Promise<{ width: number; height: number }> {
  try {
    const meta = await images.fileHeader(file);
    if (meta.width === undefined || meta.height === undefined) throw new Error('no size in header');
    const swap = options.autoOrient !== false && (meta.orientation ?? 1) >= 5; // EXIF orientations 5-8 are transposed
    return swap ? { width: meta.height, height: meta.width } : { width: meta.width, height: meta.height };
  } catch (err) {
    throw new ImageError(`cannot read image ${file}: ${describe(err)}`);
  }
}

/** Encodes an RGB CHW image ([0, 1]) as PNG, or JPEG (quality 90) when `file` ends in .jpg/.jpeg, or WebP for .webp, and writes it. */
export async function saveImage(image: RgbImage, file: string): Promise<void> {
  await writeFile(file, await images.encode({ data: chwToHwcBytes(image), width: image.width, height: image.height }, encodingFor(file)));
}

/** The encoding an output file's extension asks for (png default). */
function encodingFor(file: string): ImageEncoding {
  const ext = path.extname(file).toLowerCase();
  return ext === '.jpg' || ext === '.jpeg' ? 'jpeg' : ext === '.webp' ? 'webp' : 'png';
}

/** Encodes a sharp pipeline according to the output file's extension (png default). */
export async function encodeByExtension(pipeline: Sharp, file: string): Promise<Buffer> {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.jpg' || ext === '.jpeg') return pipeline.jpeg({ quality: 90 }).toBuffer();
  if (ext === '.webp') return pipeline.webp({ quality: 90 }).toBuffer();
  return pipeline.png().toBuffer();
}
