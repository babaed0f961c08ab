/**
 * Mutations of real files for the parser fuzzing (see docs/reliability.md, "Fuzzing"). A case is
 * a seed file plus a short list of mutations; the list is a fast-check value, so a failing case
 * shrinks to the fewest, smallest mutations that still break the contract, and a (seed, index)
 * pair replays it exactly. The same operations drive the coverage-guided long run, drawn from a
 * seeded generator instead.
 */
import fc from 'fast-check';

/** Inputs never grow past this (the duplicating and nesting mutations stop there). */
export const MAX_INPUT_BYTES = 256 * 1024;

/** One mutation. Positions and indices are taken modulo what the input has. */
export type Mutation =
  | { op: 'set'; at: number; value: number }
  | { op: 'bit'; at: number; bit: number }
  | { op: 'truncate'; at: number }
  | { op: 'delete'; at: number; len: number }
  | { op: 'insert'; at: number; token: number }
  | { op: 'splice'; from: number; len: number; at: number }
  | { op: 'repeat'; at: number; len: number; times: number }
  | { op: 'number'; which: number; value: number }
  | { op: 'binary'; at: number; width: 1 | 2 | 4 | 8; value: number; bigEndian: boolean }
  | { op: 'nest'; at: number; depth: number; kind: number }
  | { op: 'run'; at: number; len: number; char: number }
  | { op: 'json'; which: number; value: number };

/** Numbers written over numbers found in text: huge, negative, not-a-number, past 2^32/2^53... */
export const INTERESTING_NUMBERS: readonly string[] = [
  '0', '-0', '-1', '1', '2', '1.5', '-2.5', '1e308', '-1e308', '1e400', '-1e400', '1e-400', 'NaN', 'nan', 'Infinity', '-Infinity',
  '255', '256', '65535', '65536', '2147483647', '2147483648', '-2147483649', '4294967294', '4294967295', '4294967296',
  '9007199254740991', '9007199254740993', '18446744073709551615', '18446744073709551616', '99999999999999999999',
  '0x10', '1_000', '', ' ', '1e9', '1e12', '123456789012', '0.000001',
];

/** Integers written over bytes of binary files (lengths, counts, offsets, opcode arguments). */
const INTERESTING_BINARY: readonly bigint[] = [
  0n, 1n, 2n, 7n, 8n, 0x7fn, 0x80n, 0xffn, 0x100n, 0x7fffn, 0x8000n, 0xffffn, 0x10000n, 0x7fffffffn, 0x80000000n,
  0xffffffffn, 0x100000000n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n,
];

/** Values put in place of a JSON value somewhere in a JSON input. */
export const JSON_REPLACEMENTS: readonly (() => unknown)[] = [
  () => null, () => true, () => 0, () => -1, () => 1.5, () => 1e308, () => -1e308, () => 4294967295, () => 2 ** 53 + 2,
  () => '', () => 'x', () => '..', () => '../../etc/passwd', () => '\u0000', () => 'a'.repeat(10_000),
  () => [], () => [null], () => [1, 2, 3, 4], () => [[]], () => ['a'], () => [1e308, -1e308, 0, 0],
  () => ({}), () => ({ toString: 1 }), () => ({ valueOf: 'x', toString: [] }), () => JSON.parse('{"__proto__": {"x": 1}}'),
  () => ({ constructor: 1 }), () => ({ length: 4294967295 }), () => ({ length: -1 }), () => 'toString', () => '__proto__',
  () => 'constructor', () => 'hasOwnProperty', () => deepArray(5000), () => deepObject(5000),
  () => Array.from({ length: 2000 }, (_, i) => i), () => Array.from({ length: 500 }, () => ({})),
];

function deepArray(d: number): unknown {
  let v: unknown = [];
  for (let i = 0; i < d; i++) v = [v];
  return v;
}
function deepObject(d: number): unknown {
  let v: unknown = {};
  for (let i = 0; i < d; i++) v = { a: v };
  return v;
}

/** Openers (and closers) for deep nesting: JSON arrays and objects, XML elements, pickle-ish bytes. */
const NESTINGS: readonly [string, string][] = [
  ['[', ']'], ['{"a":', '}'], ['<a>', '</a>'], ['<object>', '</object>'], ['(', ')'], ['[', ''], ['<a>', ''], ['{"a":[', ']}'],
];

