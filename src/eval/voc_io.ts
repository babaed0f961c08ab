/**
 * Readers for Pascal VOC ground truth (one XML per image) and per-image detection text files
 * (`<class> <score> <xmin> <ymin> <xmax> <ymax>` per line, class as a name or an index into a names list).
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { EvalInputError } from './errors.js';
import type { VocDetection, VocObject } from './voc.js';

// The readers below scan with indexOf rather than lazy regexes, which retried from every start:
// `<name>\s*([^<]*?)\s*</name>` was cubic in a run of spaces (4 000 took 43 s) and
// `<object>([\s\S]*?)</object>` quadratic in unclosed tags (20 000 took 3 s).

/** Text of the first `<name>...</name>` whose content has no markup, trimmed; undefined if none. */
function tag(xml: string, name: string): string | undefined {
  const open = `<${name}>`;
  const close = `</${name}>`;
  for (let at = xml.indexOf(open); at >= 0; at = xml.indexOf(open, at + 1)) {
    const end = xml.indexOf('<', at + open.length);
    if (end < 0) return undefined;
    if (xml.startsWith(close, end)) return xml.slice(at + open.length, end).trim();
  }
  return undefined;
}

/** Bodies of the `<name>...</name>` elements, each up to the first closing tag after its opening one. */
function bodies(xml: string, name: string): string[] {
  const open = `<${name}>`;
  const close = `</${name}>`;
  const out: string[] = [];
  for (let at = xml.indexOf(open); at >= 0; at = xml.indexOf(open, at)) {
    const end = xml.indexOf(close, at + open.length);
    if (end < 0) break;
    out.push(xml.slice(at + open.length, end));
    at = end + close.length;
  }
  return out;
}

/** Objects of one VOC annotation XML; `imageId` defaults to the file name without extension. */
export function parseVocXml(xml: string, imageId: string): VocObject[] {
  const objects: VocObject[] = [];
  for (const body of bodies(xml, 'object')) {
    const label = tag(body, 'name');
    const bnd = bodies(body, 'bndbox')[0];
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
