import { InputError } from '../core/errors.js';
import {
  HostValue, PickleError, PyDict, PyGlobal, PyObject, PySet, PyTuple, PyList,
  readPickle, typeName, type PickleHooks, type PickleValue,
} from './pickle.js';
import { decodeTensorData, type SafetensorsDtype, type SafetensorsFile, type Tensor } from './safetensors.js';
import { isZip, readZipDirectory, readZipEntry, ZipError, type ZipEntry } from './zip.js';

/**
 * Reads PyTorch checkpoints (`torch.save` files: .pth, .pt, .ckpt) without Python, returning
 * the state_dict's tensors in the same shape as a decoded safetensors file.
 *
 * Formats:
 * - zip (torch >= 1.6, the default): `<dir>/data.pkl` holds the pickled object, whose tensors
 *   point at storages `<dir>/data/<key>`; `<dir>/byteorder` ("little"/"big", torch >= 2.1) when present.
 * - legacy (`_use_new_zipfile_serialization=False`, and torch 0.4-1.5): consecutive pickles of
 *   the magic number, the protocol version (1001), sys_info, the object, then the list of
 *   storage keys, then per key an 8-byte little-endian element count and the raw bytes.
 * - tar (torch < 0.4) is recognised and refused with a message saying so.
 *
 * The pickle is parsed as data (src/io/pickle.ts), with an allowlist of the globals a
 * state_dict checkpoint needs ({@link ALLOWED_GLOBALS}); any other global is refused by name
 * before anything is built from it. All sizes read from the file are checked against the
 * file's size before any allocation; see {@link decodeTorchCheckpoint}.
 */

/** A malformed, truncated, refused or unsupported PyTorch checkpoint; the message names the file when known. */
export class TorchCheckpointError extends InputError {
  override name = 'TorchCheckpointError';
}

/** Which `torch.save` format a file uses. */
export type TorchFormat = 'zip' | 'legacy';

/** Options of {@link decodeTorchCheckpoint}. */
export interface TorchReadOptions {
  /** Used in error messages (the file name). */
  source?: string;
  /**
   * The top-level entry that holds the state_dict, e.g. `'model'` or `'state_dict'`. Without
   * it: the top-level dict itself when any of its values is a tensor, else the first of
   * {@link STATE_DICT_KEYS} that holds a dict with tensors.
   */
  key?: string;
  /** Removed from every name that starts with it: `'module.'` for DataParallel/DDP checkpoints. */
  stripPrefix?: string;
  /** Keep F64 tensors as Float64Array instead of converting them to Float32Array. */
  keepF64?: boolean;
}

/**
 * A decoded checkpoint: a {@link SafetensorsFile} (so either reader's result can be used the
 * same way; `metadata` is empty) plus where the state_dict came from.
 */
export interface TorchStateDict extends SafetensorsFile {
  /**
   * The state_dict's tensors by name, in file order, each materialised as its own contiguous
   * row-major array (views sharing a storage are copied apart). `dtype` is the file's element
   * type; F16/BF16 (and F64 unless `keepF64`) are decoded to Float32Array, I64/U64 to BigInt arrays.
   */
  tensors: Map<string, Tensor>;
  format: TorchFormat;
  /** The top-level entry the state_dict was found under, null when it is the top level itself. */
  key: string | null;
  /** Names of the state_dict's entries that are not tensors (e.g. an `int`), left out of `tensors`. */
  skipped: string[];
}

/** The wrapper keys tried, in order, when the top level is not itself a state_dict. */
export const STATE_DICT_KEYS: readonly string[] = ['state_dict', 'model_state_dict', 'model', 'module'];

/**
 * The decoded tensors may total at most this multiple of the file's size (plus
 * {@link OUTPUT_SLACK_BYTES}), counted in their stored dtype; so may a re-zipped archive's
 * DEFLATE entries once inflated. Views and expanded (stride-0) tensors can legitimately
 * exceed their storage; this bounds what a small hostile file can make the reader allocate.
 */
export const MAX_OUTPUT_RATIO = 4;
/** See {@link MAX_OUTPUT_RATIO}. */
export const OUTPUT_SLACK_BYTES = 16 << 20;

