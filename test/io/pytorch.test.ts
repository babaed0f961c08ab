import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { unzipSync, zipSync, type Zippable } from 'fflate';
import { InputError } from '../../src/core/errors.js';
import { PickleError, readPickle, PyDict, PyGlobal, PyTuple, type PickleHooks } from '../../src/io/pickle.js';
import { decodeTorchCheckpoint, isTorchCheckpoint, TorchCheckpointError, type TorchReadOptions } from '../../src/io/pytorch.js';
import { readTensorFile, readTorchCheckpoint } from '../../src/io/pytorch_file.js';
import { decodeSafetensors, encodeSafetensors, type Tensor } from '../../src/io/safetensors.js';
import { readZipDirectory, ZipError } from '../../src/io/zip.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const dir = path.join(root, 'test/fixtures/io/torch');

interface ExpectedTensor { name: string; dtype: string; shape: number[]; sha256: string; values: (number | string)[] }
interface ExpectedFile {
  writer: string;
  format: 'zip' | 'legacy';
  note?: string;
  error?: string;
  key?: string | null;
  skipped?: string[];
  tensors?: ExpectedTensor[];
}
const expected = JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8')) as Record<string, ExpectedFile>;
// A plain Uint8Array copy: Buffer#slice would share memory, and tests mutate copies.
const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(path.join(dir, name)));
const good = Object.keys(expected).filter((f) => !expected[f]!.error);

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Each tensor's bytes as encodeSafetensors writes them, by name. */
function safetensorsBytes(tensors: Map<string, Tensor>): Map<string, Uint8Array> {
  const bytes = encodeSafetensors(tensors);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { data_offsets: [number, number] }>;
  return new Map(Object.entries(header).map(([k, v]) => [k, bytes.subarray(8 + n + v.data_offsets[0], 8 + n + v.data_offsets[1])]));
}

function expectValues(t: Tensor, exp: ExpectedTensor, where: string): void {
  const got = [...t.data];
  assert.equal(got.length, exp.values.length, where);
  exp.values.forEach((v, i) => {
    const g = got[i]!;
    if (typeof g === 'bigint') return assert.equal(String(g), v, `${where}[${i}]`);
    const want = v === 'inf' ? Infinity : v === '-inf' ? -Infinity : v === 'nan' ? NaN : v === '-0' ? -0 : Number(v);
    if (t.data instanceof Float32Array) return assert.ok(Object.is(g, Math.fround(want)), `${where}[${i}]: ${g} vs ${want}`);
    assert.ok(Object.is(g, want), `${where}[${i}]: ${g} vs ${want}`);
  });
}

test('pytorch: every fixture decodes to exactly the tensors torch saved, bit-identical through encodeSafetensors', () => {
  assert.ok(good.length >= 15, 'fixtures present');
  for (const file of good) {
    const exp = expected[file]!;
    const sd = decodeTorchCheckpoint(fixture(file), { source: file, keepF64: true }); // F64 kept, to compare bytes
    assert.equal(sd.format, exp.format, file);
    assert.equal(sd.key, exp.key, file);
    assert.deepEqual(sd.skipped, exp.skipped, file);
    assert.deepEqual([...sd.tensors.keys()], exp.tensors!.map((t) => t.name), `${file}: names in file order`);
    const raw = safetensorsBytes(sd.tensors);
    for (const e of exp.tensors!) {
      const t = sd.tensors.get(e.name)!;
      const where = `${file}: ${e.name}`;
      assert.equal(t.dtype, e.dtype, where);
      assert.deepEqual(t.shape, e.shape, where);
      assert.equal(sha256(raw.get(e.name)!), e.sha256, `${where}: bytes differ from torch's`);
      expectValues(t, e, where);
    }
    // And back: the safetensors file decodes to the same arrays.
    const again = decodeSafetensors(encodeSafetensors(sd.tensors), { keepF64: true });
    for (const [name, t] of sd.tensors) assert.deepEqual(again.tensors.get(name)!.data, t.data, `${file}: ${name} round trip`);
  }
});

