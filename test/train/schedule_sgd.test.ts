import { test } from 'node:test';
import assert from 'node:assert/strict';
import { learningRate, paperSchedule } from '../../src/train/schedule.js';
import { Sgd } from '../../src/train/sgd.js';
import { globalNorm } from '../../src/train/train_graph.js';

test('paper schedule: linear warmup from base * 0.001, x0.1 at 2/3 and 8/9 of the run', () => {
  const s = paperSchedule(0.01, 900, 100);
  assert.deepEqual(s.steps, [600, 800]);
  assert.ok(Math.abs(learningRate(s, 0) - 0.01 * 0.001) < 1e-15);
  assert.ok(Math.abs(learningRate(s, 50) - 0.01 * (0.001 * 0.5 + 0.5)) < 1e-15);
  assert.equal(learningRate(s, 100), 0.01);
  assert.equal(learningRate(s, 599), 0.01);
  assert.ok(Math.abs(learningRate(s, 600) - 0.001) < 1e-15);
  assert.ok(Math.abs(learningRate(s, 800) - 0.0001) < 1e-15);
});

test('SGD follows torch.optim.SGD: momentum buffer starts at the first gradient, weight decay added to it', () => {
  const sgd = new Sgd({ momentum: 0.9, weightDecay: 0.1 });
  const p = new Map([['w', Float32Array.of(1, -2)]]);
  // Step 1: d = g + wd * p = (0.5 + 0.1, 1 - 0.2) = (0.6, 0.8); buf = d; p -= lr * buf.
  sgd.step(p, new Map([['w', Float32Array.of(0.5, 1)]]), 0.1);
  assert.deepEqual(Array.from(p.get('w')!), [Math.fround(1 - 0.1 * 0.6), Math.fround(-2 - 0.1 * 0.8)]);
  // Step 2: buf = 0.9 * buf + d.
  const p1 = Array.from(p.get('w')!);
  sgd.step(p, new Map([['w', Float32Array.of(0, 0)]]), 0.1);
  const d = p1.map((v) => Math.fround(0.1 * v));
  const buf = [Math.fround(0.9 * 0.6 + d[0]!), Math.fround(Math.fround(0.9 * Math.fround(0.8)) + d[1]!)];
  assert.ok(Math.abs(p.get('w')![0]! - (p1[0]! - 0.1 * buf[0]!)) < 1e-6);
  assert.ok(Math.abs(p.get('w')![1]! - (p1[1]! - 0.1 * buf[1]!)) < 1e-6);
});

test('SGD gradScale gives the same float32 weights and momentum as pre-scaled gradients, and leaves the gradients alone', () => {
  const rnd = (n: number, seed: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 1000 + i * 12.9898) * 0.5);
  for (const momentum of [0, 0.9]) {
    const a = new Sgd({ momentum, weightDecay: 1e-4 });
    const b = new Sgd({ momentum, weightDecay: 1e-4 });
    const pa = new Map([['w', rnd(37, 1)]]);
    const pb = new Map([['w', Float32Array.from(pa.get('w')!)]]);
    for (let step = 0; step < 3; step++) {
      const g = rnd(37, 2 + step);
      const before = Float32Array.from(g);
      const k = 0.37 + step;
      a.step(pa, new Map([['w', g]]), 0.05, k);
      assert.deepEqual(g, before, 'gradients are not modified');
      b.step(pb, new Map([['w', g.map((v) => v * k)]]), 0.05);
      assert.deepEqual(pa.get('w'), pb.get('w'));
      if (momentum) assert.deepEqual(a.momentum.get('w'), b.momentum.get('w'));
    }
  }
});

test('globalNorm equals the plain float64 L2 norm over all gradients (lengths not multiples of 4)', () => {
  const grads = [7, 1, 4096, 13].map((n, j) => Float32Array.from({ length: n }, (_, i) => Math.cos(i * 0.37 + j) * (j + 1)));
  let s = 0;
  for (const g of grads) for (const v of g) s += v * v;
  const norm = globalNorm(grads);
  assert.ok(Math.abs(norm - Math.sqrt(s)) <= 1e-12 * Math.sqrt(s), `${norm} vs ${Math.sqrt(s)}`);
  assert.equal(globalNorm([]), 0);
});