// torch dtype name -> safetensors dtype (when the Tensor type has one) and bytes per element.
const DTYPES: Record<string, { st?: SafetensorsDtype; size: number }> = {
  float64: { st: 'F64', size: 8 }, float32: { st: 'F32', size: 4 }, float16: { st: 'F16', size: 2 },
  bfloat16: { st: 'BF16', size: 2 }, int64: { st: 'I64', size: 8 }, int32: { st: 'I32', size: 4 },
  int16: { st: 'I16', size: 2 }, int8: { st: 'I8', size: 1 }, uint8: { st: 'U8', size: 1 },
  bool: { st: 'BOOL', size: 1 }, uint16: { st: 'U16', size: 2 }, uint32: { st: 'U32', size: 4 },
  uint64: { st: 'U64', size: 8 },
  complex32: { size: 4 }, complex64: { size: 8 }, complex128: { size: 16 },
  float8_e4m3fn: { size: 1 }, float8_e5m2: { size: 1 }, float8_e4m3fnuz: { size: 1 },
  float8_e5m2fnuz: { size: 1 }, float8_e8m0fnu: { size: 1 }, float4_e2m1fn_x2: { size: 1 },
  qint8: { size: 1 }, quint8: { size: 1 }, qint32: { size: 4 }, quint4x2: { size: 1 }, quint2x4: { size: 1 },
};
const DTYPE_ALIASES: Record<string, string> = {
  float: 'float32', double: 'float64', half: 'float16', long: 'int64', int: 'int32', short: 'int16',
  chalf: 'complex32', cfloat: 'complex64', cdouble: 'complex128',
};
// Storage classes of torch.save (torch.cuda.* in checkpoints written on a GPU by torch < 1.12).
const STORAGE_DTYPES: Record<string, string> = {
  DoubleStorage: 'float64', FloatStorage: 'float32', HalfStorage: 'float16', BFloat16Storage: 'bfloat16',
  LongStorage: 'int64', IntStorage: 'int32', ShortStorage: 'int16', CharStorage: 'int8', ByteStorage: 'uint8',
  BoolStorage: 'bool', ComplexFloatStorage: 'complex64', ComplexDoubleStorage: 'complex128',
  QInt8Storage: 'qint8', QUInt8Storage: 'quint8', QInt32Storage: 'qint32', QUInt4x2Storage: 'quint4x2',
  QUInt2x4Storage: 'quint2x4',
};
const UNTYPED_STORAGES = ['torch.storage.UntypedStorage', 'torch.UntypedStorage', 'torch.storage._UntypedStorage', 'torch._UntypedStorage'];

/**
 * The globals a checkpoint may reference, as module.name. Everything else (os.system,
 * builtins.eval, a model's own classes...) is refused by name. Storage classes
 * (`torch.FloatStorage`...; `torch.cuda.*` too) and dtypes (`torch.float32`...) are allowed as well.
 */
export const ALLOWED_GLOBALS: readonly string[] = [
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor', 'torch._utils._rebuild_tensor_v2', 'torch._utils._rebuild_tensor_v3',
  'torch._utils._rebuild_parameter', 'torch._utils._rebuild_parameter_with_state',
  'torch.Size', 'torch.device',
  'builtins.set', 'builtins.frozenset', 'builtins.object', 'copyreg._reconstructor', '_codecs.encode',
  'argparse.Namespace',
];

/** A storage as a persistent id names it: `nbytes` bytes of root storage `key` from `byteOffset`. */
class StorageRef extends HostValue {
  constructor(
    readonly key: string,
    /** Element type of the storage class (uint8 for untyped storages). */
    readonly dtype: string,
    readonly byteOffset: number,
    readonly nbytes: number,
  ) {
    super();
  }
  describe(): string {
    return 'torch storage';
  }
}

/** A tensor as `_rebuild_tensor*` describes it: a strided view of a storage, materialised on demand. */
class TensorRef extends HostValue {
  constructor(
    readonly storage: StorageRef,
    readonly dtype: string,
    readonly offset: number,
    readonly size: readonly number[],
    readonly stride: readonly number[],
  ) {
    super();
  }
  describe(): string {
    return 'torch.Tensor';
  }
}

class DtypeGlobal extends PyGlobal {
  constructor(name: string, readonly dtype: string) {
    super('torch', name);
  }
}

