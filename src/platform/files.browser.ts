/**
 * Files in a browser: an in-memory file tree that the page fills (a dropped folder, a zip's
 * entries, fetched weights, weights the library saves), and URLs. `readFile` of a location that
 * is not in the tree fetches it (relative to the page); everything else sees the tree only.
 * Errors carry Node's codes (`ENOENT`, `EISDIR`, `ENOTDIR`) so that messages read as in Node.
 */
import { posix } from './posix.js';
import type { DirEntry, FileStats, PlatformFiles, PlatformPath } from './types.js';

/** A location that is a URL (`https:`, `blob:`, `data:`, ...), not a path of the tree. */
function isUrl(location: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(location);
}

/** The key of a location in the tree: an absolute path, or the URL as given. */
function keyOf(location: string): string {
  return isUrl(location) ? location : posix.resolve('/', location);
}

function fsError(code: 'ENOENT' | 'EISDIR' | 'ENOTDIR', syscall: string, location: string): Error {
  const text = { ENOENT: 'no such file or directory', EISDIR: 'illegal operation on a directory', ENOTDIR: 'not a directory' }[code];
  return Object.assign(new Error(`${code}: ${text}, ${syscall} '${location}'`), { code, syscall, path: location });
}

const fileData = new Map<string, Uint8Array>();
/** Folder -> names of its entries (files and folders). */
const folders = new Map<string, Set<string>>([['/', new Set()]]);

function addToParents(key: string): void {
  if (isUrl(key)) return;
  let child = key;
  for (let dir = posix.dirname(key); ; dir = posix.dirname(dir)) {
    let entries = folders.get(dir);
    if (!entries) folders.set(dir, (entries = new Set()));
    entries.add(posix.basename(child));
    if (dir === '/') break;
    child = dir;
  }
}

/** The in-memory tree: what the page puts there, the library reads as files. */
export const memoryFiles = {
  /** Stores `data` at `location` (a path, made absolute from `/`, or a URL), creating folders. */
  put(location: string, data: Uint8Array | string): void {
    const key = keyOf(location);
    if (folders.has(key)) throw fsError('EISDIR', 'open', location);
    fileData.set(key, typeof data === 'string' ? new TextEncoder().encode(data) : data);
    addToParents(key);
  },
  /** The bytes at `location`, if the tree has them. */
  get(location: string): Uint8Array | undefined {
    return fileData.get(keyOf(location));
  },
  /** Removes a file, or a folder with everything under it. */
  remove(location: string): void {
    const key = keyOf(location);
    fileData.delete(key);
    if (isUrl(key)) return;
    const prefix = key === '/' ? '/' : `${key}/`;
    for (const k of [...fileData.keys()]) if (k.startsWith(prefix)) fileData.delete(k);
    for (const k of [...folders.keys()]) if (k === key || k.startsWith(prefix)) folders.delete(k);
    if (key === '/') folders.set('/', new Set());
    else folders.get(posix.dirname(key))?.delete(posix.basename(key));
  },
  /** Paths of the files under `folder` (default: all), sorted. */
  list(folder = '/'): string[] {
    const key = keyOf(folder);
    const prefix = key === '/' ? '/' : `${key}/`;
    return [...fileData.keys()].filter((k) => k.startsWith(prefix)).sort();
  },
};

function stat(location: string): FileStats {
  const key = keyOf(location);
  const data = fileData.get(key);
  if (data) return { isFile: () => true, isDirectory: () => false, size: data.byteLength };
  if (folders.has(key)) return { isFile: () => false, isDirectory: () => true, size: 0 };
  throw fsError('ENOENT', 'stat', location);
}

function list(location: string): string[] {
  const key = keyOf(location);
  const entries = folders.get(key);
  if (!entries) throw fsError(fileData.has(key) ? 'ENOTDIR' : 'ENOENT', 'scandir', location);
  return [...entries].sort();
}

function readSync(location: string): Uint8Array {
  const key = keyOf(location);
  const data = fileData.get(key);
  if (data) return data;
  throw fsError(folders.has(key) ? 'EISDIR' : 'ENOENT', 'open', location);
}

async function fetchBytes(location: string): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(location);
  } catch (err) {
    throw Object.assign(new Error(`cannot fetch ${location}: ${(err as Error).message}`), { code: 'EIO' });
  }
  if (res.status === 404) throw fsError('ENOENT', 'open', location);
  if (!res.ok) throw Object.assign(new Error(`cannot fetch ${location}: HTTP ${res.status} ${res.statusText}`), { code: 'EIO' });
  return new Uint8Array(await res.arrayBuffer());
}

async function readFile(location: string): Promise<Uint8Array>;
async function readFile(location: string, encoding: 'utf8'): Promise<string>;
async function readFile(location: string, encoding?: 'utf8'): Promise<Uint8Array | string> {
  const key = keyOf(location);
  const bytes = fileData.get(key) ?? (folders.has(key) ? readSync(location) : await fetchBytes(location));
  return encoding === 'utf8' ? new TextDecoder().decode(bytes) : bytes;
}

async function readdir(location: string): Promise<string[]>;
async function readdir(location: string, options: { withFileTypes: true }): Promise<DirEntry[]>;
async function readdir(location: string, options?: { withFileTypes: true }): Promise<string[] | DirEntry[]> {
  const names = list(location);
  if (!options?.withFileTypes) return names;
  return names.map((name) => {
    const s = stat(posix.join(keyOf(location), name));
    return { name, isFile: () => s.isFile(), isDirectory: () => s.isDirectory() };
  });
}

function readFileSync(location: string, _encoding: 'utf8'): string {
  return new TextDecoder().decode(readSync(location));
}

async function writeFile(location: string, data: Uint8Array | string): Promise<void> {
  memoryFiles.put(location, typeof data === 'string' ? data : data.slice());
}

export const fs: PlatformFiles = {
  existsSync: (location) => {
    const key = keyOf(location);
    return fileData.has(key) || folders.has(key);
  },
  statSync: stat,
  readdirSync: list,
  readFileSync,
  readdir,
  readFile,
  writeFile,
  // A write to memory is whole at once.
  writeAtomic: writeFile,
};

export const path: PlatformPath = posix;
