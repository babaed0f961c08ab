/**
 * Images on Node: sharp (libvips, whose JPEG decoder is mozjpeg). Browser twin: image.browser.ts,
 * which decodes JPEG with mozjpeg compiled to WebAssembly: the same pixels, bit for bit
 * (test/platform/decode.test.ts).
 */
import sharp, { type Metadata } from 'sharp';
import type { ImageHeader, PlatformImages } from './types.js';

function headerOf(meta: Metadata): ImageHeader {
  return { width: meta.width, height: meta.height, orientation: meta.orientation };
}

export const images: PlatformImages = {
  async header(bytes) {
    return headerOf(await sharp(bytes, { limitInputPixels: false }).metadata());
  },

  async fileHeader(file) {
    return headerOf(await sharp(file).metadata());
  },

  async decode(bytes, { maxPixels, autoOrient }) {
    // ignoreIcc: PIL (and so torchvision) ignores embedded colour profiles; converting with them
    // would shift pixel values (by ~6/255 on some COCO images) away from what reference models saw.
    const input = sharp(bytes, { failOn: 'error', ignoreIcc: true, limitInputPixels: Math.ceil(maxPixels) });
    const { data, info } = await (autoOrient ? input.rotate() : input)
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`unexpected ${info.channels} channels after conversion to RGB`);
    return { data, width: info.width, height: info.height };
  },

  async encode({ data, width, height }, encoding) {
    const raw = sharp(data, { raw: { width, height, channels: 3 } });
    if (encoding === 'jpeg') return raw.jpeg({ quality: 90 }).toBuffer();
    if (encoding === 'webp') return raw.webp({ quality: 90 }).toBuffer();
    return raw.png().toBuffer();
  },
};
