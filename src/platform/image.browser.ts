/**
 * Images in a browser. JPEG is decoded by mozjpeg compiled to WebAssembly (@jsquash/jpeg): sharp,
 * the Node side's decoder, is libvips with mozjpeg too, and the pixels are the same bit for bit
 * (test/platform/decode.test.ts, on every real photo of ../shared/data, and again in Chromium by
 * test/browser/). PNG is decoded by @jsquash/png (lossless: the same pixels as any correct
 * decoder). Other formats (WebP, GIF, AVIF, BMP) go through the browser's own decoder
 * (`createImageBitmap`, colour profiles not applied), which need not match sharp's bit for bit.
 * Node twin: image.ts.
 */
import decodeJpeg, { init as initJpeg } from '@jsquash/jpeg/decode.js';
import decodePng, { init as initPng } from '@jsquash/png/decode.js';
import { fs } from './files.browser.js';
import type { ImageHeader, PlatformImages, RgbPixels } from './types.js';

/** Where the decoders' WebAssembly files are (default: beside this module, i.e. the bundle). */
let wasmBase: string = new URL('./', import.meta.url).href;
let jpegReady: Promise<void> | undefined;
let pngReady: Promise<unknown> | undefined;

/** Sets the URL of the folder holding `mozjpeg_dec.wasm` and `squoosh_png_bg.wasm`. */
export function setDecoderWasmBase(base: string): void {
  wasmBase = base.endsWith('/') ? base : `${base}/`;
  jpegReady = undefined;
  pngReady = undefined;
}

/** Uses already compiled decoder modules (Node tests; pages that compile them themselves). */
export function useDecoderModules(modules: { jpeg?: WebAssembly.Module; png?: WebAssembly.Module }): void {
  if (modules.jpeg) jpegReady = initJpeg(modules.jpeg);
  if (modules.png) pngReady = initPng(modules.png);
}

function jpeg(): Promise<void> {
  jpegReady ??= initJpeg({ locateFile: (file: string) => new URL(file, wasmBase).href });
  return jpegReady;
}

function png(): Promise<unknown> {
  pngReady ??= initPng(new URL('squoosh_png_bg.wasm', wasmBase).href);
  return pngReady;
}

const isJpeg = (b: Uint8Array): boolean => b.length > 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;
const isPng = (b: Uint8Array): boolean => b.length > 24 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47;

/** The EXIF orientation in an APP1 segment's payload (`Exif\0\0` + TIFF), if any. */
function exifOrientation(b: Uint8Array, start: number, end: number): number | undefined {
  if (end - start < 14 || b[start] !== 0x45 || b[start + 1] !== 0x78 || b[start + 2] !== 0x69 || b[start + 3] !== 0x66) return undefined;
  const tiff = start + 6;
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const little = b[tiff] === 0x49;
  if (!little && b[tiff] !== 0x4d) return undefined;
  const ifd = tiff + view.getUint32(tiff + 4, little);
  if (ifd + 2 > end) return undefined;
  const count = view.getUint16(ifd, little);
  for (let k = 0; k < count; k++) {
    const entry = ifd + 2 + 12 * k;
    if (entry + 12 > end) return undefined;
    if (view.getUint16(entry, little) === 0x0112) {
      const v = view.getUint16(entry + 8, little);
      return v >= 1 && v <= 8 ? v : undefined;
    }
  }
  return undefined;
}

/** Width, height and orientation from a JPEG's markers (SOFn, APP1 Exif). */
function jpegHeader(b: Uint8Array): ImageHeader {
  const out: ImageHeader = {};
  let i = 2;
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) throw new Error('corrupt JPEG: marker expected');
    const marker = b[i + 1]!;
    if (marker === 0xff) {
      i++;
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) break;
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      i += 2;
      continue;
    }
    const len = (b[i + 2]! << 8) | b[i + 3]!;
    const start = i + 4;
    const end = Math.min(b.length, i + 2 + len);
    if (marker === 0xe1 && out.orientation === undefined) out.orientation = exifOrientation(b, start, end);
    const sof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (sof && start + 5 <= b.length) {
      out.height = (b[start + 1]! << 8) | b[start + 2]!;
      out.width = (b[start + 3]! << 8) | b[start + 4]!;
    }
    i += 2 + len;
  }
  if (out.width === undefined) throw new Error('corrupt JPEG: no frame header');
  return out;
}