/** Characters of long runs: whitespace, separators, quotes, markup. */
const RUN_CHARS: readonly string[] = [' ', '\n', ',', '"', "'", 'a', '0', '<', '>', '&', '\t', '\r', '[', ']', '#', '-', ':', '=', '\u00e9', '\ufeff', '\u0000'];

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8');

function clampGrow(out: Uint8Array): Uint8Array {
  return out.length > MAX_INPUT_BYTES ? out.subarray(0, MAX_INPUT_BYTES) : out;
}

function insertAt(b: Uint8Array, at: number, piece: Uint8Array): Uint8Array {
  const out = new Uint8Array(b.length + piece.length);
  out.set(b.subarray(0, at), 0);
  out.set(piece, at);
  out.set(b.subarray(at), at + piece.length);
  return clampGrow(out);
}

const NUMBER_RE = /[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?/g;

/** The JSON embedded in a binary input (a safetensors header), and how to put an edited one back. */
export type JsonPart = (b: Uint8Array) => { json: Uint8Array; wrap(json: Uint8Array): Uint8Array } | undefined;

/**
 * Applies one mutation; `tokens` is the target's dictionary (its format's keywords and hostile
 * strings); `jsonPart` locates the JSON the `json` mutation edits (default: the whole input).
 */
export function applyMutation(b: Uint8Array, m: Mutation, tokens: readonly string[], jsonPart?: JsonPart): Uint8Array {
  const n = b.length;
  const pos = (x: number, len = n) => (len === 0 ? 0 : x % (len + 1));
  switch (m.op) {
    case 'set':
    case 'bit': {
      if (n === 0) return b;
      const out = b.slice();
      const i = m.at % n;
      out[i] = m.op === 'set' ? m.value : out[i]! ^ (1 << m.bit);
      return out;
    }
    case 'truncate':
      return b.subarray(0, pos(m.at));
    case 'delete': {
      const at = pos(m.at);
      const out = new Uint8Array(n - Math.min(m.len, n - at));
      out.set(b.subarray(0, at), 0);
      out.set(b.subarray(at + m.len), at);
      return out;
    }
    case 'insert':
      return tokens.length === 0 ? b : insertAt(b, pos(m.at), enc.encode(tokens[m.token % tokens.length]!));
    case 'splice': {
      const from = pos(m.from);
      return insertAt(b, pos(m.at), b.slice(from, from + m.len));
    }
    case 'repeat': {
      const at = pos(m.at);
      const chunk = b.subarray(at, at + m.len);
      if (chunk.length === 0) return b;
      const times = Math.min(m.times, Math.floor(MAX_INPUT_BYTES / chunk.length));
      const piece = new Uint8Array(chunk.length * times);
      for (let k = 0; k < times; k++) piece.set(chunk, k * chunk.length);
      return insertAt(b, at, piece);
    }
    case 'number': {
      const text = dec.decode(b);
      const found = [...text.matchAll(NUMBER_RE)].slice(0, 4096);
      if (found.length === 0) return b;
      const hit = found[m.which % found.length]!;
      const value = INTERESTING_NUMBERS[m.value % INTERESTING_NUMBERS.length]!;
      return enc.encode(text.slice(0, hit.index) + value + text.slice(hit.index! + hit[0].length));
    }
    case 'binary': {
      if (n < m.width) return b;
      const out = b.slice();
      const at = m.at % (n - m.width + 1);
      let v = INTERESTING_BINARY[m.value % INTERESTING_BINARY.length]!;
      for (let k = 0; k < m.width; k++) {
        out[m.bigEndian ? at + m.width - 1 - k : at + k] = Number(v & 0xffn);
        v >>= 8n;
      }
      return out;
    }
    case 'nest': {
      const [open, close] = NESTINGS[m.kind % NESTINGS.length]!;
      const depth = Math.min(m.depth, Math.floor(MAX_INPUT_BYTES / (open.length + close.length)));
      return insertAt(b, pos(m.at), enc.encode(open.repeat(depth) + close.repeat(depth)));
    }
    case 'run':
      return insertAt(b, pos(m.at), enc.encode(RUN_CHARS[m.char % RUN_CHARS.length]!.repeat(m.len)));
    case 'json': {
      if (!jsonPart) return mutateJson(b, m.which, m.value) ?? b;
      const part = jsonPart(b);
      const json = part && mutateJson(part.json, m.which, m.value);
      return json ? clampGrow(part.wrap(json)) : b;
    }
  }
}

/** Replaces one value of a JSON document (chosen by `which` in depth-first order) with a hostile one. */
function mutateJson(b: Uint8Array, which: number, value: number): Uint8Array | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(dec.decode(b));
  } catch {
    return undefined;
  }
  const slots: { parent: Record<string, unknown> | unknown[]; key: string | number }[] = [];
  const stack: unknown[] = [doc];
  while (stack.length > 0 && slots.length < 4096) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object') continue;
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) {
        slots.push({ parent: v, key: i });
        stack.push(v[i]);
      }
    } else {
      for (const k of Object.keys(v).reverse()) {
        slots.push({ parent: v as Record<string, unknown>, key: k });
        stack.push((v as Record<string, unknown>)[k]);
      }
    }
  }
  const replacement = JSON_REPLACEMENTS[value % JSON_REPLACEMENTS.length]!();
  if (slots.length === 0) doc = replacement;
  else {
    const { parent, key } = slots[which % slots.length]!;
    if (Array.isArray(parent)) parent[key as number] = replacement;
    else Object.defineProperty(parent, key, { value: replacement, enumerable: true, writable: true, configurable: true });
  }
  try {
    return clampGrow(enc.encode(JSON.stringify(doc)));
  } catch {
    return undefined; // too deep to write back
  }
}

