import { test } from 'node:test';
import assert from 'node:assert/strict';
import { learningRate, paperSchedule } from '../../src/train/schedule.js';
import { Sgd } from '../../src/train/sgd.js';

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
