/**
 * Run-time dimensions in the graph builder (graph.ts, the run-time size ops of ops.ts), the
 * serializer's opset and metadata options, and the int8 helpers: graphs built at one size run
 * at others in ONNX Runtime with the right results.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, GraphError, op } from '../../src/engine/index.js';
import { readMetadata, serialize } from '../../src/engine/onnx.js';
import { OnnxSession } from '../../src/engine/runtime.js';
import { activationParams, quantizeWeights } from '../../src/engine/quantize.js';

test('dynamic-ness: inputs with named dimensions make what is computed from them dynamic; static graphs stay static', () => {
  const g = new Graph();
  const s = g.input('s', 'float32', [2, 3]);
  const x = g.input('x', 'float32', [1, 4, 8, 8], [null, null, 'h', 'w']);
  assert.equal(s.dynamic, false);
  assert.equal(op.relu(s).dynamic, false);
  assert.equal(x.dynamic, true);
  assert.deepEqual(x.dimNames, [null, null, 'h', 'w']);
  const y = op.relu(x);
  assert.equal(y.dynamic, true);
  assert.equal(op.shapeOf(y).dynamic, false, 'a shape vector has a static shape');
  assert.throws(() => op.reshape(y, [1, 4, 64]), (e: unknown) => e instanceof GraphError && /run-time dimensions.*reshapeSymbolic/.test((e as Error).message));
  assert.throws(() => op.expand(y, [2, 4, 8, 8]), /expandTo/);
  assert.deepEqual(op.reshapeSymbolic(y, [0, 0, -1]).shape, [1, 4, 64]);
  assert.throws(() => op.reshapeSymbolic(y, [-1, -1]), /at most one -1/);
});

test('a graph built at one size runs at others: reshapes, slices, Range, NonZero, TopK, Resize, Pad, GroupNorm', async () => {
  const g = new Graph();
  const image = g.input('image', 'uint8', [6, 8, 3], ['h', 'w', null]);
  const x = op.unsqueeze(op.transpose(op.cast(image, 'float32'), [2, 0, 1]), [0]); // [1, 3, h, w]
  const hw = op.slice(op.shapeOf(image), [0], [2], [0]);
  const twice = op.mul(hw, 2);
  const up = op.resizeTo(x, op.concat([op.int64s(g, [1, 3]), twice], 0), [1, 3, 12, 16], 'nearest');
  const padded = op.padTo(x, op.concat([op.int64s(g, [0, 0, 0, 0, 0, 0]), op.int64s(g, [1, 2])], 0), [1, 3, 7, 10]);
  const flat = op.flatten(op.reshapeSymbolic(x, [0, 3, -1]), 2); // [3, h*w]
  const gn = op.groupNorm(op.concat([x, x], 1), 2, null, null); // [1, 6, h, w]
  const firstCol = op.squeeze(op.slice(x, [0], [1], [3]), [3]); // [1, 3, h]
  const n = op.squeeze(op.slice(op.shapeOf(image), [1], [2], [0]), [0]);
  const idx = op.range(op.scalar(g, 0, 'int64'), n, op.scalar(g, 1, 'int64'), 8);
  const nz = op.nonZero(op.greater(op.reshapeSymbolic(x, [-1]), 200));
  const values = op.reshapeSymbolic(x, [-1]);
  const k = op.min(op.shapeOf(values), op.int64s(g, [5]));
  const top = op.topK(values, k, { maxK: 5 });
  const outs = [up, padded, flat, gn, firstCol, idx, nz, top.values];
  const bytes = serialize(g, { outputs: outs });
  const session = await OnnxSession.create(bytes, { threads: 1 });
  for (const [h, w] of [[6, 8], [3, 11]] as const) {
    const data = Uint8Array.from({ length: h * w * 3 }, (_, i) => (i * 37) % 256);
    const r = await session.run({ image: { data, dims: [h, w, 3] } });
    const got = (t: (typeof outs)[number]): { data: ArrayLike<number | bigint>; dims: readonly number[] } => r[t.name]!;
    const px = (c: number, y: number, xx: number): number => data[(y * w + xx) * 3 + c]!;
    assert.deepEqual(got(up).dims, [1, 3, 2 * h, 2 * w]);
    assert.equal(got(up).data[2 * w * 2 * h * 1 + 2 * w * 3 + 5], px(1, 1, 2));
    assert.deepEqual(got(padded).dims, [1, 3, h + 1, w + 2]);
    assert.deepEqual(got(flat).dims, [3, h * w]);
    assert.deepEqual(got(gn).dims, [1, 6, h, w]);
    const gnData = got(gn).data as Float32Array;
    const mean = gnData.subarray(0, 3 * h * w).reduce((a, b) => a + b, 0) / (3 * h * w);
    assert.ok(Math.abs(mean) < 1e-4, 'GroupNorm normalises each group at the run-time size');
    assert.deepEqual(got(firstCol).dims, [1, 3, h]);
    assert.equal(got(firstCol).data[h + 2], px(1, 2, 0));
    assert.deepEqual(Array.from(got(idx).data as BigInt64Array, Number), [...Array(w).keys()]);
    const all = Array.from({ length: 3 * h * w }, (_, i) => px(Math.floor(i / (h * w)), Math.floor((i % (h * w)) / w), i % w));
    assert.equal(got(nz).dims[1], all.filter((v) => v > 200).length);
    assert.deepEqual(Array.from(got(top.values).data as Float32Array), [...all].sort((a, b) => b - a).slice(0, 5));
  }
  await session.release();
});

test('opset 18 and later take the reductions\' axes as an input; metadata round-trips', async () => {
  const g = new Graph();
  const x = g.input('x', 'float32', [2, 3]);
  const y = op.reduceMean(x, [1]);
  const z = op.reduceMin(x, [0]);
  const feeds = { x: { data: Float32Array.of(1, 2, 3, 4, 5, 9), dims: [2, 3] } };
  for (const opset of [17, 18, 21]) {
    const bytes = serialize(g, { outputs: [y, z], opset, metadata: { a: '1', class_names: '["b"]' } });
    assert.deepEqual(readMetadata(bytes), { a: '1', class_names: '["b"]' });
    const s = await OnnxSession.create(bytes, { threads: 1 });
    const r = await s.run(feeds);
    assert.deepEqual(Array.from(r[y.name]!.data as Float32Array), [2, 6], `opset ${opset}`);
    assert.deepEqual(Array.from(r[z.name]!.data as Float32Array), [1, 2, 3], `opset ${opset}`);
    await s.release();
  }
  assert.throws(() => serialize(g, { outputs: [y], opset: 22 }), /opset 22 is not supported: give 13 to 21/);
});

test('int8 parameters: uint8 activations hold 0, weights are symmetric per channel; QuantizeLinear/DequantizeLinear round-trip', async () => {
  assert.deepEqual(activationParams({ min: 0, max: 2.55 }), { scale: Math.fround(0.01), zeroPoint: 0 });
  const p = activationParams({ min: -1, max: 3 });
  assert.equal(p.zeroPoint, Math.round(1 / p.scale));
  assert.deepEqual(activationParams({ min: 1, max: 1 }).zeroPoint, 0, 'a positive range is widened to 0');
  assert.deepEqual(activationParams({ min: 0, max: 0 }), { scale: 1, zeroPoint: 0 });
  const { q, scales } = quantizeWeights(Float32Array.of(0.5, -1, 0.25, 0, 0, 0), 2);
  assert.deepEqual(Array.from(q), [64, -127, 32, 0, 0, 0]);
  assert.deepEqual(Array.from(scales), [Math.fround(1 / 127), 1]);

  const g = new Graph();
  const x = g.input('x', 'float32', [4]);
  const scale = g.constant(Float32Array.of(0.5), [], 'float32');
  const zp = g.constant(Uint8Array.of(10), [], 'uint8');
  const qx = op.quantizeLinear(x, scale, zp);
  const back = op.dequantizeLinear(qx, scale, zp);
  const s = await OnnxSession.create(serialize(g, { outputs: [qx, back] }), { threads: 1 });
  const r = await s.run({ x: { data: Float32Array.of(-10, 0.74, 1.25, 500), dims: [4] } });
  assert.deepEqual(Array.from(r[qx.name]!.data as Uint8Array), [0, 11, 12, 255]);
  assert.deepEqual(Array.from(r[back.name]!.data as Float32Array), [-5, 0.5, 1, 122.5]);
  await s.release();
  assert.throws(() => op.dequantizeLinear(qx, g.constant(Float32Array.of(1, 2), [2], 'float32'), zp, 0), /per-channel scale and zero point must be \[4\]/);
});