test('pytorch: element types decode like safetensors (F16/BF16/F64 to Float32Array, I64/U64 to BigInt arrays; keepF64)', () => {
  for (const file of ['torch113_dtypes_zip.pt', 'torch113_dtypes_legacy.pt', 'torch2_dtypes_zip.pt']) {
    const { tensors } = decodeTorchCheckpoint(fixture(file));
    for (const n of ['f32', 'f16', 'bf16', 'f64', 'scalar', 'param']) assert.ok(tensors.get(n)!.data instanceof Float32Array, `${file} ${n}`);
    assert.ok(tensors.get('i64')!.data instanceof BigInt64Array);
    assert.ok(tensors.get('bool')!.data instanceof Uint8Array);
    assert.deepEqual(tensors.get('empty')!.shape, [0, 4]);
    assert.deepEqual(tensors.get('scalar')!.shape, []);
    const keep = decodeTorchCheckpoint(fixture(file), { keepF64: true });
    assert.ok(keep.tensors.get('f64')!.data instanceof Float64Array);
  }
  const t2 = decodeTorchCheckpoint(fixture('torch2_dtypes_zip.pt')).tensors;
  assert.deepEqual([...t2.get('u16')!.data], [0, 1, 65535]);
  assert.deepEqual([...t2.get('u64')!.data], [0n, 2n ** 64n - 1n, 5n]);
});

test('pytorch: the same state_dict reads the same from zip, legacy, protocols 1/2/4 and both torch versions', () => {
  const ref = decodeTorchCheckpoint(fixture('torch113_sd_zip.pt')).tensors;
  for (const file of ['torch113_sd_legacy.pt', 'torch113_sd_legacy_proto1.pt', 'torch113_sd_zip_proto4.pt', 'torch2_sd_zip.pt']) {
    assert.deepEqual(decodeTorchCheckpoint(fixture(file)).tensors, ref, file);
  }
  const views = decodeTorchCheckpoint(fixture('torch113_views_zip.pt')).tensors;
  for (const file of ['torch113_views_legacy.pt', 'torch2_views_zip.pt']) assert.deepEqual(decodeTorchCheckpoint(fixture(file)).tensors, views, file);
  // The views, materialised row-major: base[i] = i / 2 - 3.
  const base = (i: number): number => i / 2 - 3;
  assert.deepEqual([...views.get('slice')!.data], [5, 6, 7, 8, 9, 10].map(base));
  assert.deepEqual([...views.get('transposed')!.data].slice(0, 5), [0, 6, 12, 18, 1].map(base));
  assert.deepEqual([...views.get('strided')!.data], [6, 8, 10, 12, 14, 16, 18, 20, 22].map(base));
  assert.deepEqual([...views.get('element')!.data], [base(7)]);
  assert.deepEqual([...views.get('expanded')!.data], [1.5, -2, 1.5, -2, 1.5, -2]);
  assert.deepEqual([...views.get('half_t')!.data], [0, 3, 1, 4, 2, 5]);
});