class StorageGlobal extends PyGlobal {
  constructor(module: string, name: string, readonly dtype: string) {
    super(module, name);
  }
}

/** Tar (torch < 0.4) is recognised by the POSIX tar magic. */
function isTar(bytes: Uint8Array): boolean {
  return bytes.byteLength >= 512 && latin1(bytes.subarray(257, 262)) === 'ustar';
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

function startsWithLegacyMagic(bytes: Uint8Array): boolean {
  if (bytes.byteLength < 2 || (bytes[0] !== 0x80 && bytes[0] !== 0x4c)) return false;
  try {
    return readPickle(bytes.subarray(0, 64), NO_GLOBALS).value === LEGACY_MAGIC;
  } catch {
    return false;
  }
}

const NO_GLOBALS: PickleHooks = {
  resolveGlobal(module, name) {
    throw new PickleError(`unexpected global '${module}.${name}'`);
  },
};

/**
 * True when `bytes` look like a `torch.save` file: a ZIP archive, a legacy-format pickle
 * (it starts with torch's magic number), or a tar archive (torch < 0.4, which
 * {@link decodeTorchCheckpoint} refuses with a message saying so). A cheap sniff of the
 * first bytes, for callers that accept .pth wherever they accept .safetensors.
 */
export function isTorchCheckpoint(bytes: Uint8Array): boolean {
  return isZip(bytes) || startsWithLegacyMagic(bytes) || isTar(bytes);
}

/**
 * Decodes a PyTorch checkpoint held in memory to the tensors of its state_dict.
 *
 * The state_dict is the top-level dict, or the one under `options.key`, or under one of
 * {@link STATE_DICT_KEYS} (`{"model": sd, "epoch": 3, "optimizer": {...}}` gives `sd`; the
 * other entries are parsed, with the same allowlist, and ignored). Only its tensors are
 * materialised. dtypes: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL, U16, U32, U64;
 * a tensor of another dtype (complex, float8, quantized) in the state_dict is an error.
 *
 * Limits: every storage's declared size must fit in the bytes the file has for it; the
 * decoded tensors may total at most {@link MAX_OUTPUT_RATIO} x the file size + 16 MiB; pickle
 * lengths and integers are bounded by the file (src/io/pickle.ts). Big-endian files are
 * byte-swapped. Throws {@link TorchCheckpointError} (an {@link InputError}) on anything else.
 */
export function decodeTorchCheckpoint(bytes: Uint8Array, options: TorchReadOptions = {}): TorchStateDict {
  const where = options.source ? `${options.source}: ` : '';
  try {
    if (isZip(bytes)) return decodeZip(bytes, options, where);
    if (isTar(bytes)) {
      throw new TorchCheckpointError(
        `${where}this is the tar checkpoint format of torch < 0.4, which is not supported; ` +
          'load it with torch and save it again (torch.save(torch.load(f), f2)) to convert it',
      );
    }
    if (startsWithLegacyMagic(bytes)) return decodeLegacy(bytes, options, where);
    throw new TorchCheckpointError(
      `${where}not a PyTorch checkpoint: neither a torch.save zip archive nor a legacy torch.save pickle`,
    );
  } catch (err) {
    if (err instanceof PickleError || err instanceof ZipError) {
      throw new TorchCheckpointError(`${where}not a valid PyTorch checkpoint: ${err.message}`);
    }
    throw err;
  }
}

function outputBudget(fileBytes: number): number {
  return MAX_OUTPUT_RATIO * fileBytes + OUTPUT_SLACK_BYTES;
}

/** Storage bytes by root key, filled in by the format readers. */
interface StorageSource {
  /** The bytes of root storage `key`, or an error. Called when a tensor is materialised. */
  bytesOf(key: string): Uint8Array;
  bigEndian: boolean;
}

function decodeZip(bytes: Uint8Array, options: TorchReadOptions, where: string): TorchStateDict {
  const entries = readZipDirectory(bytes);
  // DEFLATE entries (a re-zipped checkpoint) must not inflate past the output budget: a zip bomb is refused unread.
  let inflated = 0;
  for (const e of entries.values()) if (e.method === 8) inflated += e.size;
  if (inflated > outputBudget(bytes.byteLength)) {
    throw new TorchCheckpointError(
      `${where}its compressed entries would inflate to ${inflated} bytes, more than ${MAX_OUTPUT_RATIO}x the file's ${bytes.byteLength}; refusing`,
    );
  }
  const names = [...entries.keys()];
  const pkls = names.filter((n) => /^([^/]*\/)?data\.pkl$/.test(n));
  if (names.some((n) => /^([^/]*\/)?(constants\.pkl|code\/)/.test(n))) {
    throw new TorchCheckpointError(
      `${where}a TorchScript archive (torch.jit.save), not a torch.save checkpoint; save model.state_dict() with torch.save instead`,
    );
  }
  if (pkls.length !== 1) {
    throw new TorchCheckpointError(
      `${where}` +
        (pkls.length === 0
          ? `a zip archive without data.pkl, not a torch.save checkpoint (entries: ${list(names)})`
          : `a zip archive with ${pkls.length} data.pkl files (${list(pkls)}); expected one`),
    );
  }
  const prefix = pkls[0]!.slice(0, -'data.pkl'.length);
  const entry = (name: string): ZipEntry | undefined => entries.get(prefix + name);
  let bigEndian = false;
  const order = entry('byteorder');
  if (order) {
    const text = latin1(readZipEntry(bytes, order)).trim();
    if (text !== 'little' && text !== 'big') throw new PickleError(`byteorder says '${text.slice(0, 20)}'`);
    bigEndian = text === 'big';
  }
  const roots = new Map<string, StorageRef>();
  const hooks = checkpointHooks(where, (pid) => {
    const { key, dtype, nbytes } = storageId(pid, 5);
    const e = entry(`data/${key}`);
    if (!e) throw new PickleError(`storage '${key}' has no entry data/${key} in the archive`);
    if (nbytes > e.size) throw new PickleError(`storage '${key}' declares ${nbytes} bytes but its entry has ${e.size}`);
    let root = roots.get(key);
    if (!root) roots.set(key, (root = new StorageRef(key, dtype, 0, nbytes)));
    return root.dtype === dtype && root.nbytes === nbytes ? root : new StorageRef(key, dtype, 0, nbytes);
  });
  const cache = new Map<string, Uint8Array>();
  const source: StorageSource = {
    bigEndian,
    bytesOf(key) {
      let data = cache.get(key);
      if (!data) cache.set(key, (data = readZipEntry(bytes, entry(`data/${key}`)!)));
      return data;
    },
  };
  const root = readPickle(readZipEntry(bytes, entry('data.pkl')!), hooks).value;
  return stateDict(root, source, 'zip', bytes.byteLength, options, where);
}

function decodeLegacy(bytes: Uint8Array, options: TorchReadOptions, where: string): TorchStateDict {
  let at = readPickle(bytes, NO_GLOBALS).end; // the magic number, checked by the caller
  const protocol = readPickle(bytes, NO_GLOBALS, at);
  if (protocol.value !== LEGACY_PROTOCOL) throw new PickleError(`legacy protocol version ${String(protocol.value)}, expected ${LEGACY_PROTOCOL}`);
  const sysInfo = readPickle(bytes, NO_GLOBALS, protocol.end);
  if (!(sysInfo.value instanceof PyDict)) throw new PickleError('the legacy sys_info is not a dict');
  const littleEndian = sysInfo.value.get('little_endian');
  at = sysInfo.end;

  // Root storages by key with the size (in bytes) their persistent ids declare; views point into them.
  const roots = new Map<string, StorageRef>();
  const hooks = checkpointHooks(where, (pid) => {
    const { key, dtype, nbytes, view } = storageId(pid, 6);
    if (nbytes > bytes.byteLength) throw new PickleError(`storage '${key}' declares ${nbytes} bytes, more than the file has`);
    let root = roots.get(key);
    if (!root) roots.set(key, (root = new StorageRef(key, dtype, 0, nbytes)));
    if (!view) return root.dtype === dtype ? root : new StorageRef(key, dtype, 0, root.nbytes);
    // view_metadata (view_key, offset, size) in elements of the storage's dtype: a slice of the root.
    const size = DTYPES[dtype]!.size;
    const [viewOffset, viewSize] = view;
    if (viewOffset * size + viewSize * size > root.nbytes) throw new PickleError(`storage view of '${key}' overruns it`);
    return new StorageRef(key, dtype, viewOffset * size, viewSize * size);
  });
  const obj = readPickle(bytes, hooks, at);
  const keys = readPickle(bytes, NO_GLOBALS, obj.end);
  if (!(keys.value instanceof PyList)) throw new PickleError('the legacy storage key list is not a list');
  at = keys.end;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const data = new Map<string, Uint8Array>();
  for (const k of keys.value.items) {
    const key = typeof k === 'string' || typeof k === 'number' ? String(k) : null;
    const root = key === null ? undefined : roots.get(key);
    if (!root || key === null) throw new PickleError(`storage key ${String(k).slice(0, 40)} is not used by any tensor`);
    if (data.has(key)) throw new PickleError(`storage '${key}' is listed twice`);
    if (at + 8 > bytes.byteLength) throw new PickleError(`the data of storage '${key}' is missing (truncated file?)`);
    const count = view.getBigUint64(at, true);
    const nbytes = count * BigInt(DTYPES[root.dtype]!.size);
    if (nbytes !== BigInt(root.nbytes)) throw new PickleError(`storage '${key}' holds ${count} elements, not the ${root.nbytes} bytes declared`);
    at += 8;
    if (root.nbytes > bytes.byteLength - at) throw new PickleError(`the data of storage '${key}' is cut short (truncated file?)`);
    data.set(key, bytes.subarray(at, at + root.nbytes));
    at += root.nbytes;
  }
  const source: StorageSource = {
    bigEndian: littleEndian === false,
    bytesOf(key) {
      const d = data.get(key);
      if (!d) throw new PickleError(`storage '${key}' has no data in the file`);
      return d;
    },
  };
  return stateDict(obj.value, source, 'legacy', bytes.byteLength, options, where);
}

/** Checks a persistent id `('storage', storage_type, key, location, numel[, view_metadata])`. */
function storageId(pid: PickleValue, arity: number): { key: string; dtype: string; nbytes: number; view: [number, number] | null } {
  if (!(pid instanceof PyTuple)) throw new PickleError(`a persistent id is a ${typeName(pid)}, not a tuple`);
  const [kind, type, key, , numel, viewMeta] = pid.items;
  if (kind === 'module') throw new PickleError('the file pickles a whole module (its source code), not a state_dict');
  if (kind !== 'storage' || pid.items.length !== arity) throw new PickleError(`unexpected persistent id ${describeShort(pid)}`);
  if (!(type instanceof StorageGlobal)) throw new PickleError(`a storage type is a ${typeName(type!)}`);
  if (typeof key !== 'string' && typeof key !== 'number') throw new PickleError('a storage key is not a string');
  if (String(key).length > 200) throw new PickleError(`a storage key of ${String(key).length} characters`);
  const size = DTYPES[type.dtype]!.size;
  if (!isCount(numel)) throw new PickleError(`storage '${key}' has a bad size`);
  if (numel > Number.MAX_SAFE_INTEGER / size) throw new PickleError(`storage '${key}' declares ${numel} elements`);
  let view: [number, number] | null = null;
  if (viewMeta !== undefined && viewMeta !== null) {
    if (!(viewMeta instanceof PyTuple) || viewMeta.items.length !== 3) throw new PickleError('bad storage view metadata');
    const [, off, n] = viewMeta.items;
    if (!isCount(off) || !isCount(n)) throw new PickleError('bad storage view metadata');
    view = [off, n];
  }
  return { key: String(key), dtype: type.dtype, nbytes: numel * size, view };
}

function isCount(v: PickleValue | undefined): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** The unpickler hooks: the allowlist, and `persistentLoad` for the format. */
function checkpointHooks(where: string, persistentLoad: (pid: PickleValue) => PickleValue): PickleHooks {
  return {
    persistentLoad,
    resolveGlobal(module, name, written) {
      const g = resolveGlobal(module, name);
      if (g) return g;
      const full = written.slice(0, 200);
      let hint = '';
      if (module === '__main__' || /^torch\.nn\.modules\./.test(module) || /^torchvision\.models/.test(module)) {
        hint = '; the file pickles Python objects such as a whole model: save model.state_dict() with torch.save instead';
      } else if (module.startsWith('__torch__')) {
        hint = '; a TorchScript archive is not a state_dict checkpoint';
      }
      throw new TorchCheckpointError(`${where}refusing to load global '${full}' (only the globals a state_dict needs are allowed)${hint}`);
    },
  };
}

function resolveGlobal(module: string, name: string): PickleValue | undefined {
  const full = `${module}.${name}`;
  if ((module === 'torch' || module === 'torch.cuda') && name in STORAGE_DTYPES) return new StorageGlobal(module, name, STORAGE_DTYPES[name]!);
  if (UNTYPED_STORAGES.includes(full)) return new StorageGlobal(module, name, 'uint8');
  if (module === 'torch' && (name in DTYPES || name in DTYPE_ALIASES)) return new DtypeGlobal(name, DTYPE_ALIASES[name] ?? name);
  if (!ALLOWED_GLOBALS.includes(full)) return undefined;
  const call = CALLS[full];
  return new PyGlobal(module, name, call);
}

type Call = (args: readonly PickleValue[], kwargs: PyDict | null) => PickleValue;

const CALLS: Record<string, Call | undefined> = {
  'collections.OrderedDict': (args) => {
    const d = new PyDict();
    if (args.length === 0) return d;
    const items = args[0];
    if (args.length !== 1 || !(items instanceof PyList || items instanceof PyTuple)) throw new PickleError('bad OrderedDict arguments');
    for (const pair of items.items) {
      if (!(pair instanceof PyTuple || pair instanceof PyList) || pair.items.length !== 2) throw new PickleError('bad OrderedDict item');
      d.set(pair.items[0]!, pair.items[1]!);
    }
    return d;
  },
  'builtins.set': (args) => makeSet(args, false),
  'builtins.frozenset': (args) => makeSet(args, true),
  'torch.Size': (args) => {
    if (args.length > 1 || (args.length === 1 && !(args[0] instanceof PyTuple || args[0] instanceof PyList))) throw new PickleError('bad torch.Size arguments');
    return new PyTuple(args.length ? [...(args[0] as PyTuple | PyList).items] : []);
  },
  'torch.device': (args) => {
    const [type, index] = args;
    if (typeof type !== 'string' || args.length > 2 || (index !== undefined && index !== null && !isCount(index))) throw new PickleError('bad torch.device arguments');
    return index === undefined || index === null ? type : `${type}:${index}`;
  },
  '_codecs.encode': (args) => {
    // How protocol 2 pickles Python 3 bytes: _codecs.encode(str, 'latin1').
    const [text, encoding] = args;
    if (typeof text !== 'string' || (encoding !== 'latin1' && encoding !== 'latin-1') || args.length !== 2) {
      throw new PickleError('_codecs.encode is only allowed as encode(str, "latin1")');
    }
    const out = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c > 0xff) throw new PickleError('_codecs.encode of a non-latin1 string');
      out[i] = c;
    }
    return out;
  },
  'argparse.Namespace': (args) => {
    if (args.length !== 0) throw new PickleError('argparse.Namespace with positional arguments');
    return new PyObject('argparse.Namespace');
  },
  'copyreg._reconstructor': (args) => {
    // Protocol 0/1 object creation: _reconstructor(cls, object, None) for a plain class.
    const [cls, base, state] = args;
    if (!(cls instanceof PyGlobal) || cls.qualifiedName !== 'argparse.Namespace' || !(base instanceof PyGlobal) ||
        base.qualifiedName !== 'builtins.object' || state !== null || args.length !== 3) {
      throw new PickleError('copyreg._reconstructor is only allowed for argparse.Namespace');
    }
    return new PyObject('argparse.Namespace');
  },
  'torch._utils._rebuild_tensor': (args) => rebuildTensor(args, 4, 4, false),
  'torch._utils._rebuild_tensor_v2': (args) => rebuildTensor(args, 6, 7, false),
  'torch._utils._rebuild_tensor_v3': (args) => rebuildTensor(args, 7, 8, true),
  'torch._utils._rebuild_parameter': (args) => parameter(args, 3),
  'torch._utils._rebuild_parameter_with_state': (args) => parameter(args, 4),
};

