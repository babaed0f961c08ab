import { fs, path } from '../../platform/files.js';
import { DatasetBuilder, type PendingImage } from './builder.js';
import { inferClassList, readClassList } from './classes.js';
import type { ReadOptions } from './options.js';
import { fatal, type ProblemLog } from './problems.js';

const { existsSync, readFile } = fs;

/** Splits one CSV line into fields (RFC 4180 quoting with `""` escapes). Returns undefined for an unterminated quote. */
export function splitCsvLine(line: string): string[] | undefined {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      fields.push(field);
      field = '';
    } else field += c;
  }
  if (quoted) return undefined;
  fields.push(field);
  return fields;
}

// Header names accepted for each column of the "headed" dialect (e.g. the raccoon dataset's
// `filename,width,height,class,xmin,ymin,xmax,ymax`, as written by many labelImg-to-CSV scripts).
const COLUMNS = {
  file: ['filename', 'file', 'path', 'image', 'image_path', 'img'],
  width: ['width', 'w_img', 'image_width'],
  height: ['height', 'h_img', 'image_height'],
  cls: ['class', 'class_name', 'label', 'category', 'name'],
  x1: ['xmin', 'x1', 'x_min', 'left'],
  y1: ['ymin', 'y1', 'y_min', 'top'],
  x2: ['xmax', 'x2', 'x_max', 'right'],
  y2: ['ymax', 'y2', 'y_max', 'bottom'],
} as const;

type Column = keyof typeof COLUMNS;

/** Column positions when the first line is a header naming at least file, class and the four coordinates; else undefined. */
export function csvHeader(fields: string[]): Partial<Record<Column, number>> | undefined {
  const lower = fields.map((f) => f.trim().toLowerCase());
  const cols: Partial<Record<Column, number>> = {};
  for (const key of Object.keys(COLUMNS) as Column[]) {
    const at = lower.findIndex((f) => (COLUMNS[key] as readonly string[]).includes(f));
    if (at >= 0) cols[key] = at;
  }
  const required: Column[] = ['file', 'cls', 'x1', 'y1', 'x2', 'y2'];
  return required.every((k) => cols[k] !== undefined) ? cols : undefined;
}

interface Row {
  line: number;
  file: string;
  width?: number;
  height?: number;
  /** Undefined for keras-retinanet's `path,,,,,` (an image without objects). */
  box?: { cls: string; xyxy: [number, number, number, number] };
}

/**
 * Reads a CSV annotation file in one of two dialects, chosen by the first line:
 * keras-retinanet's headerless `path,x1,y1,x2,y2,class_name` (with `path,,,,,` for an image without
 * objects), or a headed file whose columns are found by name (`filename,width,height,class,xmin,ymin,xmax,ymax`).
 * Image paths are relative to the CSV's folder (or its `images/` subfolder, or `imagesDir`).
 * Classes: `classesFile` (keras `name,id` lines or one name per line), else a `classes.csv` next to
 * the CSV, else the names used, sorted.
 */
export async function readCsv(csvPath: string, options: ReadOptions, log: ProblemLog): Promise<DatasetBuilder> {
  let text: string;
  try {
    text = await readFile(csvPath, 'utf8');
  } catch (err) {
    fatal(csvPath, (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message);
  }
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const first = splitCsvLine(lines[0] ?? '') ?? [];
  const header = csvHeader(first);
  // Written once and cut short: a long header repeated in every bad line's message took memory quadratic in the file.
  const headerText = first.join(',').slice(0, 200) + (first.join(',').length > 200 ? '...' : '');
  const rows: Row[] = [];
  lines.forEach((raw, i) => {
    if (i === 0 && header) return;
    if (raw.trim() === '') return;
    const line = i + 1;
    const f = splitCsvLine(raw);
    if (!f) {
      log.report(csvPath, line, 'unterminated quote; line skipped');
      return;
    }
    if (header) {
      const get = (k: Column) => (header[k] === undefined ? undefined : f[header[k]!]?.trim());
      const file = get('file');
      if (!file || f.length < first.length) {
        log.report(csvPath, line, `expected ${first.length} fields (${headerText}), got ${f.length}; line skipped`);
        return;
      }
      const row: Row = { line, file, box: { cls: get('cls') ?? '', xyxy: [Number(get('x1')), Number(get('y1')), Number(get('x2')), Number(get('y2'))] } };
      const w = Number(get('width'));
      const h = Number(get('height'));
      if (w > 0 && h > 0) {
        row.width = w;
        row.height = h;
      }
      rows.push(row);
      return;
    }
    if (f.length !== 6) {
      log.report(csvPath, line, `expected 6 fields 'path,x1,y1,x2,y2,class_name', got ${f.length}; line skipped`);
      return;
    }
    const [file, x1, y1, x2, y2, cls] = f.map((s) => s.trim()) as [string, string, string, string, string, string];
    if (!file) {
      log.report(csvPath, line, 'empty image path; line skipped');
      return;
    }
    if (x1 === '' && y1 === '' && x2 === '' && y2 === '' && cls === '') {
      rows.push({ line, file });
      return;
    }
    const coords = [x1, y1, x2, y2].map((s) => (s === '' ? NaN : Number(s))) as [number, number, number, number];
    if (!coords.every(Number.isFinite) || cls === '') {
      log.report(csvPath, line, `malformed box '${raw.trim()}' (expected numbers and a class name); line skipped`);
      return;
    }
    rows.push({ line, file, box: { cls, xyxy: coords } });
  });

  const dir = path.dirname(path.resolve(csvPath));
  let classesFile = options.classesFile;
  if (!classesFile && !header && existsSync(path.join(dir, 'classes.csv')) && path.resolve(csvPath) !== path.join(dir, 'classes.csv')) {
    classesFile = path.join(dir, 'classes.csv');
  }
  const classes = classesFile ? await readClassList(classesFile) : inferClassList(rows.flatMap((r) => (r.box ? [r.box.cls] : [])));
  const labelOf = new Map(classes.names.map((n, i) => [n, i]));
  const builder = new DatasetBuilder(log, classes.names, classes.ids);

  let imagesDir = options.imagesDir ? path.resolve(options.imagesDir) : dir;
  const firstFile = rows[0]?.file;
  if (!options.imagesDir && firstFile && !path.isAbsolute(firstFile) && !existsSync(path.join(dir, firstFile)) && existsSync(path.join(dir, 'images', firstFile))) {
    imagesDir = path.join(dir, 'images');
  }
  const images = new Map<string, PendingImage>();
  for (const r of rows) {
    let img = images.get(r.file);
    if (!img) {
      img = builder.addImage(images.size + 1, path.resolve(imagesDir, r.file), { file: csvPath, line: r.line }, r.width, r.height);
      images.set(r.file, img);
    }
    if (!r.box) continue;
    const label = labelOf.get(r.box.cls);
    if (label === undefined) log.report(csvPath, r.line, `unknown class '${r.box.cls}'${classesFile ? ` (not in ${classesFile})` : ''}; box skipped`);
    else builder.addBox(img, { file: csvPath, line: r.line }, r.box.xyxy, label);
  }
  return builder;
}
