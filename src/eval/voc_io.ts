/**
 * Readers for Pascal VOC ground truth (one XML per image) and per-image detection text files
 * (`<class> <score> <xmin> <ymin> <xmax> <ymax>` per line, class as a name or an index into a names list).
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { EvalInputError } from './errors.js';
import type { VocDetection, VocObject } from './voc.js';

function tag(xml: string, name: string): string | undefined {
  const m = new RegExp(`<${name}>\\s*([^<]*?)\\s*</${name}>`).exec(xml);
  return m?.[1];
}

/** Objects of one VOC annotation XML; `imageId` defaults to the file name without extension. */
export function parseVocXml(xml: string, imageId: string): VocObject[] {
  const objects: VocObject[] = [];
  for (const m of xml.matchAll(/<object>([\s\S]*?)<\/object>/g)) {
    const body = m[1]!;
    const label = tag(body, 'name');
    const bnd = /<bndbox>([\s\S]*?)<\/bndbox>/.exec(body)?.[1];
    const coords = bnd === undefined ? [] : ['xmin', 'ymin', 'xmax', 'ymax'].map((k) => Number(tag(bnd, k)));
    if (label === undefined || coords.length !== 4 || coords.some((v) => !Number.isFinite(v))) {
      throw new EvalInputError(`VOC annotation for "${imageId}" has an <object> without a <name> and numeric <bndbox>`);
    }
    objects.push({ imageId, label, box: coords as unknown as VocObject['box'], difficult: tag(body, 'difficult') === '1' });
  }
  return objects;
}

/** All objects of a folder of VOC XML files, and the image ids (file stems) it covers. */
export function readVocAnnotationDir(dir: string): { objects: VocObject[]; imageIds: string[] } {
  const files = readdirSync(dir).filter((f) => f.endsWith('.xml')).sort();
  if (files.length === 0) throw new EvalInputError(`no .xml annotation files in ${dir}`);
  const imageIds = files.map((f) => f.slice(0, -4));
  const objects = files.flatMap((f, i) => parseVocXml(readFileSync(path.join(dir, f), 'utf8'), imageIds[i]!));
  return { objects, imageIds };
}

/** Detections of one text file; numeric classes index `names` (0-based). */
export function parseVocDetections(text: string, imageId: string, names?: readonly string[]): VocDetection[] {
  const dets: VocDetection[] = [];
  text.split(/\r?\n/).forEach((line, n) => {
    const f = line.trim().split(/\s+/);
    if (f.length === 1 && f[0] === '') return;
    const nums = f.slice(1).map(Number);
    if (f.length !== 6 || nums.some((v) => !Number.isFinite(v))) {
      throw new EvalInputError(`detections for "${imageId}", line ${n + 1}: expected "<class> <score> <xmin> <ymin> <xmax> <ymax>"`);
    }
    let label = f[0]!;
    if (names && /^\d+$/.test(label)) {
      const name = names[Number(label)];
      if (name === undefined) throw new EvalInputError(`detections for "${imageId}", line ${n + 1}: class index ${label} is not in the names list`);
      label = name;
    }
    dets.push({ imageId, label, score: nums[0]!, box: [nums[1]!, nums[2]!, nums[3]!, nums[4]!] });
  });
  return dets;
}

/** All detections of a folder of `<imageId>.txt` files. */
export function readVocDetectionDir(dir: string, names?: readonly string[]): VocDetection[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.txt'))
    .sort()
    .flatMap((f) => parseVocDetections(readFileSync(path.join(dir, f), 'utf8'), f.slice(0, -4), names));
}

/** A names file: one class name per line (blank lines skipped). */
export function readNames(file: string): string[] {
  return readFileSync(file, 'utf8').split(/\r?\n/).map((s) => s.trim()).filter((s) => s.length > 0);
}
