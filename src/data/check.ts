/**
 * What `data check` finds beyond the annotations: images that will break training when they
 * are decoded (truncated, corrupt, over the pixel limit), images whose decoded size differs from
 * the size the annotation declares (an EXIF rotation the annotation tool did not apply: boxes
 * would land on the wrong pixels), and file names used twice.
 */
import path from 'node:path';
import { type ImageDecodeOptions, loadImage } from '../io/image.js';
import type { DatasetProblem } from './datasets/problems.js';
import type { DetectionDataset } from './types.js';

export interface DecodeCheckOptions extends ImageDecodeOptions {
  /** Images decoded at once (default 4). */
  concurrency?: number;
  /** Called after each image. */
  onProgress?: (done: number, total: number) => void;
}

/** Decodes every image of `ds` and returns the problems found, in dataset order. */
export async function checkDecodes(ds: DetectionDataset, opts: DecodeCheckOptions = {}): Promise<DatasetProblem[]> {
  const found: (DatasetProblem | undefined)[] = new Array(ds.images.length);
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < ds.images.length; i = next++) {
      const im = ds.images[i]!;
      try {
        const img = await loadImage(im.file, opts);
        if (im.width !== undefined && im.height !== undefined && (img.width !== im.width || img.height !== im.height)) {
          const rotated = img.width === im.height && img.height === im.width;
          found[i] = {
            file: im.file,
            message: `decodes to ${img.width}x${img.height} but the annotation says ${im.width}x${im.height}${rotated ? ' (an EXIF rotation the annotation did not apply?)' : ''}; boxes may not match the pixels`,
          };
        }
      } catch (err) {
        found[i] = { file: im.file, message: `${(err as Error).message}; training would skip it` };
      }
      opts.onProgress?.(++done, ds.images.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 4) }, worker));
  const problems = found.filter((p): p is DatasetProblem => p !== undefined);
  return [...problems, ...duplicateNames(ds)];
}

/** Images that share a file name (in different folders), or one file listed twice. */
export function duplicateNames(ds: DetectionDataset): DatasetProblem[] {
  const byName = new Map<string, string[]>();
  for (const im of ds.images) {
    const name = path.basename(im.file);
    byName.set(name, [...(byName.get(name) ?? []), im.file]);
  }
  const out: DatasetProblem[] = [];
  for (const [name, files] of byName) {
    if (files.length < 2) continue;
    const same = new Set(files).size < files.length;
    out.push({ file: files[0]!, message: same ? `listed ${files.length} times` : `file name ${name} is used by ${files.length} images (${files.slice(1, 3).join(', ')}${files.length > 3 ? ', ...' : ''}): outputs named after images would collide` });
  }
  return out;
}