test('pytorch: wrapped checkpoints, the key option and DataParallel prefixes', () => {
  const sd = decodeTorchCheckpoint(fixture('torch113_sd_zip.pt')).tensors;
  const wrapped = decodeTorchCheckpoint(fixture('torch113_wrapped_model.pt'));
  assert.equal(wrapped.key, 'model');
  assert.deepEqual([...wrapped.tensors.keys()], [...sd.keys()]);
  const explicit = decodeTorchCheckpoint(fixture('torch113_wrapped_model.pt'), { key: 'model' });
  assert.deepEqual(explicit.tensors, wrapped.tensors);
  assert.throws(() => decodeTorchCheckpoint(fixture('torch113_wrapped_model.pt'), { key: 'epoch', source: 'w.pth' }),
    /^TorchCheckpointError: w\.pth: entry 'epoch' is a int, not a state_dict/);
  assert.throws(() => decodeTorchCheckpoint(fixture('torch113_wrapped_model.pt'), { key: 'ema' }),
    /no entry 'ema' at the top level \(entries: 'epoch', 'optimizer', 'model', 'args',/);
  // The optimizer's own tensors (SGD momentum buffers) are parsed but not returned.
  const opt = decodeTorchCheckpoint(fixture('torch113_wrapped_model.pt'), { key: 'optimizer' });
  assert.equal(opt.tensors.size, 0);
  assert.deepEqual(opt.skipped, ['state', 'param_groups']);

  const dp = decodeTorchCheckpoint(fixture('torch113_wrapped_state_dict_dp.pt'), { stripPrefix: 'module.' });
  assert.equal(dp.key, 'state_dict');
  assert.deepEqual([...dp.tensors.keys()], [...sd.keys()]);
  assert.deepEqual(dp.tensors, sd);
  assert.deepEqual(dp.skipped, ['module.num_classes']);
  assert.equal(decodeTorchCheckpoint(fixture('torch2_wrapped_proto4.pt')).key, 'model_state_dict');
});

test('pytorch: malicious and whole-model pickles are refused, naming the global', () => {
  for (const [file, exp] of Object.entries(expected).filter(([, e]) => e.error)) {
    assert.throws(() => decodeTorchCheckpoint(fixture(file), { source: file }), (err: Error) => {
      assert.ok(err instanceof TorchCheckpointError && err instanceof InputError, `${file}: ${err.name}`);
      assert.ok(err.message.startsWith(`${file}: `), err.message);
      assert.ok(err.message.includes(exp.error!), `${file}: ${err.message}`);
      return true;
    });
  }
  assert.throws(() => decodeTorchCheckpoint(fixture('torch113_malicious_zip.pt'), { source: 'checkpoint.pth' }), {
    name: 'TorchCheckpointError',
    message: "checkpoint.pth: refusing to load global 'posix.system' (only the globals a state_dict needs are allowed)",
  });
  assert.throws(() => decodeTorchCheckpoint(fixture('torch113_whole_model.pt')), /'__main__\.TinyNet'.*save model\.state_dict\(\)/);
  // Hand-written payloads: each global is refused as the pickle spells it, protocols 0-4 alike.
  const payloads: [Uint8Array, string][] = [
    [pk(op.proto(2), op.global('builtins', 'eval'), op.str('1+1'), 0x85, 0x52, 0x2e), 'builtins.eval'],
    [pk(op.proto(4), 0x8c, 10, ...enc.encode('subprocess'), 0x8c, 5, ...enc.encode('Popen'), 0x93, 0x29, 0x52, 0x2e), 'subprocess.Popen'],
    [pk(op.global('__builtin__', 'getattr'), 0x2e), '__builtin__.getattr'],
    [pk(op.proto(2), op.global('torch', 'load'), 0x2e), 'torch.load'],
    [pk(op.proto(2), op.global('numpy.core.multiarray', 'scalar'), 0x2e), 'numpy.core.multiarray.scalar'],
  ];
  for (const [pkl, name] of payloads) {
    assert.throws(() => decodeTorchCheckpoint(zipOf(pkl), { source: 'c.pth' }), {
      name: 'TorchCheckpointError',
      message: `c.pth: refusing to load global '${name}' (only the globals a state_dict needs are allowed)`,
    });
  }
  // An allowed global that is not callable (a dtype) is not a way around the allowlist either.
  assert.throws(() => decodeTorchCheckpoint(zipOf(pk(op.proto(2), op.global('torch', 'float32'), 0x29, 0x52, 0x2e))),
    /REDUCE of torch\.float32, which is not an allowed callable/);
});

test('pytorch: isTorchCheckpoint sniffs zip, legacy and tar, not safetensors', () => {
  for (const file of Object.keys(expected)) assert.ok(isTorchCheckpoint(fixture(file)), file);
  assert.ok(!isTorchCheckpoint(readFileSync(path.join(root, 'test/fixtures/io/torch_tiny.safetensors'))));
  assert.ok(!isTorchCheckpoint(new Uint8Array(0)));
  assert.ok(!isTorchCheckpoint(pk(op.proto(2), op.int(5), 0x2e)));
  const tar = new Uint8Array(1024);
  tar.set(enc.encode('sys_info'), 0);
  tar.set(enc.encode('ustar'), 257);
  assert.ok(isTorchCheckpoint(tar));
  assert.throws(() => decodeTorchCheckpoint(tar, { source: 'old.pth' }), /^TorchCheckpointError: old\.pth: this is the tar checkpoint format of torch < 0\.4, which is not supported/);
  assert.throws(() => decodeTorchCheckpoint(enc.encode('hello world')), /not a PyTorch checkpoint: neither a torch\.save zip archive nor a legacy/);
});

test('pytorch: readTorchCheckpoint and readTensorFile read files, safetensors or torch by content', async () => {
  const file = path.join(dir, 'torch113_sd_zip.pt');
  const sd = await readTorchCheckpoint(file);
  assert.equal(sd.tensors.size, 8);
  const either = await readTensorFile(file);
  assert.equal(either.format, 'zip');
  assert.deepEqual(either.tensors, sd.tensors);
  const st = await readTensorFile(path.join(root, 'test/fixtures/io/torch_tiny.safetensors'));
  assert.equal(st.format, 'safetensors');
  assert.ok(st.tensors.has('backbone.conv1.weight'));
  await assert.rejects(readTorchCheckpoint('/nonexistent/m.pth'), /cannot read \/nonexistent\/m\.pth: ENOENT/);
  await assert.rejects(readTorchCheckpoint(path.join(dir, 'torch113_malicious_legacy.pt')), /torch113_malicious_legacy\.pt: refusing to load global 'posix\.system'/);
});

// ---- hostile and damaged files -------------------------------------------------------------

/** Decoding either succeeds or throws an InputError: never another exception, never a hang. */
function decodesOrInputError(bytes: Uint8Array, options?: TorchReadOptions): boolean {
  try {
    decodeTorchCheckpoint(bytes, options);
    return true;
  } catch (err) {
    if (err instanceof InputError) return false;
    throw err;
  }
}

test('pytorch: files cut short anywhere give an InputError', () => {
  for (const file of Object.keys(expected)) {
    const bytes = fixture(file);
    const step = Math.max(1, Math.floor(bytes.length / 150));
    for (let n = 0; n < bytes.length; n += n < 80 ? 1 : step) {
      assert.equal(decodesOrInputError(bytes.subarray(0, n)), false, `${file} cut at ${n} decoded`);
    }
  }
  assert.throws(() => decodeTorchCheckpoint(fixture('torch113_sd_zip.pt').subarray(0, 3000), { source: 'a.pth' }),
    /^TorchCheckpointError: a\.pth: not a valid PyTorch checkpoint: no end-of-central-directory record \(truncated file\?\)/);
  const legacy = fixture('torch113_sd_legacy.pt');
  assert.throws(() => decodeTorchCheckpoint(legacy.subarray(0, legacy.length - 10)), /the data of storage '\d+' is cut short \(truncated file\?\)/);
  assert.throws(() => decodeTorchCheckpoint(legacy.subarray(0, 700)), /not a valid PyTorch checkpoint: pickle byte \d+: .*truncated file\?/);
});

test('pytorch: random byte changes give an InputError or a decode (fast-check)', () => {
  const files = Object.keys(expected).map((f) => fixture(f));
  // Zip fixtures with their data.pkl changed and re-zipped, so that mutations reach the pickle parser past the CRC.
  const pickles = Object.keys(expected).filter((f) => expected[f]!.format === 'zip').map((f) => {
    const entries = unzipSync(fixture(f));
    const name = Object.keys(entries).find((n) => n.endsWith('data.pkl'))!;
    return { entries, name };
  });
  const flips = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 });
  // A hang shows as one slow case (work is linear in the input: a few ms per fixture); a
  // per-case bound, unlike a total, does not fail on a busy machine.
  let slowest = 0;
  const timed = (f: () => void): void => {
    const t = performance.now();
    f();
    slowest = Math.max(slowest, performance.now() - t);
  };
  fc.assert(
    fc.property(fc.nat(files.length - 1), flips, (i, changes) => {
      const b = files[i]!.slice();
      for (const [at, v] of changes) b[at % b.length] = v;
      timed(() => decodesOrInputError(b));
    }),
    { numRuns: 1500, seed: 42 },
  );
  fc.assert(
    fc.property(fc.nat(pickles.length - 1), flips, fc.boolean(), (i, changes, deflate) => {
      const { entries, name } = pickles[i]!;
      const pkl = entries[name]!.slice();
      for (const [at, v] of changes) pkl[at % pkl.length] = v;
      const zipped = zipSync({ ...entries, [name]: pkl }, { level: deflate ? 6 : 0 });
      timed(() => decodesOrInputError(zipped));
    }),
    { numRuns: 800, seed: 7 },
  );
  assert.ok(slowest < 2000, `one decode took ${slowest.toFixed(0)} ms`);
});

