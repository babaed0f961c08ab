/**
 * Memory is bounded: a run on images of many aspect ratios (one compiled session per padded
 * shape) keeps its resident memory under the budget by evicting sessions, and a run whose
 * largest step cannot fit is refused before it starts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RetinaNet } from '../../src/model/model.js';
import { mergeConfig } from '../../src/model/config.js';
import { memorySource } from '../../src/data/source.js';
import { demoConfig } from '../../src/train/demo_config.js';
import { Trainer, type TrainHook } from '../../src/train/trainer.js';
import { MemoryBudgetError, largestBatchShape, trainSessionBytes } from '../../src/train/memory.js';

const cfg = mergeConfig(demoConfig(192), { transform: { minSize: 192, maxSize: 384 } });
// Nine aspect ratios from 1:3 to 3:1: nine padded shapes, nine compiled sessions unless evicted.
const ratios = [0.33, 0.5, 0.66, 0.8, 1, 1.25, 1.5, 2, 3];
const samples = ratios.map((r, i) => {
  const w = Math.round(r >= 1 ? 384 : 384 * r);
  const h = Math.round(r >= 1 ? 384 / r : 384);
  return { image: { data: new Float32Array(3 * h * w).fill(0.5), width: w, height: h }, boxes: Float32Array.from([10, 10, 60, 70]), labels: Int32Array.from([i % 4]) };
});
const source = memorySource(samples, cfg.classNames!);

test('training on many aspect ratios keeps peak RSS under the memory budget', async () => {
  const model = new RetinaNet(cfg, 0);
  const one = trainSessionBytes(model, ...largestBatchShape(model, 1, 32));
  const budget = process.memoryUsage().rss + 8 * model.store.count(true) + 2.5 * one;
  // Holding every shape's session would not fit: the budget has to be enforced.
  assert.ok(process.memoryUsage().rss + ratios.length * trainSessionBytes(model, 1, 192, 224) > budget);
  let peak = 0;
  const hook: TrainHook = { afterStep: () => void (peak = Math.max(peak, process.memoryUsage().rss)) };
  const r = await new Trainer(model, source, { iters: ratios.length * 2, batchSize: 1, padTo: 32, flip: false, prefetchWorker: false, threads: 1, maxMemory: budget, hooks: [hook] }).run();
  assert.equal(r.stopped, 'done');
  assert.ok(peak <= budget, `peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB over the ${(budget / 2 ** 20).toFixed(0)} MiB budget`);
});

test('a run whose largest step cannot fit the budget is refused before the first step, with the numbers', async () => {
  const model = new RetinaNet(cfg, 0);
  const steps: number[] = [];
  const trainer = new Trainer(model, source, { iters: 2, batchSize: 2, padTo: 32, prefetchWorker: false, maxMemory: 64 * 2 ** 20, hooks: [{ afterStep: (_t, rec) => void steps.push(rec.iter) }] });
  await assert.rejects(trainer.run(), (e: unknown) => e instanceof MemoryBudgetError && /needs about [\d.]+ GiB, over the 0\.1 GiB memory budget/.test(e.message));
  assert.deepEqual(steps, []);
});
