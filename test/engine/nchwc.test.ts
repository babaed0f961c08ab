import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import onnxProto from 'onnx-proto';
import { Executable, Graph, type Tensor, grad, nchwcBlockSize, op, serialize } from '../../src/engine/index.js';

const { onnx } = onnxProto;

function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5));
}

/**
 * A small training-like graph: a 3x3 conv + ReLU (fusable), a strided conv, a weight shared by
 * two convs (one on the other's output), a 1x1 conv and a grouped conv (both left plain), a conv
 * whose output is returned; and the gradients of a loss with respect to the input and weights.
 */
function build(): { g: Graph; outputs: Tensor[]; feeds: Record<string, Float32Array> } {
  const g = new Graph();
  const x = g.input('x', 'float32', [4, 32, 64, 64]);
  const w1 = g.param('w1', [32, 32, 3, 3]);
  const b1 = g.param('b1', [32]);
  const w2 = g.param('w2', [32, 32, 3, 3]);
  const wShared = g.param('w_shared', [32, 32, 3, 3]);
  const wPoint = g.param('w_point', [32, 32, 1, 1]);
  const wGroup = g.param('w_group', [32, 16, 3, 3]);
  const h1 = op.relu(op.conv(x, w1, b1, { pads: 1 }));
  const h2 = op.conv(h1, w2, null, { pads: 1, strides: 2 });
  const h3 = op.relu(op.conv(op.conv(h1, wShared, null, { pads: 1 }), wShared, null, { pads: 1 }));
  const h4 = op.conv(h3, wPoint, null, {});
  const h5 = op.conv(h4, wGroup, null, { pads: 1, group: 2 });
  const loss = op.add(op.reduceSum(op.mul(h2, h2)), op.reduceSum(op.mul(h5, h5)));
  const grads = grad(loss, [x, w1, b1, w2, wShared, wPoint, wGroup]);
  const feeds: Record<string, Float32Array> = { x: values(4 * 32 * 64 * 64, 1) };
  for (const [i, p] of [w1, b1, w2, wShared, wPoint, wGroup].entries()) feeds[p.name] = Float32Array.from(values(p.size, 10 + i), (v) => v * 0.2);
  return { g, outputs: [h1, h2, h5, loss, ...grads], feeds };
}

test('the NCHWc rewrite blocks the spatial, ungrouped convolutions with fed or computed weights and fuses a lone ReLU', () => {
  const { g, outputs } = build();
  const count = (bytes: Uint8Array, opType: string, domain: string): number =>
    onnx.ModelProto.decode(bytes).graph!.node!.filter((n) => n.opType === opType && (n.domain ?? '') === domain).length;
  const plain = serialize(g, { outputs });
  const blocked = serialize(g, { outputs, nchwcBlock: 16 });
  assert.equal(count(plain, 'Conv', 'com.microsoft.nchwc'), 0);
  const plainConvs = count(plain, 'Conv', '');
  const rewritten = count(blocked, 'Conv', 'com.microsoft.nchwc');
  assert.ok(rewritten >= 4, `expected the forward 3x3 convs (and input-gradient convs) rewritten, got ${rewritten}`);
  // The 1x1 and grouped convs (and their gradient convs) stay in the standard domain.
  assert.ok(count(blocked, 'Conv', '') >= 2);
  assert.equal(count(blocked, 'Conv', '') + rewritten, plainConvs);
  // Fused ReLUs disappear from the graph (h1's ReLU is read by its gradient too, so only the rest).
  assert.ok(count(blocked, 'Relu', '') < count(plain, 'Relu', ''));
  const model = onnx.ModelProto.decode(blocked);
  assert.ok(model.opsetImport!.some((o) => o.domain === 'com.microsoft.nchwc'));
  // A weight is reordered once however many convs use it.
  const reorders = model.graph!.node!.filter((n) => n.name === 'w_shared__nchwc_merge');
  assert.equal(reorders.length, 1);
  // float64 convolutions (no NCHWc kernel) stay plain.
  const g64 = new Graph();
  const y64 = op.conv(g64.input('x', 'float64', [1, 32, 64, 64]), g64.input('w', 'float64', [32, 32, 3, 3]), null, { pads: 1 });
  assert.equal(count(serialize(g64, { outputs: [y64], nchwcBlock: 16 }), 'Conv', 'com.microsoft.nchwc'), 0);
  // Baked weights are left to ONNX Runtime's own transformer.
  const baked = serialize(g, { outputs: [outputs[0]!], nchwcBlock: 16, bake: new Map([['w1', new Float32Array(32 * 32 * 9)], ['b1', new Float32Array(32)]]) });
  assert.equal(count(baked, 'Conv', 'com.microsoft.nchwc'), 0);
});

/** The block MLAS uses on this CPU by its flags (Linux x64 only; undefined elsewhere). */
function expectedBlock(): number | undefined {
  if (process.arch !== 'x64' || !existsSync('/proc/cpuinfo')) return undefined;
  const flags = new Set(/^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim().split(/\s+/) ?? []);
  return flags.has('avx512f') ? 16 : flags.has('avx2') ? 8 : 0;
}

test('the probe finds the block of this CPU\'s NCHWc kernels (a wrong rewrite would make it find none)', async (t) => {
  const want = expectedBlock();
  if (want === undefined || process.env['RETINANET_NCHWC'] === '0') {
    t.skip('not Linux x64 (no /proc/cpuinfo flags to predict the block), or RETINANET_NCHWC=0');
    return;
  }
  assert.equal(await nchwcBlockSize(), want);
});

test('a graph run with NCHWc convolutions gives the plain graph\'s values and gradients', async (t) => {
  const block = await nchwcBlockSize();
  if (block === 0) {
    t.skip('this CPU has no ONNX Runtime NCHWc kernels (or RETINANET_NCHWC=0): the plain path is the only one');
    return;
  }
  const { g, outputs, feeds } = build();
  const blocked = await Executable.create(g, outputs, { threads: 2 });
  const plain = await Executable.create(g, outputs, { threads: 2, nchwc: false });
  const a = (await blocked.run(feeds)) as Float32Array[];
  const b = (await plain.run(feeds)) as Float32Array[];
  for (const [k, out] of outputs.entries()) {
    let scale = 0;
    for (const v of b[k]!) scale = Math.max(scale, Math.abs(v));
    let worst = 0;
    for (let i = 0; i < b[k]!.length; i++) worst = Math.max(worst, Math.abs(a[k]![i]! - b[k]![i]!));
    assert.ok(worst <= 1e-4 * scale, `${out.name}: max difference ${worst} against a max of ${scale}`);
  }
  await blocked.release();
  await plain.release();
});
