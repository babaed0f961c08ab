import { InputError } from '../core/errors.js';

/**
 * A reader for Python's pickle format (protocols 1-5 and the few protocol-0 opcodes those still
 * use) that is a data parser, never an interpreter: it builds plain values (numbers, strings,
 * lists, tuples, dicts, sets) and nothing else. Every GLOBAL (a reference to a Python class or
 * function) goes to the caller's `resolveGlobal`, which returns a stand-in value or refuses;
 * "calling" a stand-in (REDUCE, NEWOBJ) runs the caller's TypeScript for it, never Python.
 * A pickle from a hostile file therefore cannot do more than fail.
 *
 * Work and memory stay proportional to the pickle's length: every opcode consumes at least
 * one byte, every length read from the pickle is checked against the bytes left, integers are
 * capped at {@link MAX_INT_BYTES} bytes and recursive walks at {@link MAX_DEPTH} levels.
 * Errors are {@link PickleError}s (an {@link InputError}) naming the byte offset.
 */

/** A malformed, truncated or refused pickle. */
export class PickleError extends InputError {
  override name = 'PickleError';
}

/** The longest integer (LONG1/LONG4/text) accepted, in bytes: real checkpoints hold small ones. */
export const MAX_INT_BYTES = 1024;
/** The deepest nesting a recursive walk (hashing a dict key, for one) accepts. */
export const MAX_DEPTH = 200;

/** A Python tuple. */
export class PyTuple {
  constructor(readonly items: readonly PickleValue[]) {}
  /** Memoised hash key (tuples are immutable), see {@link hashKey}. */
  hashKey?: string;
}

/** A Python list. */
export class PyList {
  constructor(readonly items: PickleValue[] = []) {}
}

/** A Python dict (or OrderedDict): insertion-ordered, keyed by {@link hashKey} of the Python key. */
export class PyDict {
  readonly entries = new Map<string, { key: PickleValue; value: PickleValue }>();
  /** The instance attributes a BUILD gave it (an OrderedDict state_dict carries `_metadata`). */
  attributes?: PickleValue;
  set(key: PickleValue, value: PickleValue, depth = 0): void {
    this.entries.set(hashKey(key, depth), { key, value });
  }
  get(key: PickleValue): PickleValue | undefined {
    return this.entries.get(hashKey(key))?.value;
  }
  get size(): number {
    return this.entries.size;
  }
}

/** A Python set or frozenset. */
export class PySet {
  readonly entries = new Map<string, PickleValue>();
  constructor(readonly frozen = false) {}
  add(value: PickleValue): void {
    this.entries.set(hashKey(value), value);
  }
}

/** An instance of an allowed plain-data class (argparse.Namespace): its class and its BUILD state. */
export class PyObject {
  state: PickleValue = null;
  constructor(readonly className: string) {}
}

/**
 * The stand-in for an allowed global. `call`, when present, is what REDUCE/NEWOBJ with it
 * does: TypeScript that builds a value from the arguments (it must validate them).
 */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly call?: (args: readonly PickleValue[], kwargs: PyDict | null) => PickleValue,
  ) {}
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/**
 * Values a caller's hooks create (tensors, storages): opaque to the parser. BUILD on one
 * is ignored (Python attributes of a tensor); as a dict key it hashes by identity.
 */
export abstract class HostValue {
  abstract describe(): string;
}

/** What a pickle decodes to. Integers are numbers when safe, else bigints; `bytes` are Uint8Arrays. */
export type PickleValue =
  | null | boolean | number | bigint | string | Uint8Array
  | PyTuple | PyList | PyDict | PySet | PyObject | PyGlobal | HostValue;