/** Applies mutations in order. */
export function applyMutations(seed: Uint8Array, ms: readonly Mutation[], tokens: readonly string[], jsonPart?: JsonPart): Uint8Array {
  let b = seed;
  for (const m of ms) b = applyMutation(b, m, tokens, jsonPart);
  return b;
}

const big = fc.nat({ max: 1 << 30 });

/** The fast-check arbitrary of one mutation. */
export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('set' as const), at: big, value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('bit' as const), at: big, bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: big }),
  fc.record({ op: fc.constant('delete' as const), at: big, len: fc.integer({ min: 1, max: 64 }) }),
  { arbitrary: fc.record({ op: fc.constant('insert' as const), at: big, token: fc.nat() }), weight: 3 },
  fc.record({ op: fc.constant('splice' as const), from: big, len: fc.integer({ min: 1, max: 512 }), at: big }),
  fc.record({ op: fc.constant('repeat' as const), at: big, len: fc.integer({ min: 1, max: 256 }), times: fc.integer({ min: 2, max: 20_000 }) }),
  { arbitrary: fc.record({ op: fc.constant('number' as const), which: fc.nat(), value: fc.nat() }), weight: 3 },
  fc.record({ op: fc.constant('binary' as const), at: big, width: fc.constantFrom(1 as const, 2 as const, 4 as const, 8 as const), value: fc.nat(), bigEndian: fc.boolean() }),
  fc.record({ op: fc.constant('nest' as const), at: big, depth: fc.integer({ min: 1, max: 50_000 }), kind: fc.nat() }),
  fc.record({ op: fc.constant('run' as const), at: big, len: fc.integer({ min: 1, max: 200_000 }), char: fc.nat() }),
  { arbitrary: fc.record({ op: fc.constant('json' as const), which: fc.nat(), value: fc.nat() }), weight: 4 },
);

/** A case: which seed file, and the mutations applied to it. */
export interface FuzzCase {
  seed: number;
  mutations: Mutation[];
}

export const caseArb: fc.Arbitrary<FuzzCase> = fc.record({
  seed: fc.nat(),
  mutations: fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
});

/** Dictionary entries shared by the text formats. */
export const COMMON_TOKENS: readonly string[] = ['\n', '\r\n', '\u0000', '\ufeff', '\ud800', '\u{1f600}', '"', "'", '\\', '%s', 'NaN', '-1', '1e999', '__proto__', 'toString', 'constructor'];
