import { fs, path } from '../../platform/files.js';
import { imageSize } from '../../io/image.js';
import { DatasetBuilder } from './builder.js';
import { readClassList, type ClassList } from './classes.js';
import type { ReadOptions } from './options.js';
import { fatal, type ProblemLog } from './problems.js';

const { existsSync, statSync, readdir, readFile } = fs;

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.bmp', '.tif', '.tiff']);

/**
 * Reads `names:` from a YOLOv5/8 `data.yaml` (flow list `[a, b]`, block list `- a`, or map `0: a`).
 * A map must number the classes 0..n-1, each once; otherwise a {@link DatasetError} naming `file`
 * (an index such as 4294967294 would otherwise make a list of four billion names).
 */
export function namesFromYaml(text: string, file = 'data.yaml'): string[] | undefined {
  const lines = text.split(/\r?\n/);
  const at = lines.findIndex((l) => /^names\s*:/.test(l));
  if (at < 0) return undefined;
  const unquote = (s: string) => s.trim().replace(/^(['"])(.*)\1$/, '$2');
  const inline = lines[at]!.replace(/^names\s*:/, '').trim();
  if (inline.startsWith('[')) {
    return inline.replace(/^\[|\]\s*(#.*)?$/g, '').split(',').map(unquote).filter((s) => s !== '');
  }
  const list: string[] = [];
  const byIndex = new Map<number, string>();
  for (let i = at + 1; i < lines.length; i++) {
    const l = lines[i]!;
    if (!/^\s+\S/.test(l)) break;
    const m = /^\s+(?:-\s*(.+)|(\d+)\s*:\s*(.+))$/.exec(l);
    if (!m) break;
    if (m[1] !== undefined) list.push(unquote(m[1]));
    else {
      const k = Number(m[2]);
      if (byIndex.has(k)) fatal(file, `names: class ${k} is listed twice`, i + 1);
      byIndex.set(k, unquote(m[3]!));
    }
    if (list.length > 0 && byIndex.size > 0) fatal(file, "names: mixes '- name' and 'index: name' entries; use one form", i + 1);
  }
  if (byIndex.size === 0) return list.length > 0 ? list : undefined;
  const names: string[] = [];
  for (let k = 0; k < byIndex.size; k++) {
    const name = byIndex.get(k);
    if (name === undefined) {
      const largest = Math.max(...[...byIndex.keys()].filter((x) => x >= byIndex.size).slice(0, 1000));
      fatal(file, `names: class ${k} is missing (the indices must run from 0 to ${byIndex.size - 1}; found ${largest})`, at + 1);
    }
    names.push(name);
  }
  return names;
}

async function yoloClasses(root: string, options: ReadOptions): Promise<ClassList> {
  if (options.classesFile) return readClassList(options.classesFile);
  const entries = await readdir(root);
  const names = entries.find((e) => e.endsWith('.names')) ?? entries.find((e) => e === 'classes.txt');
  if (names) return readClassList(path.join(root, names));
  const yaml = entries.find((e) => e === 'data.yaml' || e === 'dataset.yaml');
  if (yaml) {
    const list = namesFromYaml(await readFile(path.join(root, yaml), 'utf8'), path.join(root, yaml));
    if (list) return { names: list, ids: list.map((_, i) => i) };
  }
  fatal(root, 'no class names: expected a *.names, classes.txt or data.yaml file (or pass a classes file)');
}

/**
 * Reads a YOLO txt dataset: `root/images[/split]/*` and `root/labels[/split]/<image stem>.txt` with lines
 * `class cx cy w h` (normalised to [0, 1]), class names from `*.names`, `classes.txt` or `data.yaml`.
 * An image without a label file has no objects. Image sizes come from the image headers.
 */
export async function readYolo(root: string, options: ReadOptions, log: ProblemLog): Promise<DatasetBuilder> {
  const abs = path.resolve(root);
  const sub = options.split ?? '';
  const imagesDir = options.imagesDir ? path.resolve(options.imagesDir) : path.join(abs, 'images', sub);
  const labelsDir = path.join(abs, 'labels', sub);
  if (!existsSync(labelsDir) || !statSync(labelsDir).isDirectory()) fatal(labelsDir, 'YOLO labels folder not found');
  if (!existsSync(imagesDir) || !statSync(imagesDir).isDirectory()) fatal(imagesDir, 'YOLO images folder not found');
  const classes = await yoloClasses(abs, options);
  const builder = new DatasetBuilder(log, classes.names, classes.ids);
  const entries = await readdir(imagesDir, { withFileTypes: true });
  const files = entries.filter((e) => e.isFile() && IMAGE_EXTENSIONS.has(path.extname(e.name).toLowerCase())).map((e) => e.name).sort();
  const splits = entries.filter((e) => e.isDirectory()).map((e) => e.name);
  if (files.length === 0 && !options.split && splits.length > 0) {
    fatal(imagesDir, `no images here but split folders ${splits.join(', ')}: choose one with a split name`);
  }
  let id = 0;
  for (const f of files) {
    const file = path.join(imagesDir, f);
    let size: { width: number; height: number };
    try {
      size = await imageSize(file);
    } catch (err) {
      log.report(file, undefined, `${(err as Error).message}; image skipped`);
      continue;
    }
    const img = builder.addImage(++id, file, { file }, size.width, size.height);
    const labelFile = path.join(labelsDir, `${path.parse(f).name}.txt`);
    if (!existsSync(labelFile)) continue;
    const lines = (await readFile(labelFile, 'utf8')).split(/\r?\n/);
    lines.forEach((raw, i) => {
      const t = raw.trim();
      if (t === '') return;
      const origin = { file: labelFile, line: i + 1 };
      const parts = t.split(/\s+/).map(Number);
      if (parts.length !== 5 || !parts.every(Number.isFinite)) {
        log.report(labelFile, i + 1, `expected 'class cx cy w h' (5 numbers), got '${t}'; line skipped`);
        return;
      }
      const [cls, cx, cy, w, h] = parts as [number, number, number, number, number];
      if (!Number.isInteger(cls) || cls < 0 || cls >= classes.names.length) {
        log.report(labelFile, i + 1, `unknown class index ${cls} (${classes.names.length} classes); line skipped`);
        return;
      }
      const W = size.width;
      const H = size.height;
      builder.addBox(img, origin, [(cx - w / 2) * W, (cy - h / 2) * H, (cx + w / 2) * W, (cy + h / 2) * H], cls);
    });
  }
  return builder;
}