function makeSet(args: readonly PickleValue[], frozen: boolean): PySet {
  const s = new PySet(frozen);
  if (args.length === 0) return s;
  const items = args[0];
  if (args.length !== 1 || !(items instanceof PyList || items instanceof PyTuple || items instanceof PySet)) throw new PickleError('bad set arguments');
  for (const v of items instanceof PySet ? items.entries.values() : items.items) s.add(v);
  return s;
}

/** `_rebuild_tensor(storage, offset, size, stride)`, `_v2(..., requires_grad, hooks[, metadata])`, `_v3(..., dtype[, metadata])`. */
function rebuildTensor(args: readonly PickleValue[], min: number, max: number, v3: boolean): TensorRef {
  if (args.length < min || args.length > max) throw new PickleError(`a tensor is rebuilt from ${args.length} arguments`);
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof StorageRef)) throw new PickleError(`a tensor's storage is a ${typeName(storage!)}`);
  if (!isCount(offset)) throw new PickleError('a tensor has a bad storage offset');
  const dims = (v: PickleValue | undefined, what: string): number[] => {
    if (!(v instanceof PyTuple || v instanceof PyList) || v.items.length > 64 || !v.items.every(isCount)) {
      throw new PickleError(`a tensor has a bad ${what}`);
    }
    return v.items as number[];
  };
  const shape = dims(size, 'size');
  const strides = dims(stride, 'stride');
  if (shape.length !== strides.length) throw new PickleError(`a tensor has ${shape.length} sizes but ${strides.length} strides`);
  let dtype = storage.dtype;
  if (v3) {
    const d = args[6];
    if (!(d instanceof DtypeGlobal)) throw new PickleError(`a tensor's dtype is a ${typeName(d!)}`);
    dtype = d.dtype;
  }
  return new TensorRef(storage, dtype, offset, shape, strides);
}

