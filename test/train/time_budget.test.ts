import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TimeBudget } from '../../src/train/time_budget.js';
import { durationFlag } from '../../src/cli/common.js';
import { generateSynthetic, SYNTHETIC_CLASSES } from '../../src/data/synthetic.js';
import { RetinaNet } from '../../src/model/model.js';
import { demoConfig } from '../../src/train/demo_config.js';
import { memorySource } from '../../src/data/source.js';
import { Trainer } from '../../src/train/trainer.js';
import { parseStepLog } from '../../src/train/log.js';

test('the step time leaves out the first (compiling) step and follows recent steps', () => {
  const b = new TimeBudget(100, Infinity, 4);
  assert.equal(b.stepSeconds(), undefined);
  b.record(30);
  assert.equal(b.stepSeconds(), 30, 'only the first step: it is all there is');
  for (const d of [2, 2.2, 1.8]) b.record(d);
  assert.equal(b.stepSeconds(), 2);
  for (const d of [3, 3, 3, 3]) b.record(d);
  assert.equal(b.stepSeconds(), 3, 'the window holds the last 4 steps');
});

test('the fitted length is what was done plus the time left over the step time, within [done, cap]', () => {
  const b = new TimeBudget(100, 60);
  assert.equal(b.fit(0, 0), 1, 'before any step: one step');
  b.record(10);
  assert.equal(b.fit(1, 90), 2, 'only the compiling step timed: one more step while time is left');
  assert.equal(b.fit(1, 100), 1, 'only the compiling step timed, no time left: stop');
  b.record(2);
  assert.equal(b.fit(2, 12), 2 + 44);
  assert.equal(b.fit(2, 12.9), 2 + 44, '43.55 steps left rounds to 44');
  assert.equal(b.fit(40, 99.2), 40, 'less than half a step left: stop now');
  assert.equal(b.fit(40, 98.8), 41, 'more than half a step left: one more');
  assert.equal(b.fit(40, 150), 40, 'past the budget: never shorter than what ran');
  assert.equal(b.fit(10, 20), 10 + 40);
  assert.equal(new TimeBudget(1000, 60).fit(0, 0), 1);
  const capped = new TimeBudget(1000, 60);
  capped.record(1);
  capped.record(1);
  assert.equal(capped.fit(2, 2), 60, 'the cap wins over the time left');
  assert.throws(() => new TimeBudget(0), /time budget must be > 0/);
});

test('durations: seconds, minutes and hours', () => {
  assert.equal(durationFlag({ t: '900' }, 't'), 900);
  assert.equal(durationFlag({ t: '90s' }, 't'), 90);
  assert.equal(durationFlag({ t: '15m' }, 't'), 900);
  assert.equal(durationFlag({ t: '2min' }, 't'), 120);
  assert.equal(durationFlag({ t: '1.5h' }, 't'), 5400);
  assert.equal(durationFlag({}, 't'), undefined);
  for (const bad of ['', 'm', '-5', '0', '15 minutes', '1e3']) assert.throws(() => durationFlag({ t: bad }, 't'), /--t/, bad);
});

test('a time-budget run stops at the budget, with its schedule fitted to the length it reached', async () => {
  const SIZE = 64;
  const source = memorySource(generateSynthetic({ count: 6, seed: 5, imageSize: SIZE, minObjectSize: 8, maxObjectSize: 40 }), SYNTHETIC_CLASSES);
  // On a busy machine a 6 s budget can leave only a few steps after the compiling first one
  // (5 s of it once, at load 13 on 2 cores): then the run is repeated with more time, as the
  // schedule assertions below need a dozen steps.
  let budget = 0;
  let outDir = '';
  let r: Awaited<ReturnType<Trainer['run']>> | undefined;
  let log: ReturnType<typeof parseStepLog> = [];
  for (budget of [6, 24]) {
    outDir = mkdtempSync(path.join(tmpdir(), 'retinanet-budget-test-'));
    r = await new Trainer(new RetinaNet(demoConfig(SIZE), 1), source, {
      iters: 100_000,
      timeBudget: budget,
      batchSize: 2,
      lr: 0.01,
      momentum: 0.9,
      weightDecay: 1e-4,
      flip: true,
      padTo: 32,
      seed: 3,
      threads: 1,
      outDir,
      checkpointEvery: 1_000_000,
      valEvery: 1_000_000,
    }).run();
    assert.equal(r.stopped, 'done');
    log = parseStepLog(readFileSync(path.join(outDir, 'log.jsonl'), 'utf8'));
    assert.equal(log.length, r.iterations);
    assert.ok(r.iterations < 100_000, 'stopped by time, not by the cap');
    const steps = log.slice(1).map((rec, i) => rec.time - log[i]!.time);
    const slowest = Math.max(log[0]!.time, ...steps);
    const end = log[log.length - 1]!.time;
    // Stopping rounds to the nearest step: the run ends within a step of the budget.
    assert.ok(end <= budget + slowest, `ended at ${end} s, budget ${budget} s, slowest step ${slowest} s`);
    if (log[0]!.time < budget / 2) assert.ok(end >= budget - slowest, `ended at ${end} s, budget ${budget} s`);
    if (r.iterations >= 12) break;
  }
  r = r!;
  // Warmup from 0.001x, then x0.1 drops that are never undone by a later estimate of the length.
  const lrs = log.map((rec) => rec.lr);
  assert.ok(lrs[0]! <= 0.01 * 0.001 + 1e-12, 'step 0 at the warmup start');
  assert.ok(lrs[1]! < 0.01 / 2, 'step 1 still in the warmup (not fitted to the compiling first step)');
  const firstDrop = lrs.findIndex((lr, i) => i > 0 && lr < lrs[i - 1]! * 0.5);
  // ~50 steps of ~0.1 s in 6 s on a quiet machine.
  assert.ok(r.iterations >= 12, `only ${r.iterations} steps in ${budget} s (first step ${log[0]!.time} s)`);
  assert.ok(firstDrop > 0, `the schedule reached its first x0.1 point (rates ${lrs.join(', ')})`);
  assert.ok(firstDrop >= r.iterations / 2, `first drop at ${firstDrop} of ${r.iterations}: at about 2/3 of the run`);
  for (let i = firstDrop + 1; i < lrs.length; i++) assert.ok(lrs[i]! <= lrs[i - 1]!, `rate rose again at step ${i}`);
  assert.ok(lrs[lrs.length - 1]! < 0.01 * 0.1 + 1e-12);
  // The checkpoint keeps the fitted plan, so a resumed run keeps the frozen schedule.
  const state = JSON.parse(readFileSync(path.join(outDir, 'checkpoint', 'state.json'), 'utf8')) as { plan: { planned: number; scheduleFrozen: boolean } };
  assert.deepEqual([state.plan.planned, state.plan.scheduleFrozen], [r.iterations, true]);
});
