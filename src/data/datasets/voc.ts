import { fs, path } from '../../platform/files.js';
import { DatasetBuilder } from './builder.js';
import { inferClassList, readClassList } from './classes.js';
import type { ReadOptions } from './options.js';
import { fatal, type ProblemLog } from './problems.js';
import { child, children, parseXml, XmlError, type XmlElement } from './xml.js';

const { existsSync, statSync, readdir, readFile } = fs;

interface VocObject {
  name: string;
  line: number;
  xyxy: [number, number, number, number];
  difficult: boolean;
}

interface VocFile {
  xmlPath: string;
  filename: string;
  width?: number;
  height?: number;
  objects: VocObject[];
}

function num(el: XmlElement | undefined): number {
  return el === undefined || el.text === '' ? NaN : Number(el.text);
}

function parseVocFile(xmlPath: string, text: string, log: ProblemLog): VocFile | undefined {
  let root: XmlElement;
  try {
    root = parseXml(text);
  } catch (err) {
    if (!(err instanceof XmlError)) throw err;
    log.report(xmlPath, err.line, `malformed XML: ${err.message}; file skipped`);
    return undefined;
  }
  if (root.name !== 'annotation') {
    log.report(xmlPath, root.line, `root element is <${root.name}>, expected <annotation>; file skipped`);
    return undefined;
  }
  const size = child(root, 'size');
  const width = num(size && child(size, 'width'));
  const height = num(size && child(size, 'height'));
  const file: VocFile = { xmlPath, filename: child(root, 'filename')?.text || `${path.basename(xmlPath, '.xml')}.jpg`, objects: [] };
  if (width > 0 && height > 0) {
    file.width = width;
    file.height = height;
  }
  for (const obj of children(root, 'object')) {
    const name = child(obj, 'name')?.text ?? '';
    const bb = child(obj, 'bndbox');
    if (!name || !bb) {
      log.report(xmlPath, obj.line, `<object> without <name> or <bndbox>; skipped`);
      continue;
    }
    file.objects.push({
      name,
      line: bb.line,
      xyxy: [num(child(bb, 'xmin')), num(child(bb, 'ymin')), num(child(bb, 'xmax')), num(child(bb, 'ymax'))],
      difficult: child(obj, 'difficult')?.text === '1',
    });
  }
  return file;
}

/** Where the XML files and images of a VOC-style folder are. */
export function vocLayout(root: string, options: ReadOptions): { annotations: string; images: string | undefined } {
  const abs = path.resolve(root);
  const annotations = existsSync(path.join(abs, 'Annotations')) ? path.join(abs, 'Annotations') : abs;
  if (options.imagesDir) return { annotations, images: path.resolve(options.imagesDir) };
  const candidates = [path.join(abs, 'JPEGImages'), path.join(abs, 'images'), abs, path.join(abs, '..', 'JPEGImages'), path.join(abs, '..', 'images'), path.join(abs, '..', '..', 'images')];
  return { annotations, images: candidates.find((c) => existsSync(c) && statSync(c).isDirectory() && c !== annotations) };
}

/**
 * Reads a Pascal VOC dataset: `root/Annotations/*.xml` + `root/JPEGImages/` (optionally only the ids in
 * `root/ImageSets/Main/<split>.txt`), or a plain folder of VOC XML files. Coordinates are kept as written
 * (VOC's 1-based pixel indices, no -1 shift); `difficult` is kept. Classes: `classesFile`, else the
 * 20 VOC classes when only those occur, else the names found, sorted.
 */
export async function readVoc(root: string, options: ReadOptions, log: ProblemLog): Promise<DatasetBuilder> {
  if (!existsSync(root) || !statSync(root).isDirectory()) fatal(root, 'VOC dataset folder not found');
  const layout = vocLayout(root, options);
  let xmlFiles: string[];
  if (options.split) {
    const list = path.join(path.resolve(root), 'ImageSets', 'Main', `${options.split}.txt`);
    let text: string;
    try {
      text = await readFile(list, 'utf8');
    } catch {
      fatal(list, `split '${options.split}' not found`);
    }
    xmlFiles = text.split(/\r?\n/).map((l) => l.trim().split(/\s+/)[0]!).filter((id) => id !== '').map((id) => path.join(layout.annotations, `${id}.xml`));
  } else {
    xmlFiles = (await readdir(layout.annotations)).filter((f) => f.toLowerCase().endsWith('.xml')).sort().map((f) => path.join(layout.annotations, f));
    if (xmlFiles.length === 0) fatal(root, 'no Annotations/ folder and no .xml files: not a VOC dataset');
  }
  const files: VocFile[] = [];
  for (const xmlPath of xmlFiles) {
    let text: string;
    try {
      text = await readFile(xmlPath, 'utf8');
    } catch {
      log.report(xmlPath, undefined, 'annotation file not found; skipped');
      continue;
    }
    const f = parseVocFile(xmlPath, text, log);
    if (f) files.push(f);
  }
  const classes = options.classesFile ? await readClassList(options.classesFile) : inferClassList(files.flatMap((f) => f.objects.map((o) => o.name)), true);
  const labelOf = new Map(classes.names.map((n, i) => [n, i]));
  const builder = new DatasetBuilder(log, classes.names, classes.ids);
  // No image folder found: a plain folder holds its images beside the XML files (labelImg's
  // default); Annotations/ without JPEGImages/ has them in the root.
  const imagesDir = layout.images ?? (layout.annotations === path.resolve(root) ? layout.annotations : path.dirname(layout.annotations));
  files.forEach((f, i) => {
    const img = builder.addImage(i + 1, path.join(imagesDir, f.filename), { file: f.xmlPath }, f.width, f.height);
    for (const o of f.objects) {
      const label = labelOf.get(o.name);
      if (label === undefined) log.report(f.xmlPath, o.line, `unknown class '${o.name}'; box skipped`);
      else builder.addBox(img, { file: f.xmlPath, line: o.line }, o.xyxy, label, { difficult: o.difficult });
    }
  });
  return builder;
}
