/**
 * Datasets in a browser: a folder the page was given (picked or dropped) or a zip is put into the
 * in-memory file tree, where the Node dataset readers (COCO, Pascal VOC, CSV, YOLO: the same
 * code, src/data/datasets/) read it as they read a disk.
 */
import { unzipSync } from 'fflate';
import { InputError } from '../core/errors.js';
import { fs, memoryFiles, path } from '../platform/files.browser.js';

/** A file to put into the tree: its path inside the dataset and its content. */
export interface DatasetFile {
  path: string;
  data: Blob | Uint8Array | string;
}

let mounts = 0;

/** A folder of the tree that holds a dataset: a single folder inside is descended into. */
function datasetRoot(root: string): string {
  let dir = root;
  for (;;) {
    const entries = fs.readdirSync(dir).filter((e) => !e.startsWith('.') && e !== '__MACOSX');
    if (entries.length !== 1 || !fs.statSync(path.join(dir, entries[0]!)).isDirectory()) return dir;
    dir = path.join(dir, entries[0]!);
  }
}

/**
 * Puts files into the tree under a fresh folder and returns the folder of the dataset (descending
 * into a single top folder, as a picked folder `bccd/` gives). `File`s from an
 * `<input webkitdirectory>` carry their path in `webkitRelativePath`.
 */
export async function mountFiles(files: Iterable<File | DatasetFile>): Promise<string> {
  const root = `/datasets/${++mounts}`;
  let count = 0;
  for (const f of files) {
    const rel = 'data' in f ? f.path : f.webkitRelativePath || f.name;
    const clean = path.normalize(`/${rel}`);
    const data = 'data' in f ? f.data : f;
    memoryFiles.put(path.join(root, clean), typeof data === 'string' || data instanceof Uint8Array ? data : new Uint8Array(await data.arrayBuffer()));
    count++;
  }
  if (count === 0) throw new InputError('no files given');
  return datasetRoot(root);
}

/** Puts a zip's files into the tree under a fresh folder and returns the folder of the dataset. */
export async function mountZip(zip: Blob | Uint8Array): Promise<string> {
  const bytes = zip instanceof Uint8Array ? zip : new Uint8Array(await zip.arrayBuffer());
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(bytes);
  } catch (err) {
    throw new InputError(`not a zip file: ${(err as Error).message}`);
  }
  return mountFiles(Object.entries(entries).filter(([name]) => !name.endsWith('/')).map(([name, data]) => ({ path: name, data })));
}

/** Removes a mounted folder (and everything under it) from the tree. */
export function unmount(folder: string): void {
  memoryFiles.remove(folder.split('/').slice(0, 3).join('/'));
}
