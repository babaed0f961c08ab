import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Executable, Graph, type GraphOptions, differentiableOps, grad, op, type Tensor } from '../../src/engine/index.js';
import { distinctValues, gradCheck, rng } from './gradcheck.js';

const positive = (n: number, seed: number): number[] => {
  const r = rng(seed);
  return Array.from({ length: n }, () => 0.5 + r());
};

interface Case {
  name: string;
  f: (xs: Tensor[]) => Tensor;
  inputs: { shape: number[]; values?: number[] }[];
  /** Ops this case exercises (for the coverage assertion below). */
  covers: string[];
  /** Relative tolerance where the case itself rounds (e.g. through float32). */
  rtol?: number;
  /** Forced dtype and graph options (a fused op that exists in float32 only). */
  dtype?: 'float32';
  graph?: GraphOptions;
}

const cases: Case[] = [
  { name: 'Add with broadcasting', f: ([a, b]) => op.add(a!, b!), inputs: [{ shape: [2, 3, 4] }, { shape: [3, 1] }], covers: ['Add'] },
  { name: 'Sub with broadcasting', f: ([a, b]) => op.sub(a!, b!), inputs: [{ shape: [2, 3] }, { shape: [3] }], covers: ['Sub'] },
  { name: 'Mul with broadcasting', f: ([a, b]) => op.mul(a!, b!), inputs: [{ shape: [4, 1, 3] }, { shape: [2, 3] }], covers: ['Mul'] },
  { name: 'Div', f: ([a, b]) => op.div(a!, b!), inputs: [{ shape: [2, 3] }, { shape: [2, 3], values: positive(6, 3) }], covers: ['Div'] },
  { name: 'Pow (base and exponent)', f: ([a, b]) => op.pow(a!, b!), inputs: [{ shape: [2, 3], values: positive(6, 4) }, { shape: [3] }], covers: ['Pow'] },
  { name: 'Min / Max', f: ([a, b]) => op.add(op.min(a!, b!), op.mul(op.max(a!, b!), a!)), inputs: [{ shape: [3, 4] }, { shape: [3, 4] }], covers: ['Min', 'Max'] },
  { name: 'Neg, Exp, Log, Sqrt', f: ([a]) => op.neg(op.add(op.exp(a!), op.mul(op.log(a!), op.sqrt(a!)))), inputs: [{ shape: [5], values: positive(5, 5) }], covers: ['Neg', 'Exp', 'Log', 'Sqrt'] },
  { name: 'Abs, Relu', f: ([a]) => op.add(op.abs(a!), op.relu(a!)), inputs: [{ shape: [12] }], covers: ['Abs', 'Relu'] },
  { name: 'Sigmoid, Softplus, Tanh, Reciprocal', f: ([a]) => op.add(op.add(op.sigmoid(a!), op.softplus(a!)), op.add(op.tanh(a!), op.reciprocal(op.add(a!, op.scalarLike(a!, 3))))), inputs: [{ shape: [9] }], covers: ['Sigmoid', 'Softplus', 'Tanh', 'Reciprocal'] },
  { name: 'Clip', f: ([a]) => op.clip(a!, -0.5, 0.4), inputs: [{ shape: [16] }], covers: ['Clip'] },
  { name: 'Where', f: ([a, b]) => op.where(op.greater(a!, op.scalarLike(a!, 0)), a!, b!), inputs: [{ shape: [3, 4] }, { shape: [4] }], covers: ['Where', 'Greater'] },
  { name: 'Sum (n-ary)', f: ([a, b, c]) => op.sum([a!, b!, c!]), inputs: [{ shape: [2, 3] }, { shape: [3] }, { shape: [2, 1] }], covers: ['Sum'] },
  { name: 'MatMul batched with broadcast', f: ([a, b]) => op.matmul(a!, b!), inputs: [{ shape: [2, 3, 4] }, { shape: [4, 5] }], covers: ['MatMul'] },
  {
    name: 'Gemm with transposes and C',
    f: ([a, b, c]) => op.add(op.gemm(a!, b!, c!, { alpha: 0.7, beta: 1.3, transA: true }), op.gemm(a!, b!, undefined, { transA: true, transB: false })),
    inputs: [{ shape: [4, 3] }, { shape: [4, 5] }, { shape: [5] }],
    covers: ['Gemm'],
  },
  { name: 'Gemm transB', f: ([a, b]) => op.gemm(a!, b!, undefined, { transB: true }), inputs: [{ shape: [3, 4] }, { shape: [5, 4] }], covers: ['Gemm'] },
  { name: 'Conv 3x3 pad 1 with bias', f: ([x, w, b]) => op.conv(x!, w!, b!, { pads: 1 }), inputs: [{ shape: [2, 3, 6, 5] }, { shape: [4, 3, 3, 3] }, { shape: [4] }], covers: ['Conv'] },
  { name: 'Conv stride 2 (ConvTranspose path)', f: ([x, w]) => op.conv(x!, w!, null, { strides: 2, pads: 1 }), inputs: [{ shape: [1, 2, 7, 8] }, { shape: [3, 2, 3, 3] }], covers: ['Conv'] },
  { name: 'Conv 1x1 stride 2', f: ([x, w]) => op.conv(x!, w!, null, { strides: 2 }), inputs: [{ shape: [2, 4, 6, 6] }, { shape: [3, 4, 1, 1] }], covers: ['Conv'] },
  { name: 'Conv 7x7 stride 2 pad 3 (ResNet stem)', f: ([x, w]) => op.conv(x!, w!, null, { strides: 2, pads: 3 }), inputs: [{ shape: [1, 3, 12, 11] }, { shape: [2, 3, 7, 7] }], covers: ['Conv'] },
  { name: 'Conv dilation 2, groups 2, asymmetric pads', f: ([x, w]) => op.conv(x!, w!, null, { dilations: 2, group: 2, pads: [2, 1, 1, 2] }), inputs: [{ shape: [1, 4, 7, 7] }, { shape: [6, 2, 3, 3] }], covers: ['Conv'] },
  { name: 'Conv 2x3 kernel, stride 1, asymmetric pads', f: ([x, w]) => op.conv(x!, w!, null, { pads: [1, 0, 0, 2] }), inputs: [{ shape: [2, 3, 5, 6] }, { shape: [4, 3, 2, 3] }], covers: ['Conv'] },
  { name: 'ConvTranspose stride 2 with bias', f: ([x, w, b]) => op.convTranspose(x!, w!, b!, { strides: 2, pads: 1, outputPadding: 1 }), inputs: [{ shape: [1, 3, 4, 5] }, { shape: [3, 2, 3, 3] }, { shape: [2] }], covers: ['ConvTranspose'] },
  { name: 'MaxPool 3x3 stride 2 pad 1', f: ([x]) => op.maxPool(x!, { kernel: 3, strides: 2, pads: 1 }), inputs: [{ shape: [2, 2, 7, 6], values: distinctValues(168, 7) }], covers: ['MaxPool'] },
  { name: 'AveragePool 2x2', f: ([x]) => op.averagePool(x!, { kernel: 2 }), inputs: [{ shape: [1, 2, 6, 4] }], covers: ['AveragePool'] },
  { name: 'AveragePool 3x3 pad 1 count_include_pad', f: ([x]) => op.averagePool(x!, { kernel: 3, strides: 1, pads: 1, countIncludePad: true }), inputs: [{ shape: [1, 2, 5, 4] }], covers: ['AveragePool'] },
  { name: 'Resize nearest 2x', f: ([x]) => op.upsampleNearest(x!, 2), inputs: [{ shape: [1, 2, 3, 4] }], covers: ['Resize'] },
  { name: 'Reshape, Transpose', f: ([x]) => op.transpose(op.reshape(x!, [4, 6]), [1, 0]), inputs: [{ shape: [2, 3, 4] }], covers: ['Reshape', 'Transpose'] },
  { name: 'Expand', f: ([x]) => op.expand(x!, [3, 2, 4]), inputs: [{ shape: [2, 1] }], covers: ['Expand'] },
  { name: 'Concat', f: ([a, b]) => op.mul(op.concat([a!, b!, a!], 1), op.scalarLike(a!, 2)), inputs: [{ shape: [2, 3] }, { shape: [2, 2] }], covers: ['Concat'] },
  { name: 'Slice steps 1', f: ([x]) => op.slice(x!, [1, 0], [3, -1], [0, 2]), inputs: [{ shape: [4, 3, 5] }], covers: ['Slice'] },
  { name: 'Slice step 2 and negative step', f: ([x]) => op.add(op.slice(x!, [0], [5], [1], [2]), op.slice(x!, [-1], [-(2 ** 31)], [1], [-2])), inputs: [{ shape: [2, 6] }], covers: ['Slice'] },
  { name: 'Pad', f: ([x]) => op.pad(x!, [0, 1, 2, 1, 0, 3], 0.5), inputs: [{ shape: [2, 3, 2] }], covers: ['Pad'] },
  {
    name: 'Gather axis 1 with repeats and negative index',
    f: ([x]) => op.gather(x!, x!.graph.constant(BigInt64Array.of(2n, 0n, 2n, -1n), [2, 2], 'int64'), 1),
    inputs: [{ shape: [2, 4, 3] }],
    covers: ['Gather'],
  },
  {
    name: 'GatherElements',
    f: ([x]) => op.gatherElements(x!, x!.graph.constant(BigInt64Array.of(0n, 2n, 2n, 1n, 0n, 0n), [2, 3], 'int64'), 1),
    inputs: [{ shape: [2, 3] }],
    covers: ['GatherElements'],
  },
  {
    name: 'ScatterElements none and add',
    f: ([d, u]) => {
      const g = d!.graph;
      const idx = g.constant(BigInt64Array.of(1n, 0n, 2n, 1n), [1, 4], 'int64');
      const a = op.scatterElements(d!, idx, u!, 0, 'add');
      const idx2 = g.constant(BigInt64Array.of(0n, 2n, 1n, 0n), [1, 4], 'int64');
      return op.scatterElements(a, idx2, op.mul(u!, u!), 0, 'none');
    },
    inputs: [{ shape: [3, 4] }, { shape: [1, 4] }],
    covers: ['ScatterElements'],
  },
  {
    name: 'ScatterND and GatherND',
    f: ([d, u]) => {
      const g = d!.graph;
      const idx = g.constant(BigInt64Array.of(2n, 0n), [2, 1], 'int64');
      const s = op.scatterND(d!, idx, u!, 'none');
      return op.add(s, op.reshape(op.gatherND(s, g.constant(BigInt64Array.of(2n, 0n, 0n), [3, 1], 'int64')), [3, 2, 4]));
    },
    inputs: [{ shape: [3, 2, 4] }, { shape: [2, 2, 4] }],
    covers: ['ScatterND', 'GatherND'],
  },
  { name: 'ReduceSum, ReduceMean', f: ([x]) => op.add(op.reduceSum(x!, [0, 2], true), op.reduceMean(x!, [2], true)), inputs: [{ shape: [2, 3, 4] }], covers: ['ReduceSum', 'ReduceMean'] },
  { name: 'ReduceMax', f: ([x]) => op.reduceMax(x!, [1]), inputs: [{ shape: [3, 5], values: distinctValues(15, 11) }], covers: ['ReduceMax'] },
  { name: 'Cast float64 <-> float32', f: ([x]) => op.cast(op.mul(op.cast(x!, 'float32'), op.cast(x!, 'float32')), x!.dtype), inputs: [{ shape: [4] }], covers: ['Cast'], rtol: 1e-2 },
  {
    name: 'GroupNorm composite',
    f: ([x, gm, bt]) => op.groupNorm(x!, 2, gm!, bt!),
    inputs: [{ shape: [2, 4, 3, 3] }, { shape: [4] }, { shape: [4] }],
    covers: ['ReduceMean', 'Sqrt', 'Div'],
  },
  {
    name: 'GroupNorm fused (LayerNormalization)',
    f: ([x, gm, bt]) => op.groupNorm(x!, 2, gm!, bt!),
    inputs: [{ shape: [2, 4, 3, 3] }, { shape: [4] }, { shape: [4] }],
    covers: ['LayerNormalization'],
    dtype: 'float32',
    graph: { fusedNorms: true },
  },
  { name: 'Identity, Sign (zero grad)', f: ([x]) => op.add(op.identity(x!), op.sign(x!)), inputs: [{ shape: [6] }], covers: ['Identity', 'Sign'] },
];