test('pytorch: a storage or tensor larger than the file is refused before any big allocation', () => {
  const before = process.memoryUsage().arrayBuffers;
  // Declared 2^40 floats, 8 bytes present.
  const huge = tensorPickle([{ name: 'w', numel: 2 ** 40, size: [2 ** 40], stride: [1] }]);
  assert.throws(() => decodeTorchCheckpoint(zipOf(huge, new Uint8Array(8)), { source: 'h.pth' }),
    /^TorchCheckpointError: h\.pth: not a valid PyTorch checkpoint: storage '0' declares 4398046511104 bytes but its entry has 8/);
  // A view reaching past its storage.
  const over = tensorPickle([{ name: 'w', numel: 2, size: [3], stride: [1] }]);
  assert.throws(() => decodeTorchCheckpoint(zipOf(over, new Uint8Array(8))), /tensor 'w': its view \(offset 0, size \[3\], stride \[1\]\) overruns its 8-byte storage '0'/);
  // An expanded (stride-0) view of 2^40 elements over 2 stored ones.
  const expand = tensorPickle([{ name: 'w', numel: 2, size: [2 ** 20, 2 ** 20], stride: [0, 0] }]);
  assert.throws(() => decodeTorchCheckpoint(zipOf(expand, new Uint8Array(8))), /tensor 'w': its size \[1048576, 1048576\] would take the decoded tensors past 4x the file size/);
  // Many views of one storage add up against the same budget.
  const many = tensorPickle(Array.from({ length: 40 }, (_, i) => ({ name: `v${i}`, numel: 2 ** 18, size: [2 ** 18], stride: [1] })));
  assert.throws(() => decodeTorchCheckpoint(zipOf(many, new Uint8Array(2 ** 20))), /tensor 'v\d+': its size \[262144\] would take the decoded tensors past/);
  // Legacy: an element count in the data section that is not the declared one.
  const legacy = fixture('torch113_sd_legacy.pt').slice();
  const keys = readLegacyLayout(legacy);
  new DataView(legacy.buffer).setBigUint64(keys.firstCountAt, 2n ** 60n, true);
  assert.throws(() => decodeTorchCheckpoint(legacy), /storage '\d+' holds 1152921504606846976 elements, not the \d+ bytes declared/);
  assert.ok(process.memoryUsage().arrayBuffers - before < 64 << 20, 'no big allocation');
  // The same expanded view, small enough, is materialised.
  const ok = tensorPickle([{ name: 'w', numel: 2, size: [3, 2], stride: [0, 1] }]);
  const t = decodeTorchCheckpoint(zipOf(ok, new Uint8Array(new Float32Array([1, 2]).buffer))).tensors.get('w')!;
  assert.deepEqual([...t.data], [1, 2, 1, 2, 1, 2]);
});

