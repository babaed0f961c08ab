/**
 * POSIX path arithmetic for the browser side (files.browser.ts): the subset of `node:path` the
 * library uses, following Node's `path.posix` algorithms (test/platform/posix.test.ts compares
 * the two). The working folder is `/`.
 */
import type { PlatformPath } from './types.js';

/** Resolves `.` and `..` segments (Node's normalizeString for POSIX). */
function normalizeString(p: string, allowAboveRoot: boolean): string {
  let res = '';
  let lastSegmentLength = 0;
  let lastSlash = -1;
  let dots = 0;
  let code = 0;
  for (let i = 0; i <= p.length; ++i) {
    if (i < p.length) code = p.charCodeAt(i);
    else if (code === 47) break;
    else code = 47;
    if (code === 47) {
      if (lastSlash === i - 1 || dots === 1) {
        // a repeated slash or a '.' segment: nothing to add
      } else if (dots === 2) {
        if (res.length < 2 || lastSegmentLength !== 2 || res.charCodeAt(res.length - 1) !== 46 || res.charCodeAt(res.length - 2) !== 46) {
          if (res.length > 2) {
            const lastSlashIndex = res.lastIndexOf('/');
            if (lastSlashIndex === -1) {
              res = '';
              lastSegmentLength = 0;
            } else {
              res = res.slice(0, lastSlashIndex);
              lastSegmentLength = res.length - 1 - res.lastIndexOf('/');
            }
            lastSlash = i;
            dots = 0;
            continue;
          } else if (res.length !== 0) {
            res = '';
            lastSegmentLength = 0;
            lastSlash = i;
            dots = 0;
            continue;
          }
        }
        if (allowAboveRoot) {
          res += res.length > 0 ? '/..' : '..';
          lastSegmentLength = 2;
        }
      } else {
        if (res.length > 0) res += '/' + p.slice(lastSlash + 1, i);
        else res = p.slice(lastSlash + 1, i);
        lastSegmentLength = i - lastSlash - 1;
      }
      lastSlash = i;
      dots = 0;
    } else if (code === 46 && dots !== -1) {
      ++dots;
    } else {
      dots = -1;
    }
  }
  return res;
}

function normalize(p: string): string {
  if (p.length === 0) return '.';
  const isAbsolute = p.charCodeAt(0) === 47;
  const trailingSeparator = p.charCodeAt(p.length - 1) === 47;
  let out = normalizeString(p, !isAbsolute);
  if (out.length === 0) {
    if (isAbsolute) return '/';
    return trailingSeparator ? './' : '.';
  }
  if (trailingSeparator) out += '/';
  return isAbsolute ? `/${out}` : out;
}

function resolve(...parts: string[]): string {
  let resolved = '';
  let absolute = false;
  for (let i = parts.length - 1; i >= -1 && !absolute; i--) {
    const p = i >= 0 ? parts[i]! : '/';
    if (p.length === 0) continue;
    resolved = `${p}/${resolved}`;
    absolute = p.charCodeAt(0) === 47;
  }
  resolved = normalizeString(resolved, !absolute);
  return absolute ? `/${resolved}` : resolved.length > 0 ? resolved : '.';
}

function join(...parts: string[]): string {
  const joined = parts.filter((p) => p.length > 0).join('/');
  return joined.length === 0 ? '.' : normalize(joined);
}

function dirname(p: string): string {
  if (p.length === 0) return '.';
  const hasRoot = p.charCodeAt(0) === 47;
  let end = -1;
  let matchedSlash = true;
  for (let i = p.length - 1; i >= 1; --i) {
    if (p.charCodeAt(i) === 47) {
      if (!matchedSlash) {
        end = i;
        break;
      }
    } else {
      matchedSlash = false;
    }
  }
  if (end === -1) return hasRoot ? '/' : '.';
  if (hasRoot && end === 1) return '//';
  return p.slice(0, end);
}

/** The last segment without trailing slashes. */
function lastSegment(p: string): string {
  let end = p.length;
  while (end > 0 && p.charCodeAt(end - 1) === 47) end--;
  if (end === 0) return '';
  return p.slice(p.lastIndexOf('/', end - 1) + 1, end);
}

function basename(p: string, suffix?: string): string {
  const base = lastSegment(p);
  if (suffix !== undefined && suffix.length > 0 && suffix !== base && base.endsWith(suffix)) return base.slice(0, base.length - suffix.length);
  return base;
}

function extname(p: string): string {
  const base = lastSegment(p);
  const dot = base.lastIndexOf('.');
  if (dot <= 0 || base === '..') return '';
  // A name of dots only before the extension ('..x' has '.x'; '...' has '.').
  return base.slice(dot);
}

function relative(from: string, to: string): string {
  if (from === to) return '';
  const a = resolve(from).split('/').filter(Boolean);
  const b = resolve(to).split('/').filter(Boolean);
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return [...Array<string>(a.length - i).fill('..'), ...b.slice(i)].join('/');
}

function parse(p: string): { root: string; dir: string; base: string; ext: string; name: string } {
  const root = p.charCodeAt(0) === 47 ? '/' : '';
  if (p.length === 0) return { root, dir: '', base: '', ext: '', name: '' };
  const base = lastSegment(p);
  const ext = extname(p);
  let dir = '';
  const trimmed = p.slice(0, p.length - (p.length - p.replace(/\/+$/, '').length));
  const slash = trimmed.lastIndexOf('/');
  if (slash > 0) dir = trimmed.slice(0, slash);
  else if (slash === 0) dir = '/';
  return { root, dir, base, ext, name: base.slice(0, base.length - ext.length) };
}

export const posix: PlatformPath = {
  sep: '/',
  join,
  resolve,
  dirname,
  basename,
  extname,
  isAbsolute: (p) => p.length > 0 && p.charCodeAt(0) === 47,
  relative,
  normalize,
  parse,
};
