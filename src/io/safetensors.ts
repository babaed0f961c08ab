import { InputError } from '../core/errors.js';
import { fs } from '../platform/files.js';

const { readFile, writeFile } = fs;

/**
 * Reader/writer for the safetensors format (https://github.com/huggingface/safetensors):
 * an 8-byte little-endian header length N, N bytes of JSON header (padded with spaces to
 * 8-byte alignment), then the raw little-endian tensor bytes the header's `data_offsets` point at.
 */

/** Element types of the safetensors spec that this module understands. */
export type SafetensorsDtype =
  | 'F64' | 'F32' | 'F16' | 'BF16'
  | 'I64' | 'I32' | 'I16' | 'I8'
  | 'U64' | 'U32' | 'U16' | 'U8' | 'BOOL';

/** The array a tensor's data decodes to. Half-precision floats decode to Float32Array. */
export type TensorData =
  | Float64Array | Float32Array
  | BigInt64Array | Int32Array | Int16Array | Int8Array
  | BigUint64Array | Uint32Array | Uint16Array | Uint8Array;

/**
 * One tensor. `dtype` is the element type in the file; `data` is row-major with
 * `shape.reduce(*)` elements (a scalar has `shape` `[]` and one element).
 * F16/BF16 (and F64 unless `keepF64`) decode to Float32Array; I64/U64 to BigInt arrays.
 */
export interface Tensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: TensorData;
}

/** A decoded file: tensors in file order plus the optional string-to-string `__metadata__`. */
export interface SafetensorsFile {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
}

/** A malformed, truncated or unsupported safetensors file; the message names the file when known. */
export class SafetensorsError extends InputError {
  override name = 'SafetensorsError';
}

const BYTES: Record<SafetensorsDtype, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
};

// The JSON header of real checkpoints is a few hundred KB at most; this guards against
// reading garbage as a length and allocating gigabytes (the reference implementation uses 100 MB).
const MAX_HEADER_BYTES = 100_000_000;

/** Options for {@link decodeSafetensors}. */
export interface SafetensorsReadOptions {
  /** Keep F64 tensors as Float64Array instead of converting them to Float32Array. */
  keepF64?: boolean;
  /** Used in error messages. */
  source?: string;
}