function pngHeader(b: Uint8Array): ImageHeader {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

function arrayBufferOf(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/** RGBA (ImageData's layout) to RGB, alpha dropped without compositing. */
function rgbaToRgb(rgba: Uint8ClampedArray | Uint8Array, width: number, height: number): RgbPixels {
  const n = width * height;
  const data = new Uint8Array(3 * n);
  for (let p = 0, q = 0, r = 0; p < n; p++, q += 3, r += 4) {
    data[q] = rgba[r]!;
    data[q + 1] = rgba[r + 1]!;
    data[q + 2] = rgba[r + 2]!;
  }
  return { data, width, height };
}

/** The browser's own decoder: colour profiles not applied, alpha not premultiplied. */
async function browserDecode(bytes: Uint8Array, autoOrient: boolean): Promise<ImageBitmap> {
  if (typeof createImageBitmap !== 'function') throw new Error('not a JPEG or PNG image (other formats need a browser decoder)');
  try {
    return await createImageBitmap(new Blob([arrayBufferOf(bytes)]), { colorSpaceConversion: 'none', premultiplyAlpha: 'none', imageOrientation: autoOrient ? 'from-image' : 'none' });
  } catch {
    throw new Error('not an image the browser can decode');
  }
}

function bitmapPixels(bitmap: ImageBitmap): RgbPixels {
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  ctx.drawImage(bitmap, 0, 0);
  return rgbaToRgb(ctx.getImageData(0, 0, bitmap.width, bitmap.height).data, bitmap.width, bitmap.height);
}

function checkSize(width: number, height: number, maxPixels: number): void {
  if (width * height > maxPixels) throw new Error(`${width} x ${height} pixels is over the limit of ${maxPixels}`);
}

export const images: PlatformImages = {
  async header(bytes) {
    if (isJpeg(bytes)) return jpegHeader(bytes);
    if (isPng(bytes)) return pngHeader(bytes);
    const bitmap = await browserDecode(bytes, false);
    const out = { width: bitmap.width, height: bitmap.height };
    bitmap.close();
    return out;
  },

  async fileHeader(file) {
    return images.header(await fs.readFile(file));
  },

  async decode(bytes, { maxPixels, autoOrient }) {
    if (isJpeg(bytes)) {
      const h = jpegHeader(bytes);
      checkSize(h.width!, h.height ?? 0, maxPixels);
      await jpeg();
      // preserveOrientation: apply the EXIF orientation (sharp's rotate()).
      const d = await decodeJpeg(arrayBufferOf(bytes), { preserveOrientation: autoOrient });
      return rgbaToRgb(d.data, d.width, d.height);
    }
    if (isPng(bytes)) {
      const h = pngHeader(bytes);
      checkSize(h.width!, h.height!, maxPixels);
      await png();
      const d = await decodePng(arrayBufferOf(bytes));
      return rgbaToRgb(d.data, d.width, d.height);
    }
    const bitmap = await browserDecode(bytes, autoOrient);
    try {
      checkSize(bitmap.width, bitmap.height, maxPixels);
      return bitmapPixels(bitmap);
    } finally {
      bitmap.close();
    }
  },

  async encode({ data, width, height }, encoding) {
    const rgba = new Uint8ClampedArray(4 * width * height);
    for (let p = 0, q = 0, r = 0; p < width * height; p++, q += 3, r += 4) {
      rgba[r] = data[q]!;
      rgba[r + 1] = data[q + 1]!;
      rgba[r + 2] = data[q + 2]!;
      rgba[r + 3] = 255;
    }
    const canvas = new OffscreenCanvas(width, height);
    canvas.getContext('2d')!.putImageData(new ImageData(rgba, width, height), 0, 0);
    const blob = await canvas.convertToBlob({ type: `image/${encoding}`, quality: 0.9 });
    return new Uint8Array(await blob.arrayBuffer());
  },
};