test('pytorch: zip archives: re-zipped with DEFLATE, big-endian, ZIP64 and damaged directories', () => {
  const bytes = fixture('torch2_sd_zip.pt');
  const ref = decodeTorchCheckpoint(bytes).tensors;
  const entries = unzipSync(bytes);
  assert.deepEqual(decodeTorchCheckpoint(zipSync(entries, { level: 9 })).tensors, ref, 'DEFLATE entries');

  // byteorder "big" with every storage's elements byte-swapped reads the same.
  const prefix = 'torch2_sd_zip/';
  const big: Zippable = { ...entries, [`${prefix}byteorder`]: enc.encode('big') };
  const sd = decodeTorchCheckpoint(bytes);
  const sizes = new Map([['0', 4], ['1', 4], ['2', 4], ['3', 4], ['4', 4], ['5', 8], ['6', 4], ['7', 4]]);
  for (const [k, es] of sizes) {
    const d = entries[`${prefix}data/${k}`]!.slice();
    for (let i = 0; i < d.length; i += es) d.subarray(i, i + es).reverse();
    big[`${prefix}data/${k}`] = d;
  }
  assert.deepEqual(decodeTorchCheckpoint(zipSync(big, { level: 0 })).tensors, sd.tensors, 'big-endian');

  // torch writes ZIP64 end records; a ZIP64 record claiming 2^32 entries is refused at once.
  const z = bytes.slice();
  const end64 = lastIndexOf(z, [0x50, 0x4b, 0x06, 0x06]);
  assert.ok(end64 > 0, 'torch wrote a ZIP64 end record');
  new DataView(z.buffer).setBigUint64(end64 + 32, 2n ** 32n, true);
  assert.throws(() => decodeTorchCheckpoint(z), /ZIP64 entry count 4294967296 exceeds the archive's \d+ bytes/);
  // A flipped bit in a storage fails the CRC check.
  const flipped = bytes.slice();
  const e0 = readZipDirectory(bytes).get(`${prefix}data/0`)!;
  flipped[e0.dataOffset + 1]! ^= 0x10;
  assert.throws(() => decodeTorchCheckpoint(flipped), /entry 'torch2_sd_zip\/data\/0': CRC-32 mismatch/);
  assert.throws(() => readZipDirectory(enc.encode('PK\x03\x04 nothing else here, no directory')), ZipError);
  // A zip bomb: 24 MiB of zeros deflate to 24 KiB; inflated, they would pass 4x the file + 16 MiB.
  const bomb = zipSync({ ...entries, [`${prefix}data/9`]: new Uint8Array(24 << 20) }, { level: 6 });
  assert.ok(bomb.length < 200_000);
  assert.throws(() => decodeTorchCheckpoint(bomb), /its compressed entries would inflate to \d+ bytes, more than 4x the file's \d+; refusing/);
  // Not checkpoints: no data.pkl; a TorchScript archive.
  assert.throws(() => decodeTorchCheckpoint(zipSync({ 'a/readme.txt': enc.encode('hi') })), /a zip archive without data\.pkl, not a torch\.save checkpoint \(entries: 'a\/readme\.txt'\)/);
  assert.throws(() => decodeTorchCheckpoint(zipSync({ 'm/data.pkl': pk(0x2e), 'm/constants.pkl': pk(0x2e), 'm/code/m.py': enc.encode('') })),
    /TorchScript archive/);
  assert.throws(() => decodeTorchCheckpoint(zipSync({ ...entries, [`${prefix}data/3`]: new Uint8Array(2) }, { level: 0 })),
    /storage '3' declares 16 bytes but its entry has 2/);
});

test('pytorch: ZIP64 extra fields (sizes and offsets of entries past 4 GiB) are read', () => {
  const bytes = fixture('torch2_sd_zip.pt');
  const ref = decodeTorchCheckpoint(bytes).tensors;
  const zip64 = zip64Of(unzipSync(bytes));
  const dirEntry = readZipDirectory(zip64).get('torch2_sd_zip/data/0')!;
  assert.ok(dirEntry.size > 0 && dirEntry.dataOffset > 0);
  assert.deepEqual(decodeTorchCheckpoint(zip64).tensors, ref);
});

test('pytorch: GPU checkpoints of torch < 1.12 (torch.cuda.*Storage, cuda:0) and the first _rebuild_tensor', () => {
  const entries = unzipSync(fixture('torch113_sd_zip.pt'));
  const name = 'torch113_sd_zip/data.pkl';
  const pkl = latin1(entries[name]!)
    .replaceAll('ctorch\nFloatStorage\n', 'ctorch.cuda\nFloatStorage\n')
    .replaceAll('X\x03\x00\x00\x00cpu', 'X\x06\x00\x00\x00cuda:0');
  assert.ok(pkl.includes('cuda:0') && pkl.includes('torch.cuda'));
  const gpu = zipSync({ ...entries, [name]: Uint8Array.from(pkl, (c) => c.charCodeAt(0)) }, { level: 0 });
  assert.deepEqual(decodeTorchCheckpoint(gpu).tensors, decodeTorchCheckpoint(fixture('torch113_sd_zip.pt')).tensors);
  const v1 = tensorPickle([{ name: 'w', numel: 4, size: [2, 2], stride: [1, 2] }], { v1: true });
  const t = decodeTorchCheckpoint(zipOf(v1, new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer))).tensors.get('w')!;
  assert.deepEqual([...t.data], [1, 3, 2, 4]);
});

test('pytorch: checkpoints that are not a dict of tensors say what they hold', () => {
  const tensorOnly = tensorPickle([{ name: 'w', numel: 2, size: [2], stride: [1] }], { bare: true });
  assert.throws(() => decodeTorchCheckpoint(zipOf(tensorOnly, new Uint8Array(8)), { source: 't.pt' }),
    /^TorchCheckpointError: t\.pt: the checkpoint holds a torch\.Tensor, not a state_dict \(a dict of tensors\)/);
  assert.throws(() => decodeTorchCheckpoint(zipOf(pk(op.proto(2), 0x7d, op.str('epoch'), op.int(3), 0x73, 0x2e))),
    /no state_dict found: no tensors at the top level nor under 'state_dict', 'model_state_dict', 'model', 'module' \(entries: 'epoch'\)/);
  const collide = tensorPickle([{ name: 'module.w', numel: 2, size: [2], stride: [1] }, { name: 'w', numel: 2, size: [2], stride: [1] }]);
  assert.throws(() => decodeTorchCheckpoint(zipOf(collide, new Uint8Array(8)), { stripPrefix: 'module.' }), /two tensors are named 'w' once the prefix 'module\.' is removed/);
});

test('pickle: a data parser with bounded work on hostile input', () => {
  const none: PickleHooks = { resolveGlobal: (m, n) => { throw new PickleError(`no ${m}.${n}`); } };
  const read = (...parts: (number | number[])[]) => readPickle(pk(...parts), none).value;
  assert.equal(read(op.proto(2), op.int(-5), 0x2e), -5);
  assert.equal(read(0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0x2e), -(2n ** 64n), 'LONG1, negative');
  assert.equal(read(...ascii('I01\n'), 0x2e), true);
  assert.equal(read(...ascii('L12345678901234567890L\n'), 0x2e), 12345678901234567890n);
  assert.equal(read(...ascii('F-2.5\n'), 0x2e), -2.5);
  assert.equal(read(0x47, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18, 0x2e), Math.PI, 'BINFLOAT is big-endian');
  const d = read(0x7d, 0x28, op.int(1), op.str('a'), 0x88, op.str('b'), 0x75, 0x2e) as PyDict;
  assert.equal(d.size, 1, 'True and 1 are the same key, as in Python');
  assert.equal(d.get(1), 'b');
  const memo = read(0x5d, 0x71, 0, 0x68, 0, 0x61, 0x2e);
  assert.ok(memo !== null, 'a list appended to itself through the memo');
  const tuple = read(0x28, op.int(1), op.int(2), 0x74, 0x2e) as PyTuple;
  assert.deepEqual(tuple.items, [1, 2]);

  const cases: [number[], RegExp][] = [
    [[0x2e], /STOP with 0 items/],
    [[op.int(1)].flat(), /ends without a STOP opcode \(truncated file\?\)/],
    [[0x68, 3, 0x2e], /memo entry 3 is not set/],
    [[0x30, 0x2e], /stack underflow/],
    [[0x28, 0x30, 0x2e], /stack underflow/],
    [[0x58, 0xff, 0xff, 0xff, 0x7f, 0x41], /BINUNICODE needs 2147483647 bytes but 1 are left/],
    [[0x8d, 0, 0, 0, 0, 0, 0, 0, 0x80], /BINUNICODE8 needs 9223372036854775808 bytes but 0 are left/],
    [[0x8b, 0x00, 0x00, 0x10, 0x00, ...new Array(1 << 20).fill(0), 0x2e], /an integer of 1048576 bytes is not checkpoint data/],
    [[0x7d, 0x5d, 0x4e, 0x73, 0x2e], /unhashable list used as a dict key/],
    [[0x82, 1, 0x2e], /opcode EXT1 is not used by torch\.save and is refused/],
    [[0xff], /unknown opcode 0xff/],
    [[0x80, 6, 0x2e], /pickle protocol 6 is newer than 5/],
    [[0x4e, 0x29, 0x62, 0x2e], /BUILD on a None/],
    [[0x51, 0x2e], /stack underflow/],
    [[0x4e, 0x51, 0x2e], /a persistent id \(BINPERSID\) where none is expected/],
    [[0x58, 2, 0, 0, 0, 0xc3, 0x28, 0x2e], /a string is not valid UTF-8/],
  ];
  for (const [bytes, re] of cases) {
    assert.throws(() => readPickle(pk(bytes), none), (err: Error) => {
      assert.ok(err instanceof PickleError, `${err.name}: ${err.message}`);
      assert.match(err.message, re);
      return true;
    });
  }
  // 100 000 nested tuples as a dict key: a PickleError, not a stack overflow.
  const deep = [0x7d, op.int(0), ...new Array(100_000).fill(0x85), op.int(1), 0x73, 0x2e].flat();
  assert.throws(() => readPickle(pk(deep), none), /a dict key is nested more than 200 levels deep/);
  // One tuple used as a key 100 000 times through the memo: hashed once, not 100 000 times.
  const big = [0x28, ...new Array(50_000).fill(0x4e), 0x74, 0x71, 0];
  const uses = new Array(100_000).fill([0x68, 0, 0x4e, 0x73]).flat();
  const started = Date.now();
  const value = readPickle(pk([0x7d, 0x30, ...big, 0x30, 0x7d, ...uses, 0x2e]), none).value as PyDict;
  assert.equal(value.size, 1);
  assert.ok(Date.now() - started < 2000, `${Date.now() - started} ms`);
});

// ---- helpers ---------------------------------------------------------------------------------

const enc = new TextEncoder();
const ascii = (s: string): number[] => [...enc.encode(s)];
const le32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];

