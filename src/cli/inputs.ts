/**
 * The images a command is given: image files, folders (their images, sorted by name) and list
 * files (a text file of image paths, one per line; blank lines and lines starting with '#' are
 * skipped; relative paths are relative to the list file's folder). Shared by `detect` and its
 * `--queue` mode, so both see the same images in the same order.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { UserError } from './command.js';
import { isDirectory } from '../core/output.js';

/** Extensions read as images; anything else given as a file is a list file. */
export const IMAGE_EXT: ReadonlySet<string> = new Set(['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.bmp', '.gif']);

/** Whether `file` is read as a list of image paths rather than as an image (by its extension). */
export function isListFile(file: string): boolean {
  return ['.txt', '.lst', '.list'].includes(path.extname(file).toLowerCase());
}

/** The paths of a list file, resolved against its folder. */
export function readListFile(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read list file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const dir = path.dirname(file);
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => (path.isAbsolute(line) ? line : path.join(dir, line)));
}

/**
 * The image files of `inputs` in order. A missing input is a UserError; a folder without images
 * is reported through `warn`. The paths of a list file are not checked here: an image that
 * cannot be read is that image's failure, reported when it is processed.
 */
export function expandInputs(inputs: readonly string[], warn: (message: string) => void = (m) => void process.stderr.write(`warning: ${m}\n`)): string[] {
  const files: string[] = [];
  for (const p of inputs) {
    if (!existsSync(p)) throw new UserError(`${p}: no such file or folder`);
    if (isDirectory(p)) {
      const entries = readdirSync(p)
        .filter((f) => IMAGE_EXT.has(path.extname(f).toLowerCase()))
        .sort();
      if (entries.length === 0) warn(`${p} holds no images`);
      files.push(...entries.map((f) => path.join(p, f)));
    } else if (isListFile(p)) {
      const listed = readListFile(p);
      if (listed.length === 0) warn(`list file ${p} names no images`);
      files.push(...listed);
    } else {
      files.push(p);
    }
  }
  return files;
}

/** Image ids by file name (basename) from a COCO annotations file (`detect --gt`). */
export function idsFromGt(gtFile: string): Map<string, number> {
  let gt: { images?: { id: number; file_name?: string }[] };
  try {
    gt = JSON.parse(readFileSync(gtFile, 'utf8')) as typeof gt;
  } catch (err) {
    throw new UserError(`cannot read --gt ${gtFile}: ${(err as Error).message}`);
  }
  if (!Array.isArray(gt.images)) throw new UserError(`--gt ${gtFile} has no "images" list`);
  const ids = new Map<string, number>();
  for (const im of gt.images) if (im.file_name) ids.set(path.basename(im.file_name), im.id);
  return ids;
}
