/**
 * Checks on where a command will write, made before any work starts: a results file must not
 * be a folder and its folder must be creatable; an output folder must not be a file. Each
 * failure is an InputError naming the option (`what`) and the path, so a typo costs a second,
 * not a finished run.
 */
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import { InputError } from './errors.js';

function kind(p: string): 'file' | 'dir' | 'other' | undefined {
  try {
    const st = statSync(p);
    return st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
  } catch {
    return undefined;
  }
}

/**
 * The nearest ancestor of `p` that exists; throws when a file stands where a folder of the path
 * should be (`out.json/x.json`).
 */
function existingAncestor(p: string, what: string, shown: string): string {
  let cur = path.resolve(p);
  for (;;) {
    const parent = path.dirname(cur);
    const k = kind(parent);
    if (k === 'dir') return parent;
    if (k !== undefined) throw new InputError(`${what} ${shown}: ${path.relative(process.cwd(), parent) || parent} is not a folder`);
    if (parent === cur) return cur;
    cur = parent;
  }
}

function checkWritable(dir: string, what: string, shown: string): void {
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new InputError(`${what} ${shown}: cannot write in ${dir} (permission denied)`);
  }
}

/** Checks that `file` can be written as a file (created or replaced). */
export function checkOutputFile(file: string, what: string): void {
  const k = kind(file);
  if (k === 'dir') throw new InputError(`${what} ${file} is a folder; give a file name, e.g. ${path.join(file, 'detections.json')}`);
  if (k === 'other') throw new InputError(`${what} ${file} is not a regular file`);
  checkWritable(existingAncestor(file, what, file), what, file);
}

/** Checks that `dir` is, or can be created as, a folder to write in. */
export function checkOutputDir(dir: string, what: string): void {
  const k = kind(dir);
  if (k === 'file' || k === 'other') throw new InputError(`${what} ${dir} is a file; give a folder`);
  checkWritable(k === 'dir' ? dir : existingAncestor(dir, what, dir), what, dir);
}

/** Whether `p` is an existing folder. */
export function isDirectory(p: string): boolean {
  return kind(p) === 'dir';
}