/** Pickle opcodes for hand-written pickles. */
const op = {
  proto: (v: number): number[] => [0x80, v],
  global: (module: string, name: string): number[] => [0x63, ...ascii(`${module}\n${name}\n`)],
  str: (s: string): number[] => {
    const b = enc.encode(s);
    return [0x58, ...le32(b.length), ...b];
  },
  int: (v: number): number[] => {
    if (Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31) return [0x4a, ...le32(v)];
    const bytes: number[] = [];
    for (let x = BigInt(v); x !== 0n; x >>= 8n) bytes.push(Number(x & 0xffn));
    if (bytes[bytes.length - 1]! & 0x80) bytes.push(0);
    return [0x8a, bytes.length, ...bytes];
  },
};

const latin1 = (b: Uint8Array): string => Array.from(b, (c) => String.fromCharCode(c)).join('');

function pk(...parts: (number | number[])[]): Uint8Array {
  return Uint8Array.from(parts.flat());
}

interface TensorSpec { name: string; numel: number; size: number[]; stride: number[] }

/** `{name: _rebuild_tensor_v2(FloatStorage '0' of numel, 0, size, stride, False, OrderedDict())}` (or one bare tensor; or `_rebuild_tensor`). */
function tensorPickle(specs: TensorSpec[], { bare = false, v1 = false } = {}): Uint8Array {
  const tensor = (t: TensorSpec): number[] => [
    op.global('torch._utils', v1 ? '_rebuild_tensor' : '_rebuild_tensor_v2'), 0x28,
    0x28, op.str('storage'), op.global('torch', 'FloatStorage'), op.str('0'), op.str('cpu'), op.int(t.numel), 0x74, 0x51,
    op.int(0), 0x28, t.size.map(op.int), 0x74, 0x28, t.stride.map(op.int), 0x74,
    v1 ? [] : [0x89, op.global('collections', 'OrderedDict'), 0x29, 0x52], 0x74, 0x52,
  ].flat(2);
  if (bare) return pk(op.proto(2), tensor(specs[0]!), 0x2e);
  return pk(op.proto(2), 0x7d, 0x28, specs.flatMap((t) => [...op.str(t.name), ...tensor(t)]), 0x75, 0x2e);
}

