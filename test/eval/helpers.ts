import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateSync } from 'node:zlib';

/** Repository root (tests run from dist/test/eval). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** The shared datasets folder, next to the repository. */
export const SHARED = path.resolve(ROOT, '../shared/data');

/** `false` when `dir` (under the shared data) exists, else a skip message for node:test. */
export function skipUnlessShared(dir: string): false | string {
  return existsSync(path.join(SHARED, dir)) ? false : `needs ${path.join(SHARED, dir)} (shared data not present)`;
}

/** Decodes a fixture array: base64 of zlib-compressed little-endian float64. */
export function unpack(b64: string): Float64Array {
  const buf = inflateSync(Buffer.from(b64, 'base64'));
  return new Float64Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

/** Largest absolute difference between two equally long arrays (Infinity if lengths differ). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
