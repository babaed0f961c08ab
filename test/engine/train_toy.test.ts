import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Executable, Graph, grad, op } from '../../src/engine/index.js';
import { ParameterStore, conv2d } from '../../src/nn/index.js';
import { Sgd } from '../../src/train/sgd.js';
import { rng } from './gradcheck.js';

/** Toy task: 8x8 images holding a horizontal (label 0) or vertical (label 1) bar, with noise. */
function makeBatch(n: number, r: () => number): { x: Float32Array; y: Float32Array } {
  const x = new Float32Array(n * 64);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const vertical = r() < 0.5;
    y[i] = vertical ? 1 : 0;
    const k = 1 + Math.floor(r() * 6);
    for (let p = 0; p < 64; p++) x[i * 64 + p] = (r() - 0.5) * 0.2;
    for (let t = 1; t < 7; t++) x[i * 64 + (vertical ? t * 8 + k : k * 8 + t)]! += 1;
  }
  return { x, y };
}

test('a small CNN trained through the engine with SGD cuts its loss by 10x', async () => {
  const batch = 16;
  const g = new Graph();
  const store = new ParameterStore(7);
  const s = { graph: g, store };
  const x = g.input('x', 'float32', [batch, 1, 8, 8]);
  const y = g.input('y', 'float32', [batch]);
  let h = op.relu(conv2d(s, 'conv1', x, 8, 3, { padding: 1 }));
  h = op.maxPool(h, { kernel: 2 });
  h = op.relu(conv2d(s, 'conv2', h, 8, 3, { padding: 1 }));
  const logits = op.reshape(conv2d(s, 'head', op.reduceMean(h, [2, 3], true), 1, 1), [batch]);
  // Logistic loss written stably: softplus(z) - y*z.
  const loss = op.reduceMean(op.sub(op.softplus(logits), op.mul(y, logits)));
  const names = store.trainableNames();
  const params = names.map((n) => g.inputs.get(n)!);
  const grads = grad(loss, params);
  const exe = await Executable.create(g, [loss, ...grads], { threads: 1 });
  const sgd = new Sgd({ momentum: 0.9 });
  const r = rng(3);
  const losses: number[] = [];
  for (let it = 0; it < 300; it++) {
    const b = makeBatch(batch, r);
    const out = await exe.run(new Map([['x', b.x], ['y', b.y], ...store.values]));
    losses.push((out[0] as Float32Array)[0]!);
    sgd.step(store.values, new Map(names.map((n, i) => [n, out[i + 1] as Float32Array])), 0.1);
  }
  const first = losses.slice(0, 10).reduce((a, b) => a + b) / 10;
  const last = losses.slice(-10).reduce((a, b) => a + b) / 10;
  assert.ok(Number.isFinite(last));
  assert.ok(last < first / 10, `loss fell only from ${first.toFixed(4)} to ${last.toFixed(4)}`);
});
