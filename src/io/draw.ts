import { writeFile } from 'node:fs/promises';
import sharp from 'sharp';
import { chwToHwcBytes, encodeByExtension, ImageError } from './image.js';
import type { RgbImage } from './image.js';

/** Boxes to draw: flat xyxy in pixels of the image drawn on, one label (class index) per box, optional scores in [0, 1]. */
export interface DrawnBoxes {
  boxes: Float32Array;
  labels: Int32Array;
  scores?: Float32Array;
  /** Per-box colour overriding the class colour (e.g. red for a box no anchor covers); undefined entries keep it. */
  colors?: readonly (string | undefined)[];
  /** Per-box caption overriding "name score"; undefined entries keep it. */
  captions?: readonly (string | undefined)[];
  /** Per-box dashed outline (e.g. ground truth drawn beside predictions). */
  dashed?: readonly boolean[];
}

/** Options of {@link renderDetections}. */
export interface DrawOptions {
  /** Names shown instead of class indices. */
  classNames?: readonly string[];
  /** Boxes scoring below this are not drawn (default 0). */
  minScore?: number;
  /** Stroke width in pixels (default: scales with the image, at least 2). */
  lineWidth?: number;
  /** Label font size in pixels (default: scales with the image, at least 11). */
  fontSize?: number;
  /** A line written in the image's bottom-left corner (e.g. the score threshold of the drawing). */
  caption?: string;
}

/** A distinct, stable colour per class (golden-angle hue steps). */
export function classColor(label: number): string {
  const hue = (label * 137.508) % 360;
  return `hsl(${hue.toFixed(1)}, 85%, 50%)`;
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The SVG overlay (same size as the image) with one rectangle and caption per box. */
export function detectionsSvg(width: number, height: number, drawn: DrawnBoxes, options: DrawOptions = {}): string {
  const lw = options.lineWidth ?? Math.max(2, Math.round(Math.min(width, height) / 300));
  const fs = options.fontSize ?? Math.max(11, Math.round(Math.min(width, height) / 45));
  const parts: string[] = [];
  const n = drawn.labels.length;
  // Low scores first so the confident boxes end up on top.
  const order = Array.from({ length: n }, (_, i) => i);
  if (drawn.scores) order.sort((a, b) => drawn.scores![a]! - drawn.scores![b]!);
  for (const i of order) {
    const score = drawn.scores?.[i];
    if (score !== undefined && score < (options.minScore ?? 0)) continue;
    const [x1, y1, x2, y2] = [drawn.boxes[4 * i]!, drawn.boxes[4 * i + 1]!, drawn.boxes[4 * i + 2]!, drawn.boxes[4 * i + 3]!];
    const label = drawn.labels[i]!;
    const color = drawn.colors?.[i] ?? classColor(label);
    const name = options.classNames?.[label] ?? String(label);
    const caption = escapeXml(drawn.captions?.[i] ?? (score === undefined ? name : `${name} ${score.toFixed(2)}`));
    const tw = Math.ceil(caption.length * fs * 0.6) + 6;
    const ty = y1 - fs - 4 >= 0 ? y1 - fs - 4 : y1; // caption above the box unless it would leave the image
    parts.push(
      `<rect x="${x1.toFixed(1)}" y="${y1.toFixed(1)}" width="${Math.max(0, x2 - x1).toFixed(1)}" height="${Math.max(0, y2 - y1).toFixed(1)}" fill="none" stroke="${color}" stroke-width="${lw}"${drawn.dashed?.[i] ? ` stroke-dasharray="${3 * lw},${2 * lw}"` : ''}/>`,
      `<rect x="${x1.toFixed(1)}" y="${ty.toFixed(1)}" width="${tw}" height="${fs + 4}" fill="${color}"/>`,
      `<text x="${(x1 + 3).toFixed(1)}" y="${(ty + fs).toFixed(1)}" font-family="sans-serif" font-size="${fs}" fill="white">${caption}</text>`,
    );
  }
  if (options.caption) {
    const text = escapeXml(options.caption);
    const tw = Math.ceil(options.caption.length * fs * 0.6) + 6;
    parts.push(
      `<rect x="0" y="${height - fs - 4}" width="${tw}" height="${fs + 4}" fill="black" fill-opacity="0.6"/>`,
      `<text x="3" y="${height - 4}" font-family="sans-serif" font-size="${fs}" fill="white">${text}</text>`,
    );
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`;
}

/**
 * Draws boxes, class names and scores over an image and returns the encoded bytes
 * (format from `file`'s extension: .jpg/.jpeg, .webp, otherwise PNG).
 * `image` is a decoded RGB image or a path to an image file (EXIF orientation applied).
 */
export async function renderDetections(image: RgbImage | string, drawn: DrawnBoxes, file: string, options: DrawOptions = {}): Promise<Buffer> {
  const base =
    typeof image === 'string'
      ? sharp(image, { failOn: 'error' }).rotate().removeAlpha()
      : sharp(chwToHwcBytes(image), { raw: { width: image.width, height: image.height, channels: 3 } });
  let width: number;
  let height: number;
  try {
    if (typeof image === 'string') {
      // Render once to get the oriented size; composite needs an overlay of exactly that size.
      const { info } = await base.clone().raw().toBuffer({ resolveWithObject: true });
      ({ width, height } = info);
    } else {
      ({ width, height } = image);
    }
  } catch (err) {
    throw new ImageError(`cannot read image ${String(image)}: ${(err as Error).message}`);
  }
  const svg = Buffer.from(detectionsSvg(width, height, drawn, options));
  return encodeByExtension(sharp(await base.composite([{ input: svg, top: 0, left: 0 }]).png().toBuffer()), file);
}

/** {@link renderDetections} and write the result to `file`. */
export async function drawDetections(image: RgbImage | string, drawn: DrawnBoxes, file: string, options: DrawOptions = {}): Promise<void> {
  await writeFile(file, await renderDetections(image, drawn, file, options));
}