for (const c of cases) {
  test(`gradient of ${c.name} matches finite differences`, async (t) => {
    const r = await gradCheck(c.f, c.inputs, { rtol: c.rtol, dtype: c.dtype, graph: c.graph });
    assert.ok(r.checked > 0);
    t.diagnostic(`${r.dtype}: ${r.checked} coordinates, max relative error ${r.maxRelErr.toExponential(2)}`);
  });
}

test('fused GroupNorm: one LayerNormalization node, same values and gradients as the primitive one', async () => {
  const r = rng(9);
  const shape = [2, 64, 12, 10];
  const size = shape.reduce((a, b) => a * b, 1);
  const xv = Float32Array.from({ length: size }, () => 3 * r() - 1);
  const gv = Float32Array.from({ length: 64 }, () => 0.5 + r());
  const bv = Float32Array.from({ length: 64 }, () => r() - 0.5);
  const wv = Float32Array.from({ length: size }, () => 2 * r() - 1);
  const run = async (fused: boolean): Promise<{ values: Float32Array[]; ops: string[] }> => {
    const g = new Graph({ fusedNorms: fused });
    const x = g.param('x', shape, 'float32');
    const gm = g.param('g', [64], 'float32');
    const bt = g.param('b', [64], 'float32');
    const y = op.relu(op.groupNorm(x, 32, gm, bt));
    const loss = op.reduceSum(op.mul(y, g.constant(wv, shape, 'float32')));
    const grads = grad(loss, [x, gm, bt]);
    const exe = await Executable.create(g, [y, ...grads], { threads: 1 });
    const values = (await exe.run(new Map([['x', xv], ['g', gv], ['b', bv]]))) as Float32Array[];
    await exe.release();
    return { values, ops: g.nodes.map((n) => n.opType) };
  };
  const plain = await run(false);
  const fused = await run(true);
  assert.equal(fused.ops.filter((o) => o === 'LayerNormalization').length, 1);
  assert.equal(plain.ops.filter((o) => o === 'LayerNormalization').length, 0);
  assert.ok(fused.ops.length < plain.ops.length, `${fused.ops.length} nodes fused vs ${plain.ops.length}`);
  ['y', 'dx', 'dgamma', 'dbeta'].forEach((name, i) => {
    const a = plain.values[i]!;
    const b = fused.values[i]!;
    let worst = 0;
    for (let k = 0; k < a.length; k++) worst = Math.max(worst, Math.abs(a[k]! - b[k]!) / Math.max(1, Math.abs(a[k]!)));
    assert.ok(worst < 2e-4, `${name}: max relative difference ${worst}`);
  });
});