/** The caller's side of unpickling. */
export interface PickleHooks {
  /**
   * The value for global `module.name` (GLOBAL, STACK_GLOBAL), or a thrown error refusing it.
   * Python 2 module names (`__builtin__`, `copy_reg`) arrive mapped to Python 3's, as
   * Python's own unpickler maps them; `written` is `module.name` as the pickle spells it,
   * for messages.
   */
  resolveGlobal(module: string, name: string, written: string): PickleValue;
  /** The object for a persistent id (BINPERSID). Without this hook persistent ids are refused. */
  persistentLoad?(pid: PickleValue): PickleValue;
}

/** Describes a value's Python type, for error messages. */
export function typeName(v: PickleValue): string {
  if (v === null) return 'None';
  switch (typeof v) {
    case 'boolean': return 'bool';
    case 'number': return Number.isInteger(v) ? 'int' : 'float';
    case 'bigint': return 'int';
    case 'string': return 'str';
  }
  if (v instanceof Uint8Array) return 'bytes';
  if (v instanceof PyTuple) return 'tuple';
  if (v instanceof PyList) return 'list';
  if (v instanceof PyDict) return 'dict';
  if (v instanceof PySet) return v.frozen ? 'frozenset' : 'set';
  if (v instanceof PyObject) return v.className;
  if (v instanceof PyGlobal) return v.qualifiedName;
  return v.describe();
}

const identities = new WeakMap<object, number>();
let nextIdentity = 0;

/**
 * A string that is equal for Python values that are equal as dict keys (1, 1.0 and True
 * collide, as in Python). Unhashable values (list, dict, set) throw a {@link PickleError}.
 */
export function hashKey(v: PickleValue, depth = 0): string {
  if (depth > MAX_DEPTH) throw new PickleError(`a dict key is nested more than ${MAX_DEPTH} levels deep`);
  if (v === null) return 'N';
  switch (typeof v) {
    case 'boolean': return v ? 'n1' : 'n0';
    case 'number': return Object.is(v, -0) ? 'n0' : `n${v}`;
    case 'bigint': return `n${v}`;
    case 'string': return `s${v}`;
  }
  if (v instanceof Uint8Array) return `b${Array.from(v, (x) => x.toString(16).padStart(2, '0')).join('')}`;
  if (v instanceof PyTuple) {
    if (v.hashKey === undefined) v.hashKey = `(${v.items.map((x) => hashKey(x, depth + 1)).join(',')})`;
    return v.hashKey;
  }
  if (v instanceof PySet && v.frozen) return `f{${[...v.entries.keys()].sort().join(',')}}`;
  if (v instanceof PyGlobal) return `g${v.qualifiedName}`;
  if (v instanceof PyObject || v instanceof HostValue) {
    let id = identities.get(v);
    if (id === undefined) identities.set(v, (id = nextIdentity++));
    return `@${id}`;
  }
  throw new PickleError(`unhashable ${typeName(v)} used as a dict key or set item`);
}

const PY2_MODULES: Record<string, string> = { __builtin__: 'builtins', copy_reg: 'copyreg' };

// Opcode names, for error messages about the ones refused.
const REFUSED: Record<number, string> = {
  0x53: 'STRING (protocol 0)', 0x56: 'UNICODE (protocol 0)', 0x50: 'PERSID (protocol 0)',
  0x69: 'INST (protocol 0)', 0x6f: 'OBJ (protocol 1)', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4',
  0x97: 'NEXT_BUFFER (out-of-band data)',
};

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The value of one pickle and the offset just past its STOP opcode. */
export interface PickleResult {
  value: PickleValue;
  end: number;
}

/**
 * Decodes one pickle starting at `offset` in `bytes` (a file may hold several in a row, as
 * torch's legacy format does). Trailing bytes after STOP are left to the caller.
 */
