import { inflateSync } from 'fflate';
import { InputError } from '../core/errors.js';

/**
 * A strict, bounded reader for ZIP archives held in memory, for the archives `torch.save`
 * writes (entries STORED, 64-byte aligned, with ZIP64 end records) and any re-zipped copy
 * of them (DEFLATE entries, decompressed with fflate's `inflateSync`).
 *
 * Why not fflate's `unzipSync`: it trusts the archive's counts and offsets (a ZIP64 end
 * record claiming 2^32 entries makes it loop for minutes over out-of-range reads) and
 * allocates each entry's declared uncompressed size unchecked. Here every count, size and
 * offset is checked against the bytes at hand before use, CRC-32s are verified, and the
 * only allocation driven by the file is a DEFLATE output, capped at the format's maximum
 * ratio (1032:1) of the compressed bytes present. Pure TypeScript: works in browsers too.
 */

/** A malformed, truncated or unsupported ZIP archive. */
export class ZipError extends InputError {
  override name = 'ZipError';
}

/** One file of an archive, as its central directory describes it. */
export interface ZipEntry {
  name: string;
  /** 0 = STORED, 8 = DEFLATE (the only two accepted). */
  method: number;
  compressedSize: number;
  size: number;
  crc32: number;
  /** Offset of the entry's (compressed) data in the archive. */
  dataOffset: number;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_END = 0x06054b50;
const SIG_END64 = 0x06064b50;
const SIG_LOCATOR64 = 0x07064b50;
// DEFLATE cannot expand by more than this: 258 bytes per 2-bit code, plus a little slack.
const MAX_DEFLATE_RATIO = 1032;

/** True when `bytes` starts like a ZIP archive (a local file header, or an empty archive's end record). */
export function isZip(bytes: Uint8Array): boolean {
  return bytes.byteLength >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b &&
    ((bytes[2] === 3 && bytes[3] === 4) || (bytes[2] === 5 && bytes[3] === 6));
}

/** Reads the central directory: every entry by name, in directory order. Throws {@link ZipError}. */
export function readZipDirectory(bytes: Uint8Array): Map<string, ZipEntry> {
  const len = bytes.byteLength;
  const view = new DataView(bytes.buffer, bytes.byteOffset, len);
  const fail = (msg: string): never => {
    throw new ZipError(msg);
  };
  const u16 = (p: number): number => view.getUint16(p, true);
  const u32 = (p: number): number => view.getUint32(p, true);
  // A 64-bit offset or size, checked against the archive's length (`limit` raises it, for sizes after inflation).
  const u64 = (p: number, what: string, limit = len): number => {
    const v = view.getBigUint64(p, true);
    if (v > BigInt(limit)) fail(`${what} ${v} exceeds the archive's ${len} bytes (truncated file?)`);
    return Number(v);
  };

  // The end-of-central-directory record: 22 bytes plus a comment of up to 65535 bytes, at the end.
  let end = -1;
  for (let p = len - 22; p >= 0 && p >= len - 22 - 0xffff; p--) {
    if (u32(p) === SIG_END && p + 22 + u16(p + 20) <= len) {
      end = p;
      break;
    }
  }
  if (end < 0) fail('no end-of-central-directory record (truncated file?)');
  if (u16(end + 4) !== 0 || u16(end + 6) !== 0) fail('multi-disk archives are not supported');
  let count = u16(end + 10);
  let dirSize = u32(end + 12);
  let dirOffset = u32(end + 16);
  let dirLimit = end;
  if (end >= 20 && u32(end - 20) === SIG_LOCATOR64) {
    const at = u64(end - 12, 'ZIP64 end record offset');
    if (at > end - 20 - 56 || u32(at) !== SIG_END64) fail('the ZIP64 end record is missing or misplaced');
    count = u64(at + 32, 'ZIP64 entry count');
    dirSize = u64(at + 40, 'ZIP64 central directory size');
    dirOffset = u64(at + 48, 'ZIP64 central directory offset');
    dirLimit = at;
  }
  if (dirOffset > dirLimit || dirSize > dirLimit - dirOffset) {
    fail(`the central directory (${dirSize} bytes at ${dirOffset}) lies outside the archive (truncated file?)`);
  }
  if (count > dirSize / 46) fail(`${count} entries cannot fit in a ${dirSize}-byte central directory`);

  const entries = new Map<string, ZipEntry>();
  const dirEnd = dirOffset + dirSize;
  let p = dirOffset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > dirEnd || u32(p) !== SIG_CENTRAL) fail(`central directory entry ${i} is corrupt`);
    const flags = u16(p + 8);
    const method = u16(p + 10);
    const crc32 = u32(p + 16);
    let compressedSize = u32(p + 20);
    let size = u32(p + 24);
    const nameLen = u16(p + 28);
    const extraLen = u16(p + 30);
    const commentLen = u16(p + 32);
    let local = u32(p + 42);
    const next = p + 46 + nameLen + extraLen + commentLen;
    if (next > dirEnd) fail(`central directory entry ${i} overruns the directory`);
    const rawName = bytes.subarray(p + 46, p + 46 + nameLen);
    const name = flags & 0x800 ? decodeUtf8(rawName, fail) : latin1(rawName);
    // ZIP64 extended information (id 1): the 64-bit values of the fields saturated at 0xffffffff, in this order.
    for (let e = p + 46 + nameLen, eEnd = e + extraLen; e + 4 <= eEnd;) {
      const id = u16(e);
      const n = u16(e + 2);
      if (e + 4 + n > eEnd) fail(`entry '${name}': its extra field overruns it`);
      if (id === 1) {
        let q = e + 4;
        const field = (v: number, what: string): number => {
          if (v !== 0xffffffff) return v;
          if (q + 8 > e + 4 + n) fail(`entry '${name}': the ZIP64 extra field lacks the ${what}`);
          q += 8;
          return u64(q - 8, `entry '${name}': ${what}`, what === 'size' ? Number.MAX_SAFE_INTEGER : len);
        };
        size = field(size, 'size');
        compressedSize = field(compressedSize, 'compressed size');
        local = field(local, 'offset');
      }
      e += 4 + n;
    }
    if (flags & 1) fail(`entry '${name}' is encrypted`);
    if (method !== 0 && method !== 8) fail(`entry '${name}' uses compression method ${method}; only STORED and DEFLATE are supported`);
    if (method === 0 && size !== compressedSize) fail(`STORED entry '${name}' has different sizes (${compressedSize} and ${size})`);
    if (method === 8 && size > compressedSize * MAX_DEFLATE_RATIO + 1024) {
      fail(`entry '${name}' claims to inflate ${compressedSize} bytes to ${size}, more than DEFLATE can`);
    }
    if (local + 30 > dirOffset || u32(local) !== SIG_LOCAL) fail(`entry '${name}': no local header at offset ${local}`);
    const dataOffset = local + 30 + u16(local + 26) + u16(local + 28);
    if (dataOffset > dirOffset || compressedSize > dirOffset - dataOffset) {
      fail(`entry '${name}' (${compressedSize} bytes at ${dataOffset}) overruns the archive data (truncated file?)`);
    }
    if (entries.has(name)) fail(`entry '${name}' appears twice`);
    entries.set(name, { name, method, compressedSize, size, crc32, dataOffset });
    p = next;
  }
  return entries;
}

