import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generateSynthetic, SYNTHETIC_CLASSES } from '../../src/data/synthetic.js';
import { RetinaNet } from '../../src/model/model.js';
import { demoConfig } from '../../src/train/demo_config.js';
import { memorySource } from '../../src/data/source.js';
import { BatchSampler, prepareBatch } from '../../src/train/batches.js';
import { Trainer, type TrainHook, type TrainOptions } from '../../src/train/trainer.js';
import { paperRecipe } from '../../src/train/recipe.js';
import { ValidationHook } from '../../src/train/hooks.js';
import { buildTrainGraph, trainFeeds } from '../../src/train/train_graph.js';

const SIZE = 64;
const samples = generateSynthetic({ count: 6, seed: 5, imageSize: SIZE, minObjectSize: 8, maxObjectSize: 40 });
const source = memorySource(samples, SYNTHETIC_CLASSES);
const cfg = demoConfig(SIZE);

function options(outDir: string, over: Partial<TrainOptions> = {}): TrainOptions {
  return { iters: 4, batchSize: 2, lr: 0.01, momentum: 0.9, weightDecay: 1e-4, warmupIters: 1, flip: true, padTo: 32, seed: 3, threads: 1, outDir, checkpointEvery: 2, valEvery: 100, ...over };
}

function tmp(): string {
  return mkdtempSync(path.join(tmpdir(), 'retinanet-train-test-'));
}