function parameter(args: readonly PickleValue[], arity: number): TensorRef {
  if (args.length !== arity || !(args[0] instanceof TensorRef)) throw new PickleError('bad Parameter arguments');
  return args[0];
}

function stateDict(
  root: PickleValue,
  source: StorageSource,
  format: TorchFormat,
  fileBytes: number,
  options: TorchReadOptions,
  where: string,
): TorchStateDict {
  const fail = (msg: string): never => {
    throw new TorchCheckpointError(`${where}${msg}`);
  };
  if (!(root instanceof PyDict)) return fail(`the checkpoint holds a ${typeName(root)}, not a state_dict (a dict of tensors)`);
  const hasTensors = (d: PickleValue | undefined): boolean =>
    d instanceof PyDict && [...d.entries.values()].some((e) => e.value instanceof TensorRef);
  const topKeys = (): string => list([...root.entries.values()].map((e) => (typeof e.key === 'string' ? e.key : `<${typeName(e.key)}>`)));
  let sd: PyDict;
  let key: string | null = null;
  if (options.key !== undefined) {
    const v = root.get(options.key);
    if (v === undefined) return fail(`no entry '${options.key}' at the top level (entries: ${topKeys()})`);
    if (!(v instanceof PyDict)) return fail(`entry '${options.key}' is a ${typeName(v)}, not a state_dict`);
    sd = v;
    key = options.key;
  } else if (hasTensors(root)) {
    sd = root;
  } else {
    key = STATE_DICT_KEYS.find((k) => hasTensors(root.get(k))) ?? null;
    if (key === null) {
      return fail(`no state_dict found: no tensors at the top level nor under ${list(STATE_DICT_KEYS)} (entries: ${topKeys()}); choose the entry with the key option`);
    }
    sd = root.get(key) as PyDict;
  }

  const budget = { left: outputBudget(fileBytes) };
  const tensors = new Map<string, Tensor>();
  const skipped: string[] = [];
  const strip = options.stripPrefix;
  for (const { key: k, value } of sd.entries.values()) {
    const raw = typeof k === 'string' ? k : String(k);
    if (!(value instanceof TensorRef) || typeof k !== 'string') {
      skipped.push(raw);
      continue;
    }
    const name = strip && raw.startsWith(strip) ? raw.slice(strip.length) : raw;
    if (tensors.has(name)) fail(`two tensors are named '${name.slice(0, 200)}' once the prefix '${strip}' is removed`);
    try {
      tensors.set(name, materialise(value, source, budget, options.keepF64 ?? false));
    } catch (err) {
      if (err instanceof PickleError) fail(`tensor '${raw.slice(0, 200)}': ${err.message}`);
      throw err;
    }
  }
  return { tensors, metadata: {}, format, key, skipped };
}

