/**
 * Images given to the browser API, as the library's RGB images. Encoded images (a URL, a Blob or
 * File, bytes) are decoded by the platform's decoder, which gives sharp's pixels bit for bit for
 * JPEG and PNG. Images the page has already decoded (an <img>, a canvas, an ImageBitmap,
 * ImageData, a video frame) are read back through a canvas; an <img> is decoded again from its
 * source without colour management, as sharp decodes (test/browser/ checks both on real photos).
 */
import { type ImageDecodeOptions, type RgbImage, decodeImage, hwcBytesToChw, loadImage } from '../io/image.js';

/** Anything the browser API detects on or trains with. */
export type ImageSource =
  | string
  | URL
  | Blob
  | ArrayBuffer
  | Uint8Array
  | ImageData
  | ImageBitmap
  | HTMLImageElement
  | HTMLCanvasElement
  | HTMLVideoElement
  | OffscreenCanvas
  | RgbImage;

function isRgbImage(x: unknown): x is RgbImage {
  return typeof x === 'object' && x !== null && (x as RgbImage).data instanceof Float32Array && typeof (x as RgbImage).width === 'number';
}

function fromImageData(d: ImageData): RgbImage {
  return { data: hwcBytesToChw(new Uint8Array(d.data.buffer, d.data.byteOffset, d.data.byteLength), d.width, d.height, 4), width: d.width, height: d.height };
}

/** Pixels of anything drawable, as the 2D canvas reads them back. */
function drawn(source: CanvasImageSource, width: number, height: number): RgbImage {
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  ctx.drawImage(source, 0, 0, width, height);
  return fromImageData(ctx.getImageData(0, 0, width, height));
}

/** Reads any {@link ImageSource} as an RGB image (CHW float32 in [0, 1]). */
export async function toRgbImage(source: ImageSource, options: ImageDecodeOptions = {}): Promise<RgbImage> {
  if (isRgbImage(source)) return source;
  if (typeof source === 'string' || source instanceof URL) {
    const url = new URL(String(source), globalThis.document?.baseURI ?? globalThis.location?.href).href;
    return loadImage(url, options);
  }
  if (source instanceof Uint8Array) return decodeImage(source, '<bytes>', options);
  if (source instanceof ArrayBuffer) return decodeImage(new Uint8Array(source), '<bytes>', options);
  if (typeof Blob !== 'undefined' && source instanceof Blob) {
    return decodeImage(new Uint8Array(await source.arrayBuffer()), (source as File).name ?? '<blob>', options);
  }
  if (typeof ImageData !== 'undefined' && source instanceof ImageData) return fromImageData(source);
  if (typeof HTMLImageElement !== 'undefined' && source instanceof HTMLImageElement) {
    if (!source.complete) await source.decode();
    // Decoded again without colour management (sharp ignores embedded profiles; an <img> applies them).
    const bitmap = await createImageBitmap(source, { colorSpaceConversion: 'none', premultiplyAlpha: 'none', imageOrientation: 'from-image' });
    try {
      return drawn(bitmap, bitmap.width, bitmap.height);
    } finally {
      bitmap.close();
    }
  }
  if (typeof HTMLVideoElement !== 'undefined' && source instanceof HTMLVideoElement) return drawn(source, source.videoWidth, source.videoHeight);
  const s = source as ImageBitmap | HTMLCanvasElement | OffscreenCanvas;
  return drawn(s, s.width, s.height);
}