/**
 * An entry's bytes: a view into `bytes` for STORED entries (no copy), a new array for DEFLATE
 * ones. The CRC-32 is verified (unless the archive recorded 0, which torch 2.x writes when
 * told not to compute it). Throws {@link ZipError}.
 */
export function readZipEntry(bytes: Uint8Array, entry: ZipEntry): Uint8Array {
  const raw = bytes.subarray(entry.dataOffset, entry.dataOffset + entry.compressedSize);
  let data = raw;
  if (entry.method === 8) {
    try {
      data = inflateSync(raw, { out: new Uint8Array(entry.size) });
    } catch (err) {
      throw new ZipError(`entry '${entry.name}': corrupt DEFLATE data (${(err as Error).message})`);
    }
    if (data.byteLength !== entry.size) {
      throw new ZipError(`entry '${entry.name}' inflates to ${data.byteLength} bytes, not the ${entry.size} recorded`);
    }
  }
  if (entry.crc32 !== 0 || data.byteLength === 0) {
    const crc = crc32(data);
    if (crc !== entry.crc32) {
      throw new ZipError(`entry '${entry.name}': CRC-32 mismatch (0x${crc.toString(16)}, recorded 0x${entry.crc32.toString(16)}): the file is corrupt`);
    }
  }
  return data;
}

let crcTable: Uint32Array | undefined;

/** CRC-32 (ISO 3309, the one ZIP uses). */
export function crc32(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  const t = crcTable;
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = t[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function decodeUtf8(raw: Uint8Array, fail: (msg: string) => never): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    return fail('an entry name is not valid UTF-8');
  }
}

function latin1(raw: Uint8Array): string {
  let s = '';
  for (const b of raw) s += String.fromCharCode(b);
  return s;
}