export function readPickle(bytes: Uint8Array, hooks: PickleHooks, offset = 0): PickleResult {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const len = bytes.byteLength;
  let pos = offset;
  let opPos = offset;
  const stack: PickleValue[] = [];  // MARK is not on it: `marks` holds the stack heights it marked
  const marks: number[] = [];
  const memo = new Map<number, PickleValue>();

  const fail = (msg: string): never => {
    throw new PickleError(`pickle byte ${opPos}: ${msg}`);
  };
  const need = (n: number | bigint, what: string): number => {
    if (n > len - pos) fail(`${what} needs ${n} bytes but ${len - pos} are left (truncated file?)`);
    return Number(n);
  };
  const take = (n: number | bigint, what: string): Uint8Array => {
    const k = need(n, what);
    const out = bytes.subarray(pos, pos + k);
    pos += k;
    return out;
  };
  const u8 = (): number => (need(1, 'an argument'), bytes[pos++]!);
  const u16 = (): number => (need(2, 'an argument'), (pos += 2), view.getUint16(pos - 2, true));
  const u32 = (): number => (need(4, 'an argument'), (pos += 4), view.getUint32(pos - 4, true));
  const i32 = (): number => (need(4, 'an argument'), (pos += 4), view.getInt32(pos - 4, true));
  const u64 = (): bigint => (need(8, 'an argument'), (pos += 8), view.getBigUint64(pos - 8, true));
  const line = (): string => {
    const nl = bytes.indexOf(0x0a, pos);
    if (nl < 0) fail('a text argument has no end of line (truncated file?)');
    const text = latin1(bytes.subarray(pos, nl));
    pos = nl + 1;
    return text;
  };
  const text = (raw: Uint8Array): string => {
    try {
      return utf8.decode(raw);
    } catch {
      return fail('a string is not valid UTF-8');
    }
  };

  const push = (v: PickleValue): void => {
    stack.push(v);
  };
  const pop = (): PickleValue => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1]!)) fail('stack underflow');
    return stack.pop()!;
  };
  const top = (): PickleValue => {
    const v = pop();
    stack.push(v);
    return v;
  };
  const popMark = (): PickleValue[] => {
    const m = marks.pop();
    if (m === undefined) fail('no MARK on the stack');
    return stack.splice(m!);
  };
  const memoGet = (i: number): void => {
    const v = memo.get(i);
    if (v === undefined) fail(`memo entry ${i} is not set`);
    push(v!);
  };
  const memoPut = (i: number): void => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1]!)) fail('PUT with an empty stack');
    memo.set(i, stack[stack.length - 1]!);
  };
  const int = (raw: Uint8Array): number | bigint => {
    if (raw.length > MAX_INT_BYTES) fail(`an integer of ${raw.length} bytes is not checkpoint data`);
    if (raw.length === 0) return 0;
    let v = 0n;
    for (let i = raw.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(raw[i]!);
    if (raw[raw.length - 1]! & 0x80) v -= 1n << BigInt(8 * raw.length);
    return small(v);
  };
  const decimal = (s: string): number | bigint => {
    if (!/^[+-]?\d+$/.test(s) || s.length > MAX_INT_BYTES * 3) fail(`bad integer literal ${JSON.stringify(s.slice(0, 40))}`);
    return small(BigInt(s));
  };
  const callable = (f: PickleValue, what: string): NonNullable<PyGlobal['call']> => {
    if (!(f instanceof PyGlobal) || !f.call) return fail(`${what} of ${typeName(f)}, which is not an allowed callable`);
    return f.call;
  };
  const argsOf = (v: PickleValue, what: string): readonly PickleValue[] => {
    if (!(v instanceof PyTuple)) return fail(`${what} arguments are a ${typeName(v)}, not a tuple`);
    return v.items;
  };
  const resolve = (module: string, name: string): PickleValue => hooks.resolveGlobal(PY2_MODULES[module] ?? module, name, `${module}.${name}`);

  for (;;) {
    opPos = pos;
    if (pos >= len) fail('the pickle ends without a STOP opcode (truncated file?)');
    const op = bytes[pos++]!;
    switch (op) {
      case 0x80: { // PROTO
        const p = u8();
        if (p > 5) fail(`pickle protocol ${p} is newer than 5`);
        break;
      }
      case 0x95: // FRAME: a length hint only
        need(u64(), 'FRAME');
        break;
      case 0x2e: { // STOP
        if (stack.length !== 1 || marks.length !== 0) fail(`STOP with ${stack.length} items and ${marks.length} marks on the stack`);
        return { value: stack[0]!, end: pos };
      }
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: push(top()); break; // DUP

      case 0x4e: push(null); break; // NONE
      case 0x88: push(true); break; // NEWTRUE
      case 0x89: push(false); break; // NEWFALSE
      case 0x4b: push(u8()); break; // BININT1
      case 0x4d: push(u16()); break; // BININT2
      case 0x4a: push(i32()); break; // BININT
      case 0x8a: push(int(take(u8(), 'LONG1'))); break; // LONG1
      case 0x8b: { // LONG4
        const n = i32();
        if (n < 0) fail('LONG4 with a negative length');
        push(int(take(n, 'LONG4')));
        break;
      }
      case 0x49: { // INT (text; protocol 1 writes booleans this way)
        const s = line();
        push(s === '01' ? true : s === '00' ? false : decimal(s));
        break;
      }
      case 0x4c: push(decimal(line().replace(/L$/, ''))); break; // LONG (text)
      case 0x47: need(8, 'BINFLOAT'); push(view.getFloat64(pos, false)); pos += 8; break; // BINFLOAT (big-endian)
      case 0x46: { // FLOAT (text)
        const s = line();
        const v = Number(s);
        if (s.trim() === '' || (Number.isNaN(v) && !/^[+-]?nan$/i.test(s))) fail(`bad float literal ${JSON.stringify(s.slice(0, 40))}`);
        push(/^[+-]?nan$/i.test(s) ? NaN : /^[+-]?inf$/i.test(s) ? (s.startsWith('-') ? -Infinity : Infinity) : v);
        break;
      }

      case 0x58: push(text(take(u32(), 'BINUNICODE'))); break; // BINUNICODE
      case 0x8c: push(text(take(u8(), 'SHORT_BINUNICODE'))); break; // SHORT_BINUNICODE
      case 0x8d: push(text(take(u64(), 'BINUNICODE8'))); break; // BINUNICODE8
      // Python 2 str: torch.load decodes them as UTF-8 (its default encoding).
      case 0x55: push(text(take(u8(), 'SHORT_BINSTRING'))); break; // SHORT_BINSTRING
      case 0x54: { // BINSTRING
        const n = i32();
        if (n < 0) fail('BINSTRING with a negative length');
        push(text(take(n, 'BINSTRING')));
        break;
      }
      case 0x43: push(take(u8(), 'SHORT_BINBYTES').slice()); break; // SHORT_BINBYTES
      case 0x42: push(take(u32(), 'BINBYTES').slice()); break; // BINBYTES
      case 0x8e: push(take(u64(), 'BINBYTES8').slice()); break; // BINBYTES8
      case 0x96: push(take(u64(), 'BYTEARRAY8').slice()); break; // BYTEARRAY8
      case 0x98: top(); break; // READONLY_BUFFER: a no-op on in-band data

      case 0x29: push(new PyTuple([])); break; // EMPTY_TUPLE
      case 0x85: push(new PyTuple([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); push(new PyTuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); push(new PyTuple([a, b, c])); break; } // TUPLE3
      case 0x74: push(new PyTuple(popMark())); break; // TUPLE
      case 0x5d: push(new PyList()); break; // EMPTY_LIST
      case 0x6c: push(new PyList(popMark())); break; // LIST
      case 0x61: { // APPEND
        const v = pop();
        const list = top();
        if (!(list instanceof PyList)) fail(`APPEND to a ${typeName(list)}`);
        (list as PyList).items.push(v);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        const list = top();
        if (!(list instanceof PyList)) fail(`APPENDS to a ${typeName(list)}`);
        for (const v of items) (list as PyList).items.push(v);
        break;
      }
      case 0x7d: push(new PyDict()); break; // EMPTY_DICT
      case 0x64: { // DICT
        const items = popMark();
        if (items.length % 2) fail('DICT with an odd number of items');
        const d = new PyDict();
        for (let i = 0; i < items.length; i += 2) d.set(items[i]!, items[i + 1]!);
        push(d);
        break;
      }
      case 0x73: { // SETITEM
        const v = pop();
        const k = pop();
        const d = top();
        if (!(d instanceof PyDict)) fail(`SETITEM on a ${typeName(d)}`);
        (d as PyDict).set(k, v);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        const d = top();
        if (!(d instanceof PyDict)) fail(`SETITEMS on a ${typeName(d)}`);
        if (items.length % 2) fail('SETITEMS with an odd number of items');
        for (let i = 0; i < items.length; i += 2) (d as PyDict).set(items[i]!, items[i + 1]!);
        break;
      }
      case 0x8f: push(new PySet()); break; // EMPTY_SET
      case 0x90: { // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof PySet) || s.frozen) fail(`ADDITEMS to a ${typeName(s)}`);
        for (const v of items) (s as PySet).add(v);
        break;
      }
      case 0x91: { // FROZENSET
        const s = new PySet(true);
        for (const v of popMark()) s.add(v);
        push(s);
        break;
      }

      case 0x71: memoPut(u8()); break; // BINPUT
      case 0x72: memoPut(u32()); break; // LONG_BINPUT
      case 0x94: memoPut(memo.size); break; // MEMOIZE
      case 0x70: memoPut(Number(decimal(line()))); break; // PUT (text)
      case 0x68: memoGet(u8()); break; // BINGET
      case 0x6a: memoGet(u32()); break; // LONG_BINGET
      case 0x67: memoGet(Number(decimal(line()))); break; // GET (text)

      case 0x63: { // GLOBAL: "module\nname\n"
        const module = line();
        const name = line();
        push(resolve(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        push(resolve(module as string, name as string));
        break;
      }
      case 0x52: { // REDUCE: callable(*args)
        const args = pop();
        const f = pop();
        push(callable(f, 'REDUCE')(argsOf(args, 'REDUCE'), null));
        break;
      }
      case 0x81: { // NEWOBJ: cls.__new__(cls, *args)
        const args = pop();
        const cls = pop();
        push(callable(cls, 'NEWOBJ')(argsOf(args, 'NEWOBJ'), null));
        break;
      }
      case 0x92: { // NEWOBJ_EX: cls.__new__(cls, *args, **kwargs)
        const kwargs = pop();
        const args = pop();
        const cls = pop();
        if (!(kwargs instanceof PyDict)) fail('NEWOBJ_EX keyword arguments are not a dict');
        push(callable(cls, 'NEWOBJ_EX')(argsOf(args, 'NEWOBJ_EX'), kwargs as PyDict));
        break;
      }
      case 0x62: { // BUILD: obj.__setstate__(state), done here for plain data only
        const state = pop();
        const obj = top();
        if (obj instanceof PyObject) obj.state = state;
        else if (obj instanceof PyDict) obj.attributes = state;
        else if (!(obj instanceof HostValue)) fail(`BUILD on a ${typeName(obj)}`);
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!hooks.persistentLoad) fail('a persistent id (BINPERSID) where none is expected');
        push(hooks.persistentLoad!(pid));
        break;
      }
      default:
        fail(REFUSED[op] ? `opcode ${REFUSED[op]} is not used by torch.save and is refused` : `unknown opcode 0x${op.toString(16).padStart(2, '0')}`);
    }
  }
}

function small(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function latin1(raw: Uint8Array): string {
  let s = '';
  for (let i = 0; i < raw.length; i += 4096) s += String.fromCharCode(...raw.subarray(i, i + 4096));
  return s;
}