/** Copies a strided view out of its storage into a new contiguous row-major tensor. */
function materialise(t: TensorRef, source: StorageSource, budget: { left: number }, keepF64: boolean): Tensor {
  const info = DTYPES[t.dtype]!;
  if (!info.st) {
    const supported = Object.keys(DTYPES).filter((d) => DTYPES[d]!.st).join(', ');
    throw new PickleError(`dtype ${t.dtype} is not supported (supported: ${supported})`);
  }
  const es = info.size;
  let numel = 1;
  for (const n of t.size) {
    numel *= n;
    if (numel * es > budget.left) {
      throw new PickleError(`its size [${t.size.join(', ')}] would take the decoded tensors past ${MAX_OUTPUT_RATIO}x the file size; refusing`);
    }
  }
  budget.left -= numel * es;
  const out = new Uint8Array(numel * es);
  if (numel > 0) {
    const root = source.bytesOf(t.storage.key);
    if (t.storage.byteOffset + t.storage.nbytes > root.byteLength) throw new PickleError(`storage '${t.storage.key}' is shorter than declared`);
    const storage = root.subarray(t.storage.byteOffset, t.storage.byteOffset + t.storage.nbytes);
    // The last element the view reaches must lie inside the storage (BigInt: strides can be huge).
    let last = BigInt(t.offset);
    for (let d = 0; d < t.size.length; d++) last += BigInt(t.size[d]! - 1) * BigInt(t.stride[d]!);
    if ((last + 1n) * BigInt(es) > BigInt(storage.byteLength)) {
      throw new PickleError(
        `its view (offset ${t.offset}, size [${t.size.join(', ')}], stride [${t.stride.join(', ')}]) overruns its ${storage.byteLength}-byte storage '${t.storage.key}'`,
      );
    }
    copyStrided(storage, out, t, es);
    if (source.bigEndian && es > 1) {
      for (let i = 0; i < out.length; i += es) out.subarray(i, i + es).reverse();
    }
  }
  return { dtype: info.st, shape: [...t.size], data: decodeTensorData(info.st, out, keepF64) };
}

