/**
 * Issue 14, "real data never crashes a run, no work is ever lost": unreadable images in a
 * training set, errors that end a run, and a checkpoint write that fails.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InputError } from '../../src/core/errors.js';
import { loadDataset } from '../../src/data/datasets/index.js';
import { datasetSource } from '../../src/data/source.js';
import { writeSyntheticCoco } from '../../src/data/synthetic.js';
import { RetinaNet } from '../../src/model/model.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { demoConfig } from '../../src/train/demo_config.js';
import { Trainer, type TrainHook, type TrainOptions } from '../../src/train/trainer.js';

const cfg = demoConfig(64);
let dir = '';
let data = '';

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'rn-reliability-'));
  data = path.join(dir, 'data');
  await writeSyntheticCoco(data, { count: 6, imageSize: 64, seed: 2 });
  // Image 3 is truncated, as a half-downloaded JPEG would be.
  const victim = path.join(data, 'train', '000003.png');
  const bytes = readFileSync(victim);
  writeFileSync(victim, bytes.subarray(0, Math.floor(bytes.length * 0.5)));
});

after(() => rmSync(dir, { recursive: true, force: true }));

async function source(): Promise<ReturnType<typeof datasetSource>> {
  const { dataset } = await loadDataset(data, { split: 'train' });
  return datasetSource(dataset);
}

function options(over: Partial<TrainOptions> = {}): TrainOptions {
  return { iters: 4, batchSize: 2, padTo: 32, threads: 1, warmupIters: 1, seed: 1, ...over };
}

test('an unreadable image in a batch is skipped with a warning naming it, replaced by the next one, and counted in the log', async () => {
  const warnings: string[] = [];
  const out = path.join(dir, 'skip-run');
  const hook: TrainHook = { onWarning: (_t, m) => void warnings.push(m) };
  const r = await new Trainer(new RetinaNet(cfg, 0), await source(), options({ outDir: out, hooks: [hook] })).run();
  assert.equal(r.stopped, 'done');
  assert.equal(r.iterations, 4);
  assert.ok(warnings.some((w) => /000003\.png/.test(w) && /skipped/.test(w)), warnings.join('\n'));
  const log = readFileSync(path.join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { iter: number; skipped?: number });
  // Image 3 is in the second batch of the first epoch (images 2, 3).
  assert.equal(log.find((rec) => rec.iter === 1)?.skipped, 1);
});

test('with strict, an unreadable image is an error naming it', async () => {
  await assert.rejects(new Trainer(new RetinaNet(cfg, 0), await source(), options({ strict: true, prefetchWorker: true })).run(), (e: unknown) => e instanceof InputError && /000003\.png/.test(e.message));
});

test('an error that ends a run leaves a checkpoint of the last completed step', async () => {
  const out = path.join(dir, 'fail-run');
  const boom: TrainHook = {
    afterStep(t) {
      if (t.iteration === 3) throw new Error('simulated failure');
    },
  };
  const trainer = new Trainer(new RetinaNet(cfg, 0), await source(), options({ outDir: out, iters: 6, checkpointEvery: 100, hooks: [boom] }));
  await assert.rejects(trainer.run(), /simulated failure/);
  assert.deepEqual(trainer.lastCheckpoint, { iteration: 3, dir: path.join(out, 'checkpoint') });
  const { state } = await loadCheckpoint(path.join(out, 'checkpoint'));
  assert.equal(state.iteration, 3);
});

test('a checkpoint write that fails (a full disk) leaves the previous checkpoint intact and loadable', async () => {
  const out = path.join(dir, 'disk-full');
  // After step 2's checkpoint, the temporary file of step 4's weights cannot be written: a
  // folder stands in its place, as a full disk would fail the write.
  const block: TrainHook = {
    afterStep(t) {
      if (t.iteration === 3) mkdirSync(path.join(out, 'checkpoint', `weights-0000004.safetensors.tmp-${process.pid}`), { recursive: true });
    },
  };
  const model = new RetinaNet(cfg, 0);
  const trainer = new Trainer(model, await source(), options({ outDir: out, checkpointEvery: 2, hooks: [block] }));
  await assert.rejects(trainer.run());
  const { state, params } = await loadCheckpoint(path.join(out, 'checkpoint'));
  assert.equal(state.iteration, 2);
  assert.equal(params.size, model.store.values.size);
  for (const v of params.values()) assert.ok(v.every(Number.isFinite));
});
