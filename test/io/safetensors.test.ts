import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  decodeSafetensors,
  encodeSafetensors,
  readSafetensors,
  SafetensorsError,
  toFloat32,
  writeSafetensors,
  type TensorInput,
} from '../../src/io/safetensors.js';

const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/io');

function sample(): Map<string, TensorInput> {
  return new Map<string, TensorInput>([
    ['w', { dtype: 'F32', shape: [2, 3], data: new Float32Array([1, -2, 3.5, 0, 1e-8, 7]) }],
    ['n', { dtype: 'I64', shape: [], data: new BigInt64Array([123456789012n]) }],
    ['b', { dtype: 'U8', shape: [3], data: Buffer.from([1, 2, 255]) }],
    ['h', { dtype: 'F16', shape: [4], data: new Float32Array([1, -0.5, 65504, 1e-7]) }],
    ['bf', { dtype: 'BF16', shape: [2], data: new Float32Array([1.5, -3]) }],
  ]);
}

test('safetensors round trip keeps names, order, shapes, values and metadata', () => {
  const bytes = encodeSafetensors(sample(), { format: 'pt' });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(n % 8, 0, 'header padded to 8 bytes');
  const { tensors, metadata } = decodeSafetensors(bytes);
  assert.deepEqual(metadata, { format: 'pt' });
  assert.deepEqual([...tensors.keys()], ['w', 'n', 'b', 'h', 'bf']);
  assert.deepEqual(tensors.get('w')!.data, new Float32Array([1, -2, 3.5, 0, 1e-8, 7]));
  assert.deepEqual(tensors.get('w')!.shape, [2, 3]);
  assert.deepEqual(tensors.get('n')!.data, new BigInt64Array([123456789012n]));
  assert.deepEqual(tensors.get('n')!.shape, []);
  assert.deepEqual(tensors.get('b')!.data, new Uint8Array([1, 2, 255]));
  const h = tensors.get('h')!;
  assert.equal(h.dtype, 'F16');
  assert.deepEqual([...h.data].slice(0, 3), [1, -0.5, 65504]);
  assert.ok(Math.abs(Number(h.data[3]) - 1e-7) < 6e-8, 'subnormal half');
  assert.deepEqual([...tensors.get('bf')!.data], [1.5, -3]);
});

test('safetensors file written by python/torch decodes to the expected values', async () => {
  const expected = JSON.parse(readFileSync(path.join(fixtures, 'torch_tiny.expected.json'), 'utf8')) as Record<
    string,
    { shape: number[]; values: (number | string)[] }
  >;
  const file = await readSafetensors(path.join(fixtures, 'torch_tiny.safetensors'));
  assert.deepEqual(file.metadata, { format: 'pt', source: 'torch 1.13' });
  assert.deepEqual([...file.tensors.keys()].sort(), Object.keys(expected).sort());
  for (const [name, exp] of Object.entries(expected)) {
    const t = file.tensors.get(name)!;
    assert.deepEqual(t.shape, exp.shape, name);
    if (t.dtype === 'I64') {
      assert.deepEqual([...t.data].map(String), exp.values, name);
    } else {
      assert.deepEqual([...toFloat32(t)], exp.values.map((v) => Math.fround(Number(v))), name);
    }
  }
  assert.ok(file.tensors.get('head.scale_f64')!.data instanceof Float32Array, 'F64 converts to Float32 by default');
  const keep = await readSafetensors(path.join(fixtures, 'torch_tiny.safetensors'), { keepF64: true });
  assert.ok(keep.tensors.get('head.scale_f64')!.data instanceof Float64Array);
});

test('safetensors re-encoding a torch file reproduces the same bytes for F32', async () => {
  const bytes = readFileSync(path.join(fixtures, 'torch_tiny.safetensors'));
  const file = decodeSafetensors(bytes, { keepF64: true });
  const again = decodeSafetensors(encodeSafetensors(file.tensors, file.metadata), { keepF64: true });
  for (const [name, t] of file.tensors) assert.deepEqual(again.tensors.get(name)!.data, t.data, name);
});

test('safetensors writes and reads a file on disk', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'st-'));
  try {
    const p = path.join(dir, 'm.safetensors');
    await writeSafetensors(p, sample());
    const { tensors, metadata } = await readSafetensors(p);
    assert.equal(tensors.size, 5);
    assert.deepEqual(metadata, {});
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('safetensors: truncated or corrupt files give clear errors', async () => {
  const good = encodeSafetensors(sample());
  const cases: [Uint8Array, RegExp][] = [
    [good.subarray(0, 5), /8-byte header length is missing/],
    [good.subarray(0, 40), /header length \d+ exceeds/],
    [good.subarray(0, good.length - 3), /truncated file\?|cover/],
    [(() => { const b = good.slice(); b[10] = 0xff; return b; })(), /not UTF-8 JSON/],
    [(() => { const b = new Uint8Array(20); b[0] = 12; b.set(new TextEncoder().encode('[1,2,3]     '), 8); return b; })(), /not a JSON object/],
  ];
  for (const [bytes, re] of cases) {
    assert.throws(() => decodeSafetensors(bytes, { source: 'x.safetensors' }), (err: Error) => {
      assert.ok(err instanceof SafetensorsError);
      assert.match(err.message, /^x\.safetensors: /);
      assert.match(err.message, re);
      return true;
    });
  }
  const bad = (hdr: object, dataLen: number) => {
    const json = new TextEncoder().encode(JSON.stringify(hdr));
    const b = new Uint8Array(8 + json.length + dataLen);
    new DataView(b.buffer).setBigUint64(0, BigInt(json.length), true);
    b.set(json, 8);
    return b;
  };
  assert.throws(() => decodeSafetensors(bad({ a: { dtype: 'Q8', shape: [1], data_offsets: [0, 1] } }, 1)), /unsupported dtype/);
  assert.throws(() => decodeSafetensors(bad({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, 4)), /wrong length/);
  assert.throws(
    () => decodeSafetensors(bad({ a: { dtype: 'U8', shape: [2], data_offsets: [0, 2] }, b: { dtype: 'U8', shape: [2], data_offsets: [1, 3] } }, 3)),
    /overlap or hole/,
  );
  await assert.rejects(readSafetensors('/nonexistent/model.safetensors'), /cannot read \/nonexistent\/model\.safetensors: ENOENT/);
  assert.throws(() => encodeSafetensors(new Map([['x', { dtype: 'F32', shape: [3], data: new Float32Array(2) }]])), /needs 3 elements/);
  assert.throws(() => encodeSafetensors(new Map([['x', { dtype: 'I64', shape: [1], data: new Float32Array(1) }]])), /needs a BigInt64Array/);
});