function readLog(dir: string): Record<string, number>[] {
  return readFileSync(path.join(dir, 'log.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, number>);
}

test('epoch 0 visits images in dataset order; later epochs are seeded permutations', () => {
  const s = new BatchSampler(source, 2, 1);
  assert.deepEqual([s.batchAt(0), s.batchAt(1), s.batchAt(2)], [[0, 1], [2, 3], [4, 5]]);
  const e1 = [s.batchAt(3), s.batchAt(4), s.batchAt(5)].flat();
  assert.deepEqual([...e1].sort(), [0, 1, 2, 3, 4, 5]);
  const again = new BatchSampler(source, 2, 1);
  assert.deepEqual([again.batchAt(3), again.batchAt(4), again.batchAt(5)].flat(), e1);
});

test('with lr 0 and no augmentation the first logged losses are those of the initial weights on the first batch', async () => {
  const dir = tmp();
  const model = new RetinaNet(cfg, 11);
  const r = await new Trainer(model, source, options(dir, { lr: 0, flip: false, iters: 1 })).run();
  assert.equal(r.stopped, 'done');
  // Recompute independently: same first batch (images 0 and 1), fresh model with the same seed.
  const fresh = new RetinaNet(cfg, 11);
  const b = await prepareBatch(source, 0, [0, 1], { config: cfg, flip: false, padTo: 32, seed: 3, boxLoss: 'l1' });
  const [n, , h, w] = b.shape;
  const exe = await buildTrainGraph(fresh, n, h, w, b.anchors.length / 4, 1);
  const out = (await exe.exe.run(trainFeeds(fresh, b))) as Float32Array[];
  await exe.release();
  const [first] = readLog(dir);
  assert.equal(first!['iter'], 0);
  assert.equal(first!['loss_cls'], out[0]![0]);
  assert.equal(first!['loss_box'], out[1]![0]);
  assert.ok(first!['num_fg']! > 0);
  for (const key of ['iter', 'loss_cls', 'loss_box', 'lr', 'num_fg', 'time']) assert.ok(key in first!, `log record has ${key}`);
  // lr 0: the weights did not move.
  for (const [name, v] of fresh.store.values) assert.deepEqual(model.store.get(name), v, name);
});

test('resuming from a checkpoint continues bit for bit', async () => {
  const straight = tmp();
  const a = new RetinaNet(cfg, 2);
  await new Trainer(a, source, options(straight)).run();

  const resumedDir = tmp();
  const first = await new Trainer(new RetinaNet(cfg, 2), source, options(resumedDir, { stopAt: 2, checkpointEvery: 100 })).run();
  assert.equal(first.stopped, 'interrupted');
  assert.equal(first.iterations, 2);
  const resumed = new RetinaNet(cfg, 99); // another init: everything must come from the checkpoint
  const second = new Trainer(resumed, source, options(resumedDir));
  const state = await second.resume();
  assert.equal(state.iteration, 2);
  const r = await second.run();
  assert.equal(r.stopped, 'done');
  assert.equal(r.iterations, 4);
  for (const [name, v] of a.store.values) assert.deepEqual(resumed.store.get(name), v, `parameter ${name} after resume`);
  const withoutTime = (recs: Record<string, number>[]): Record<string, number>[] => recs.map(({ time: _t, ...rest }) => rest);
  assert.deepEqual(withoutTime(readLog(resumedDir)), withoutTime(readLog(straight)));
  const files = readdirSync(path.join(resumedDir, 'checkpoint')).sort();
  assert.deepEqual(files, ['optimizer-0000004.safetensors', 'state.json', 'weights-0000004.safetensors']);
  for (const f of ['model.safetensors', 'model.json', 'results.png', 'results.csv']) assert.ok(existsSync(path.join(resumedDir, f)), f);
});

test('a non-finite loss stops the run naming the step, without updating the weights', async () => {
  const bad = samples.map((s, i) => (i === 2 ? { ...s, image: { ...s.image, data: s.image.data.map((v, k) => (k === 5 ? NaN : v)) } } : s));
  const dir = tmp();
  const model = new RetinaNet(cfg, 4);
  const r = await new Trainer(model, memorySource(bad, SYNTHETIC_CLASSES), options(dir, { flip: false, checkpointEvery: 1 })).run();
  assert.equal(r.stopped, 'nan');
  assert.equal(r.iterations, 1);
  assert.match(r.message!, /loss became NaN at step 1/);
  assert.match(r.message!, /last good checkpoint \(step 1\)/);
  const state = JSON.parse(readFileSync(path.join(dir, 'checkpoint', 'state.json'), 'utf8')) as { iteration: number };
  assert.equal(state.iteration, 1);
  for (const v of model.store.values.values()) assert.ok(v.every(Number.isFinite));
});

test('paperRecipe scales the paper rate to the batch and keeps given fields', () => {
  const r = paperRecipe({ batch: 8 });
  assert.equal(r.batchSize, 8);
  assert.equal(r.lr, 0.01 * (8 / 16));
  assert.deepEqual([r.momentum, r.weightDecay, r.flip, r.padTo], [0.9, 1e-4, true, 128]);
  assert.equal(paperRecipe({ batch: 8, lr: 0.1, clipGradNorm: undefined }).lr, 0.1);
  assert.equal(paperRecipe().batchSize, 2);
});

test('a library run without outDir writes nothing; hooks see every step and an AbortSignal stops it after the step', async () => {
  const cwdBefore = readdirSync('.').sort();
  const seen: number[] = [];
  const controller = new AbortController();
  const hook: TrainHook = {
    afterStep(t, rec) {
      seen.push(rec.iter);
      if (t.iteration === 2) controller.abort();
    },
  };
  const model = new RetinaNet(cfg, 6);
  const trainer = new Trainer(model, source, { iters: 5, warmupIters: 1, padTo: 32, threads: 1, prefetchWorker: false, hooks: [hook] });
  assert.equal(trainer.opts.batchSize, 2);
  assert.equal(trainer.opts.lr, 0.01 * (2 / 16));
  const r = await trainer.run({ signal: controller.signal });
  assert.equal(r.stopped, 'interrupted');
  assert.equal(r.iterations, 2);
  assert.deepEqual(seen, [0, 1]);
  assert.equal(r.lastCheckpoint, undefined);
  assert.deepEqual(readdirSync('.').sort(), cwdBefore);
});

test('validation matches classes by name: a val set that lacks a class or orders them differently is scored right', () => {
  const val = memorySource(samples.slice(0, 2), ['square', 'circle', 'cross']);
  const hook = new ValidationHook(val, 10);
  const trainer = new Trainer(new RetinaNet(cfg, 1), source, { iters: 1 });
  hook.beforeTrain(trainer);
  // Model labels follow the training set: circle, square, triangle, cross. The val set's ids are 1..3 for its own order.
  assert.deepEqual(SYNTHETIC_CLASSES, ['circle', 'square', 'triangle', 'cross']);
  assert.deepEqual(hook.categoryIds, [2, 1, -1, 3]);
  assert.throws(() => new ValidationHook(memorySource(samples.slice(0, 1), ['tree']), 10).beforeTrain(trainer), /share no name/);
});
