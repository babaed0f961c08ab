/**
 * The short fuzz run of `npm test`: every corpus file (seeds and past crash inputs) as it is, then
 * a fixed number of mutated cases per parser from a fixed seed, in one worker (npm test already
 * runs two test files at a time; see harness.ts for the contract, docs/reliability.md for the
 * long run and what it found).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBug, runJob, TARGET_NAMES, type FuzzReport } from './harness.js';

/** Mutated cases per target: about 10 s on an idle core, twice that beside the rest of npm test. */
const RUNS = 60;
const SEED = 20240611;

const ALL = [...TARGET_NAMES];

function check(r: FuzzReport, targets: string[]): void {
  assert.deepEqual([...r.targets].sort(), [...ALL].sort(), 'every fuzz target is listed here');
  for (const t of targets) assert.ok(r.stats.get(t)?.executions, `${t} ran`);
  assert.equal(r.bugs.length, 0, `contract broken:\n${r.bugs.map(formatBug).join('\n\n')}`);
}

test('fuzz: the corpus (seeds and past crash inputs) keeps the contract, then mutated cases (fixed seed) do', async (t) => {
  const started = Date.now();
  const r = await runJob({ mode: 'property', targets: ALL, runs: RUNS, seed: SEED });
  check(r, ALL);
  const total = [...r.stats.values()].reduce((a, s) => a + s.executions, 0);
  assert.ok(total >= ALL.length * RUNS, `${total} executions`);
  t.diagnostic(`${total} executions of ${ALL.length} parsers in ${((Date.now() - started) / 1000).toFixed(1)} s`);
});

test('fuzz: the harness catches what it is meant to (bounds shrunk to nothing, the seeds break them)', async () => {
  const alloc = await runJob({ mode: 'replay', targets: ['safetensors'], scale: { alloc: 1e-9 } });
  assert.ok(alloc.bugs.some((b) => b.kind === 'allocation' && /new (Uint8Array|Float32Array|ArrayBuffer)/.test(b.message)), alloc.bugs.map(formatBug).join('\n'));
  const slow = await runJob({ mode: 'replay', targets: ['config'], scale: { time: 0 } });
  assert.ok(slow.bugs.length > 0 && slow.bugs.every((b) => b.kind === 'slow'), slow.bugs.map(formatBug).join('\n'));
});
