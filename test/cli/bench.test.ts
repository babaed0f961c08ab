import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BENCHMARKS } from '../../src/cli/bench.js';
import { STACK_LINE, cli, tempDir } from './helpers.js';

// Only the listing and argument errors: running a benchmark takes seconds to minutes of CPU.
test('bench without a name lists every benchmark', () => {
  const r = cli('bench');
  assert.equal(r.status, 0, r.stderr);
  const names = ['engine', 'eval', 'nms', 'postprocess', 'targets', 'detect', 'ablation', 'bccd', 'scratch', 'train-step', 'browser', 'export', 'queue', 'paper'];
  for (const name of names) assert.match(r.stdout, new RegExp(`^  ${name} +\\S`, 'm'), name);
  assert.deepEqual(BENCHMARKS.map((b) => b.name), names);
  const help = cli('bench', '--help');
  assert.equal(help.status, 0);
  assert.match(help.stdout, /Usage: retinanet bench <name>/);
  assert.match(cli('--help').stdout, /^ {2}bench +run a benchmark/m);
});

test('bench argument errors exit 2 before anything runs', () => {
  const cases: [string[], RegExp][] = [
    [['nope'], /unknown benchmark 'nope'; available: engine, eval, nms, postprocess, targets, detect, ablation, bccd, scratch, train-step, browser, export, queue, paper/],
    [['--json'], /give the benchmark's name before its options/],
    [['engine', '--threads', '0'], /--threads must be >= 1, got 0/],
    [['engine', '--threads', 'many'], /--threads must be an integer, got 'many'/],
    [['engine', '--reps', '0'], /--reps must be >= 1/],
    [['engine', 'extra'], /Unexpected argument 'extra'/],
    [['nms', '--json'], /--json is supported by 'bench engine' and 'bench paper' only/],
    [['eval', '--threads', '2'], /'bench eval' takes no --threads/],
    [['targets', '--threads', 'x'], /--threads must be an integer, got 'x'/],
    [['postprocess', '--bogus'], /Unknown option '--bogus'/],
    [['queue', '--workers', '0'], /--workers must be >= 1, got 0/],
    [['queue', '--size', '10'], /--size must be HxW/],
    [['bccd', '--tv-iters', '0'], /--tv-iters must be >= 1, got 0/],
    [['bccd', '--data', '/nonexistent-bccd'], /no BCCD dataset at \/nonexistent-bccd/],
    [['scratch', '--data', 'voc'], /--data must be bccd or raccoon \(or give --train and --test\), got 'voc'/],
    [['scratch', '--runs', 'today,fast'], /--runs takes a comma-separated subset of today,auto,torchvision, got 'today,fast'/],
    [['scratch', '--train', 'a.csv'], /give both --train and --test/],
    [['scratch', '--merge', '/nonexistent-run'], /--merge: no summary\.json in \/nonexistent-run/],
  ];
  for (const [args, message] of cases) {
    const r = cli('bench', ...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, STACK_LINE);
  }
});

test('bench scratch --merge: one table from arms run separately (bench/scratch_device.sh), and only of one comparison', () => {
  const dir = tempDir('merge');
  try {
    const stats = (ap: number): Record<string, unknown> => ({
      ...Object.fromEntries(['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm', 'ARl'].map((k) => [k, ap])),
      perClass: { raccoon: ap },
      perClassAP50: { raccoon: 2 * ap },
    });
    const summary = (name: string, ap: number, budget = 360): unknown => ({
      data: 'raccoon', train: { path: 't.csv' }, test: { path: 'v.csv' }, testImages: 40, budget, seed: 0, threads: 2,
      rows: [{ name, what: `${name} model`, iters: 100, seconds: 359, step: 3.5, loss: { cls: 0.5, box: 0.4 }, stats: stats(ap) }],
    });
    const write = (sub: string, s: unknown): string => {
      mkdirSync(path.join(dir, sub), { recursive: true });
      writeFileSync(path.join(dir, sub, 'summary.json'), JSON.stringify(s));
      return path.join(dir, sub);
    };
    const a = write('raccoon-today', summary('today', 0.1));
    const b = write('raccoon-auto', summary('auto', 0.25));
    const r = cli('bench', 'scratch', '--merge', `${a},${b}`, '--out', path.join(dir, 'raccoon'));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^raccoon from scratch, 6\.0 min per run \(2 threads, seed 0\); COCO AP on 40 held-out images$/m);
    assert.match(r.stdout, /^\| today \| today model \| 100 \| 359 \| 3\.50 \| 0\.100 \| 0\.100 \|/m);
    assert.match(r.stdout, /^\| auto \| auto model \| 100 \| 359 \| 3\.50 \| 0\.250 \|/m);
    assert.match(r.stdout, /^\| raccoon \| 0\.100 \/ 0\.200 \| 0\.250 \/ 0\.500 \|$/m);
    const merged = JSON.parse(readFileSync(path.join(dir, 'raccoon', 'summary.json'), 'utf8')) as { rows: { name: string }[] };
    assert.deepEqual(merged.rows.map((row) => row.name), ['today', 'auto']);

    const c = write('raccoon-tv', summary('torchvision', 0.2, 900));
    const bad = cli('bench', 'scratch', '--merge', `${a},${c}`);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--merge: raccoon \(900 s, seed 0, 2 threads\) and raccoon \(360 s, seed 0, 2 threads\) are not runs of one comparison/);
    assert.doesNotMatch(bad.stderr, STACK_LINE);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