function copyStrided(storage: Uint8Array, out: Uint8Array, t: TensorRef, es: number): void {
  const { size, stride, offset } = t;
  const nd = size.length;
  let contiguous = true;
  for (let d = nd - 1, expect = 1; d >= 0; d--) {
    if (size[d] !== 1 && stride[d] !== expect) contiguous = false;
    expect *= size[d]!;
  }
  if (contiguous) {
    out.set(storage.subarray(offset * es, offset * es + out.length));
    return;
  }
  // Odometer over the index, innermost dimension fastest.
  const idx = new Array<number>(nd).fill(0);
  let src = offset;
  const innerSize = size[nd - 1]!;
  const innerStride = stride[nd - 1]!;
  for (let o = 0; o < out.length;) {
    for (let i = 0, s = src * es; i < innerSize; i++, s += innerStride * es) {
      for (let b = 0; b < es; b++) out[o++] = storage[s + b]!;
    }
    let d = nd - 2;
    for (; d >= 0; d--) {
      idx[d]!++;
      src += stride[d]!;
      if (idx[d]! < size[d]!) break;
      src -= stride[d]! * size[d]!;
      idx[d] = 0;
    }
    if (d < 0) break;
  }
}

function describeShort(v: PyTuple): string {
  return `(${v.items.slice(0, 3).map((x) => (typeof x === 'string' ? `'${x.slice(0, 20)}'` : typeName(x))).join(', ')}${v.items.length > 3 ? ', ...' : ''})`;
}

function list(names: readonly string[]): string {
  const shown = names.slice(0, 10).map((n) => `'${n.slice(0, 60)}'`).join(', ');
  return names.length > 10 ? `${shown} and ${names.length - 10} more` : shown || 'none';
}

function latin1(raw: Uint8Array): string {
  let s = '';
  for (const b of raw) s += String.fromCharCode(b);
  return s;
}
