/**
 * Image grids: many images with their boxes drawn, each fitted into a tile, laid out in rows
 * (e.g. ground truth beside predictions for a set of validation images). Images are scaled to
 * the tile before the boxes are drawn, so captions have one size across the grid.
 */
import { writeFile } from 'node:fs/promises';
import sharp, { type OverlayOptions } from 'sharp';
import { chwToHwcBytes, encodeByExtension, ImageError, type RgbImage } from './image.js';
import { type DrawOptions, type DrawnBoxes, detectionsSvg } from './draw.js';

/** One tile: an image (decoded, or a file path), the boxes drawn on it (in its pixels) and how. */
export interface GridTile {
  image: RgbImage | string;
  drawn: DrawnBoxes;
  options?: DrawOptions;
}

export interface GridOptions {
  /** Tiles per row (default 4). */
  columns?: number;
  /** Size each image is fitted into, keeping its aspect ratio (default 400 x 300). */
  tileWidth?: number;
  tileHeight?: number;
  /** Pixels between tiles (default 6). */
  gap?: number;
}

/** One tile: the image scaled to fit (tw, th), the boxes drawn over it, padded to exactly (tw, th). */
async function renderTile(t: GridTile, tw: number, th: number): Promise<Buffer> {
  const base = typeof t.image === 'string' ? sharp(t.image, { failOn: 'error' }).rotate().removeAlpha() : sharp(chwToHwcBytes(t.image), { raw: { width: t.image.width, height: t.image.height, channels: 3 } });
  let scaled: { data: Buffer; info: { width: number; height: number } };
  let source: { width: number; height: number };
  try {
    if (typeof t.image === 'string') {
      const { info } = await base.clone().raw().toBuffer({ resolveWithObject: true });
      source = { width: info.width, height: info.height };
    } else source = { width: t.image.width, height: t.image.height };
    scaled = await base.resize({ width: tw, height: th, fit: 'inside' }).png().toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new ImageError(`cannot read image ${String(t.image)}: ${(err as Error).message}`);
  }
  const { width, height } = scaled.info;
  const sx = width / source.width, sy = height / source.height;
  const boxes = Float32Array.from(t.drawn.boxes, (v, i) => v * (i % 2 === 0 ? sx : sy));
  const svg = detectionsSvg(width, height, { ...t.drawn, boxes }, { lineWidth: 2, fontSize: 12, ...t.options });
  const drawn = await sharp(scaled.data).composite([{ input: Buffer.from(svg), top: 0, left: 0 }]).png().toBuffer();
  return sharp(drawn).resize({ width: tw, height: th, fit: 'contain', background: '#ffffff' }).png().toBuffer();
}

/** The grid as encoded bytes (format from `file`'s extension: .jpg/.jpeg, .webp, otherwise PNG). */
export async function renderGrid(tiles: readonly GridTile[], file: string, opts: GridOptions = {}): Promise<Buffer> {
  const cols = Math.max(1, Math.min(opts.columns ?? 4, tiles.length));
  const rows = Math.max(1, Math.ceil(tiles.length / cols));
  const tw = opts.tileWidth ?? 400, th = opts.tileHeight ?? 300, gap = opts.gap ?? 6;
  const width = cols * tw + (cols + 1) * gap, height = rows * th + (rows + 1) * gap;
  const layers: OverlayOptions[] = [];
  for (const [i, t] of tiles.entries()) {
    layers.push({ input: await renderTile(t, tw, th), left: gap + (i % cols) * (tw + gap), top: gap + Math.floor(i / cols) * (th + gap) });
  }
  const canvas = sharp({ create: { width, height, channels: 3, background: '#ffffff' } }).composite(layers);
  return encodeByExtension(sharp(await canvas.png().toBuffer()), file);
}

/** {@link renderGrid} written to `file`. */
export async function writeGrid(tiles: readonly GridTile[], file: string, opts: GridOptions = {}): Promise<void> {
  await writeFile(file, await renderGrid(tiles, file, opts));
}