/** Decodes a whole safetensors file held in memory. Throws {@link SafetensorsError} on corrupt input. */
export function decodeSafetensors(bytes: Uint8Array, options: SafetensorsReadOptions = {}): SafetensorsFile {
  const where = options.source ? `${options.source}: ` : '';
  const fail = (msg: string): never => {
    throw new SafetensorsError(`${where}not a valid safetensors file: ${msg}`);
  };
  if (bytes.byteLength < 8) fail(`only ${bytes.byteLength} bytes, the 8-byte header length is missing`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = view.getBigUint64(0, true);
  if (headerLen > BigInt(Math.min(MAX_HEADER_BYTES, bytes.byteLength - 8))) {
    fail(`header length ${headerLen} exceeds the ${bytes.byteLength - 8} bytes that follow (truncated file?)`);
  }
  const n = Number(headerLen);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (err) {
    fail(`header is not UTF-8 JSON (${(err as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  const dataStart = 8 + n;
  const dataLen = bytes.byteLength - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null) fail('__metadata__ is not an object');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__.${k} is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof info !== 'object' || info === null) fail(`entry '${name}' is not an object`);
    const dtype = info.dtype;
    if (typeof dtype !== 'string' || !(dtype in BYTES)) fail(`tensor '${name}' has unsupported dtype ${JSON.stringify(dtype)}`);
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(`tensor '${name}' has an invalid shape`);
    const offsets = info.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      fail(`tensor '${name}' has invalid data_offsets`);
    }
    const [begin, end] = offsets as [number, number];
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    if (end < begin || end - begin !== count * BYTES[dtype as SafetensorsDtype]) {
      fail(`tensor '${name}' (${dtype} ${JSON.stringify(shape)}) has data_offsets [${begin}, ${end}] of the wrong length`);
    }
    if (end > dataLen) fail(`tensor '${name}' ends at byte ${end} but the data section has ${dataLen} bytes (truncated file?)`);
    entries.push({ name, dtype: dtype as SafetensorsDtype, shape: shape as number[], begin, end });
  }
  // The spec requires the tensors to tile the data section without holes or overlaps.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const e of sorted) {
    if (e.begin !== cursor) fail(`tensor '${e.name}' starts at byte ${e.begin}, expected ${cursor} (overlap or hole)`);
    cursor = e.end;
  }
  if (cursor !== dataLen) fail(`data section has ${dataLen} bytes but the tensors cover ${cursor}`);

  const tensors = new Map<string, Tensor>();
  for (const e of entries) {
    // Copy (Buffer#slice would not): typed arrays need aligned offsets, and the file buffer can then be freed.
    const raw = new Uint8Array(e.end - e.begin);
    raw.set(bytes.subarray(dataStart + e.begin, dataStart + e.end));
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: decodeTensorData(e.dtype, raw, options.keepF64 ?? false) });
  }
  return { tensors, metadata };
}

const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Decodes little-endian element bytes to the array type {@link Tensor} holds for `dtype`
 * (F16/BF16, and F64 unless `keepF64`, to Float32Array). The arrays are views of `raw.buffer`
 * when `raw` spans all of it (aligned and exactly sized), else of a copy.
 * Shared with the PyTorch checkpoint reader (src/io/pytorch.ts).
 */
export function decodeTensorData(dtype: SafetensorsDtype, raw: Uint8Array, keepF64: boolean): TensorData {
  if (!littleEndianHost) throw new SafetensorsError('decoding tensors needs a little-endian host');
  if (raw.byteOffset !== 0 || raw.byteLength !== raw.buffer.byteLength) raw = raw.slice();
  const buf = raw.buffer;
  switch (dtype) {
    case 'F32': return new Float32Array(buf);
    case 'F64': return keepF64 ? new Float64Array(buf) : Float32Array.from(new Float64Array(buf));
    case 'F16': return halfToFloat32(new Uint16Array(buf));
    case 'BF16': return bf16ToFloat32(new Uint16Array(buf));
    case 'I64': return new BigInt64Array(buf);
    case 'U64': return new BigUint64Array(buf);
    case 'I32': return new Int32Array(buf);
    case 'U32': return new Uint32Array(buf);
    case 'I16': return new Int16Array(buf);
    case 'U16': return new Uint16Array(buf);
    case 'I8': return new Int8Array(buf);
    case 'U8':
    case 'BOOL': return new Uint8Array(buf);
  }
}

function halfToFloat32(h: Uint16Array): Float32Array {
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) {
    const v = h[i]!;
    const sign = v & 0x8000 ? -1 : 1;
    const exp = (v >> 10) & 0x1f;
    const frac = v & 0x3ff;
    if (exp === 0) out[i] = sign * frac * 2 ** -24;
    else if (exp === 31) out[i] = frac ? NaN : sign * Infinity;
    else out[i] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return out;
}

function bf16ToFloat32(h: Uint16Array): Float32Array {
  const bits = new Uint32Array(h.length);
  for (let i = 0; i < h.length; i++) bits[i] = h[i]! << 16;
  return new Float32Array(bits.buffer);
}

function float32ToHalf(f: Float32Array): Uint16Array {
  const out = new Uint16Array(f.length);
  const u = new Uint32Array(f.buffer, f.byteOffset, f.length);
  for (let i = 0; i < f.length; i++) {
    const x = u[i]!;
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) { out[i] = sign | 0x7c00 | (mant ? 0x200 : 0); continue; }
    const e = exp - 127 + 15;
    if (e >= 31) { out[i] = sign | 0x7c00; continue; }
    if (e <= 0) {
      if (e < -10) { out[i] = sign; continue; }
      mant |= 0x800000;
      const shift = 14 - e;
      let half = mant >>> shift;
      const rem = mant & ((1 << shift) - 1);
      const mid = 1 << (shift - 1);
      if (rem > mid || (rem === mid && half & 1)) half++;
      out[i] = sign | half;
      continue;
    }
    let half = (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++; // may carry into the exponent, which is correct
    out[i] = sign | half;
  }
  return out;
}

function float32ToBf16(f: Float32Array): Uint16Array {
  const out = new Uint16Array(f.length);
  const u = new Uint32Array(f.buffer, f.byteOffset, f.length);
  for (let i = 0; i < f.length; i++) {
    const x = u[i]!;
    if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) { out[i] = (x >>> 16) | 0x40; continue; } // keep NaN a NaN
    out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16; // round to nearest even, as torch does
  }
  return out;
}

/** Data accepted by {@link encodeSafetensors}: F16/BF16 tensors may be given as Float32Array and are rounded. */
export interface TensorInput {
  dtype: SafetensorsDtype;
  shape: number[];
  data: TensorData;
}

type ArrayCtor = { new (n: number): TensorData; readonly name: string };
const ARRAY_FOR: Record<SafetensorsDtype, ArrayCtor> = {
  F64: Float64Array, F32: Float32Array, F16: Uint16Array, BF16: Uint16Array, I64: BigInt64Array,
  I32: Int32Array, I16: Int16Array, I8: Int8Array, U64: BigUint64Array, U32: Uint32Array,
  U16: Uint16Array, U8: Uint8Array, BOOL: Uint8Array,
};

function rawBytes(name: string, t: TensorInput): Uint8Array {
  let data: TensorData = t.data;
  if ((t.dtype === 'F16' || t.dtype === 'BF16') && data instanceof Float32Array) {
    data = t.dtype === 'F16' ? float32ToHalf(data) : float32ToBf16(data);
  } else if (t.dtype === 'F32' && data instanceof Float64Array) {
    data = Float32Array.from(data);
  } else if (t.dtype === 'F64' && data instanceof Float32Array) {
    data = Float64Array.from(data);
  }
  if (!(data instanceof ARRAY_FOR[t.dtype])) {
    throw new SafetensorsError(`tensor '${name}': dtype ${t.dtype} needs a ${ARRAY_FOR[t.dtype].name}, got ${data.constructor.name}`);
  }
  const count = t.shape.reduce((a, b) => a * b, 1);
  if (data.length !== count) {
    throw new SafetensorsError(`tensor '${name}': shape ${JSON.stringify(t.shape)} needs ${count} elements, got ${data.length}`);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Encodes tensors (in map order) and string metadata into safetensors bytes.
 * The header is space-padded so the data section starts 8-byte aligned, as the spec recommends.
 */
export function encodeSafetensors(tensors: Map<string, TensorInput>, metadata: Record<string, string> = {}): Uint8Array {
  if (!littleEndianHost) throw new SafetensorsError('safetensors encoding needs a little-endian host');
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    if (name === '__metadata__') throw new SafetensorsError("a tensor cannot be named '__metadata__'");
    const raw = rawBytes(name, t);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + raw.byteLength] };
    blobs.push(raw);
    offset += raw.byteLength;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  if (padded !== json.byteLength) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  let at = 8 + json.byteLength;
  for (const b of blobs) {
    out.set(b, at);
    at += b.byteLength;
  }
  return out;
}

/** Reads and decodes a safetensors file; errors name the file. */
export async function readSafetensors(path: string, options: Omit<SafetensorsReadOptions, 'source'> = {}): Promise<SafetensorsFile> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new SafetensorsError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return decodeSafetensors(bytes, { ...options, source: path });
}

/** Encodes and writes a safetensors file. */
export async function writeSafetensors(
  path: string,
  tensors: Map<string, TensorInput>,
  metadata: Record<string, string> = {},
): Promise<void> {
  await writeFile(path, encodeSafetensors(tensors, metadata));
}

/** Converts any tensor's data to Float32Array (I64 via Number, exact below 2^24 in magnitude). */
export function toFloat32(t: Tensor): Float32Array {
  if (t.data instanceof Float32Array) return t.data;
  const out = new Float32Array(t.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Number(t.data[i]);
  return out;
}