test('every differentiable op is exercised by a finite-difference case', () => {
  const covered = new Set(cases.flatMap((c) => c.covers));
  const noGrad = new Set(['Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'And', 'Or', 'Not']);
  const missing = differentiableOps().filter((o) => !covered.has(o) && !noGrad.has(o));
  assert.deepEqual(missing, []);
});

test('grad gives zeros for parameters the loss does not reach', async () => {
  const g = new Graph();
  const a = g.param('a', [2]);
  const b = g.param('b', [3]);
  const loss = op.reduceSum(op.mul(a, a));
  const [, db] = grad(loss, [a, b]);
  assert.deepEqual(db!.shape, [3]);
});

test('grad rejects a non-scalar loss with a clear message', () => {
  const g = new Graph();
  const a = g.param('a', [2]);
  assert.throws(() => grad(a, [a]), /loss must have one element/);
});

test('shape mismatches fail at build time with the operator named', () => {
  const g = new Graph();
  const x = g.input('x', 'float32', [1, 64, 8, 8]);
  const w = g.param('w', [32, 128, 3, 3]);
  assert.throws(() => op.conv(x, w), /Conv: input has 64 channels, weight expects 128/);
  assert.throws(() => op.add(g.input('p', 'float32', [2, 3]), g.input('q', 'float32', [4])), /Add: shapes \[2, 3\] and \[4\] cannot be broadcast/);
  assert.throws(() => op.matmul(g.input('m', 'float32', [2, 3]), g.input('n', 'float32', [4, 5])), /MatMul: inner dimensions differ/);
});
