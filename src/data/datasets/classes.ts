import { fs } from '../../platform/files.js';
import { fatal } from './problems.js';

const { readFile } = fs;

/** The 20 Pascal VOC classes in their conventional order. */
export const VOC_CLASSES: readonly string[] = [
  'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
  'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor',
];

/** Class names and the dataset's own id for each. */
export interface ClassList {
  names: string[];
  ids: number[];
}

/**
 * Reads a class list: keras-retinanet `name,id` lines (any file whose lines all have one comma),
 * or one name per line (`.names`, `classes.txt`). Blank lines are ignored. Ids default to 0..C-1.
 * keras-style lists are ordered by id.
 */
export async function readClassList(file: string): Promise<ClassList> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    fatal(file, (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'class list not found' : (err as Error).message);
  }
  const lines = text.split(/\r?\n/).map((l, i) => ({ text: l.trim(), line: i + 1 })).filter((l) => l.text !== '');
  if (lines.length === 0) fatal(file, 'class list is empty');
  const keras = lines.every((l) => /^[^,]+,\s*-?\d+$/.test(l.text));
  const entries = lines.map((l, i) => {
    if (!keras) return { name: l.text, id: i, line: l.line };
    const comma = l.text.lastIndexOf(',');
    return { name: l.text.slice(0, comma).trim(), id: Number(l.text.slice(comma + 1)), line: l.line };
  });
  const seenNames = new Set<string>();
  const seenIds = new Set<number>();
  for (const e of entries) {
    if (seenNames.has(e.name)) fatal(file, `class '${e.name}' listed twice`, e.line);
    if (seenIds.has(e.id)) fatal(file, `class id ${e.id} listed twice`, e.line);
    seenNames.add(e.name);
    seenIds.add(e.id);
  }
  entries.sort((a, b) => a.id - b.id);
  return { names: entries.map((e) => e.name), ids: entries.map((e) => e.id) };
}

/**
 * Class list inferred from the names used, sorted; with `vocOrder`, the 20 VOC classes in their
 * conventional order when all names used are VOC classes (so labels match other VOC tools).
 */
export function inferClassList(used: Iterable<string>, vocOrder = false): ClassList {
  const set = new Set(used);
  const names = vocOrder && set.size > 0 && [...set].every((n) => VOC_CLASSES.includes(n)) ? [...VOC_CLASSES] : [...set].sort();
  return { names, ids: names.map((_, i) => i) };
}
