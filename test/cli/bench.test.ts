import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BENCHMARKS } from '../../src/cli/bench.js';
import { STACK_LINE, cli } from './helpers.js';

// Only the listing and argument errors: running a benchmark takes seconds to minutes of CPU.
test('bench without a name lists every benchmark', () => {
  const r = cli('bench');
  assert.equal(r.status, 0, r.stderr);
  const names = ['engine', 'eval', 'nms', 'postprocess', 'targets', 'detect', 'ablation', 'bccd', 'train-step', 'export', 'paper'];
  for (const name of names) assert.match(r.stdout, new RegExp(`^  ${name} +\\S`, 'm'), name);
  assert.deepEqual(BENCHMARKS.map((b) => b.name), names);
  const help = cli('bench', '--help');
  assert.equal(help.status, 0);
  assert.match(help.stdout, /Usage: retinanet bench <name>/);
  assert.match(cli('--help').stdout, /^ {2}bench +run a benchmark/m);
});

test('bench argument errors exit 2 before anything runs', () => {
  const cases: [string[], RegExp][] = [
    [['nope'], /unknown benchmark 'nope'; available: engine, eval, nms, postprocess, targets, detect, ablation, bccd, train-step, export, paper/],
    [['--json'], /give the benchmark's name before its options/],
    [['engine', '--threads', '0'], /--threads must be >= 1, got 0/],
    [['engine', '--threads', 'many'], /--threads must be an integer, got 'many'/],
    [['engine', '--reps', '0'], /--reps must be >= 1/],
    [['engine', 'extra'], /Unexpected argument 'extra'/],
    [['nms', '--json'], /--json is supported by 'bench engine' and 'bench paper' only/],
    [['eval', '--threads', '2'], /'bench eval' takes no --threads/],
    [['targets', '--threads', 'x'], /--threads must be an integer, got 'x'/],
    [['postprocess', '--bogus'], /Unknown option '--bogus'/],
    [['bccd', '--tv-iters', '0'], /--tv-iters must be >= 1, got 0/],
    [['bccd', '--data', '/nonexistent-bccd'], /no BCCD dataset at \/nonexistent-bccd/],
  ];
  for (const [args, message] of cases) {
    const r = cli('bench', ...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, STACK_LINE);
  }
});