/** A torch-style archive holding `pkl` as data.pkl and `storage` as data/0. */
function zipOf(pkl: Uint8Array, storage: Uint8Array = new Uint8Array(0)): Uint8Array {
  return zipSync({ 'archive/data.pkl': pkl, 'archive/data/0': storage, 'archive/version': enc.encode('3\n') }, { level: 0 });
}

/**
 * A STORED archive whose every size and offset is in a ZIP64 extra field (the 32-bit fields
 * saturated at 0xffffffff), as writers do past 4 GiB, with ZIP64 end records.
 */
function zip64Of(files: Record<string, Uint8Array>): Uint8Array {
  const out: number[] = [];
  const u16 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff];
  const u64 = (v: number): number[] => [...le32(v), ...le32(Math.floor(v / 2 ** 32))];
  const central: number[] = [];
  const crc = (d: Uint8Array): number => readZipDirectory(zipSync({ f: d }, { level: 0 })).get('f')!.crc32;
  for (const [name, data] of Object.entries(files)) {
    const n = enc.encode(name);
    const offset = out.length;
    const sum = crc(data);
    out.push(...le32(0x04034b50), ...u16(45), ...u16(0), ...u16(0), ...u16(0), ...u16(0), ...le32(sum),
      ...le32(0xffffffff), ...le32(0xffffffff), ...u16(n.length), ...u16(20), ...n, ...u16(1), ...u16(16), ...u64(data.length), ...u64(data.length), ...data);
    central.push(...le32(0x02014b50), ...u16(45), ...u16(45), ...u16(0), ...u16(0), ...u16(0), ...u16(0), ...le32(sum),
      ...le32(0xffffffff), ...le32(0xffffffff), ...u16(n.length), ...u16(28), ...u16(0), ...u16(0), ...u16(0), ...le32(0),
      ...le32(0xffffffff), ...n, ...u16(1), ...u16(24), ...u64(data.length), ...u64(data.length), ...u64(offset));
  }
  const count = Object.keys(files).length;
  const dirOffset = out.length;
  out.push(...central);
  const end64 = out.length;
  out.push(...le32(0x06064b50), ...u64(44), ...u16(45), ...u16(45), ...le32(0), ...le32(0), ...u64(count), ...u64(count),
    ...u64(central.length), ...u64(dirOffset));
  out.push(...le32(0x07064b50), ...le32(0), ...u64(end64), ...le32(1));
  out.push(...le32(0x06054b50), ...u16(0), ...u16(0), ...u16(0xffff), ...u16(0xffff), ...le32(0xffffffff), ...le32(0xffffffff), ...u16(0));
  return Uint8Array.from(out);
}

function lastIndexOf(bytes: Uint8Array, pattern: number[]): number {
  for (let i = bytes.length - pattern.length; i >= 0; i--) if (pattern.every((b, j) => bytes[i + j] === b)) return i;
  return -1;
}

/** Where the legacy data section's first element count lies: after the five pickles. */
function readLegacyLayout(bytes: Uint8Array): { firstCountAt: number } {
  // Lenient stand-ins: every global is a callable returning an empty dict.
  const anything = new PyGlobal('any', 'thing', () => new PyDict());
  const hooks: PickleHooks = { resolveGlobal: () => anything, persistentLoad: () => null };
  let at = 0;
  for (let i = 0; i < 5; i++) at = readPickle(bytes, hooks, at).end;
  return { firstCountAt: at };
}
