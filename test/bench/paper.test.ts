import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expandFilter } from '../../bench/paper.js';
import { buildReport, chooseFixedLr, jsonRows, markdownReport } from '../../bench/paper_report.js';
import { BASELINE_ROW, FIGURE4_ROW, makePlan, TABLES } from '../../bench/paper_spec.js';
import type { RunResult } from '../../bench/paper_worker.js';
import { lossCdf } from '../../bench/paper_worker.js';
import { STACK_LINE, cli } from '../cli/helpers.js';

function fake(row: string, lr: number, seed: number, val: number, testAP: number, stopped: RunResult['stopped'] = 'done'): RunResult {
  const s = (ap: number) => ({ AP: ap, AP50: ap + 0.2, AP75: ap, APs: ap / 2, APm: ap, APl: -1 });
  return {
    key: `${row}@lr${lr}@s${seed}`, row, lr, seed, stopped, iterations: 10, wall_s: 5, train_s: 4, threads: 1, lossFirst: 2, lossLast: 1,
    ...(stopped === 'done' ? { val: s(val), test: s(testAP) } : {}),
  };
}

test('report: one rate tuned on the baseline val AP (not test), per-row rates, seed spread, diverged runs', () => {
  const plan = makePlan({ preset: 'mini', rows: [BASELINE_ROW, 'fl-g2-a0.25'] });
  const runs = [
    fake(BASELINE_ROW, 0.01, 0, 0.30, 0.50), // best test AP, but not the best val AP
    fake(BASELINE_ROW, 0.02, 0, 0.40, 0.20),
    fake('fl-g2-a0.25', 0.01, 0, 0.5, 0.40),
    fake('fl-g2-a0.25', 0.01, 1, 0.5, 0.30),
    fake('fl-g2-a0.25', 0.02, 0, 0, 0, 'nan'),
    fake('fl-g2-a0.25', 0.02, 1, 0.2, 0.10),
  ];
  assert.equal(chooseFixedLr(runs), 0.02);
  const r = buildReport(plan, runs, 0.02);
  const fl = r.summaries.find((s) => s.row === 'fl-g2-a0.25')!;
  assert.equal(fl.fixed!.lr, 0.02);
  assert.equal(fl.fixed!.finished, 1);
  assert.ok(Math.abs(fl.fixed!.mean!.AP - 0.1) < 1e-12);
  assert.equal(fl.tuned!.lr, 0.01);
  assert.ok(Math.abs(fl.tuned!.mean!.AP - 0.35) < 1e-12);
  assert.ok(Math.abs(fl.tuned!.sdAP! - Math.SQRT1_2 * 0.1) < 1e-9);
  const rows = jsonRows(r);
  assert.equal(rows.length, 6);
  const nan = rows.find((x) => (x as { stopped: string }).stopped === 'nan') as { AP: number | null };
  assert.equal(nan.AP, null);
  const md = markdownReport(r, plan);
  assert.match(md, /\| FL, gamma 2, alpha \.25 \| 34\.0 \| 52\.5 \| 36\.5 \| 10\.0 \(1 of 2 diverged\) \|/);
  assert.match(md, /\| 35\.0 ± 7\.1 \| 0\.01 \|/);
});

test('lossCdf: cumulative share of the sorted losses; --rows expands tables and fig4', () => {
  const c = lossCdf(Float64Array.from([4, 1, 3, 2]), 5);
  assert.deepEqual(c.map((x) => +x.toFixed(6)), [0, 0.1, 0.3, 0.6, 1]);
  assert.deepEqual(expandFilter('fig4'), [FIGURE4_ROW]);
  assert.deepEqual(expandFilter('1b').sort(), TABLES.find((t) => t.id === '1b')!.rows.map((r) => r.row).sort());
  assert.throws(() => expandFilter('nope'), /unknown row 'nope'/);
});

test('bench paper --preset smoke: runs in child processes, writes the report, --json rows, reuses runs', () => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'paper-smoke-'));
  try {
    const r = cli('bench', 'paper', '--preset', 'smoke', '--jobs', '2', '--threads', '1', '--out', out, '--json');
    assert.equal(r.status, 0, r.stderr);
    const { rows } = JSON.parse(r.stdout) as { rows: Record<string, unknown>[] };
    // The baseline at both rates of the grid, then the four other smoke rows at the chosen one.
    assert.equal(rows.length, 6);
    for (const row of rows) {
      for (const k of ['loss', 'gamma', 'alpha', 'AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'lr', 'wall_s', 'seed']) assert.ok(k in row, `${k} in ${JSON.stringify(row)}`);
      if (row.stopped === 'done') assert.ok((row.AP as number) >= 0 && (row.AP as number) <= 1);
    }
    assert.ok(rows.some((x) => x.loss === 'ohem 1:3' && (x.ohemPerImage as { negatives: number }).negatives > 0));
    const sub = readdirSync(out).find((f) => f.startsWith('smoke-'));
    assert.ok(sub, `a smoke-* folder in ${out}`);
    const dir = path.join(out, sub);
    const md = readFileSync(path.join(dir, 'report.md'), 'utf8');
    assert.match(md, /## Table 1b/);
    assert.match(md, /bg:fg pooled/);
    assert.match(md, /## Figure 4/);
    const svg = readFileSync(path.join(dir, 'figure4.svg'), 'utf8');
    assert.equal(svg.match(/<polyline/g)?.length, 8, 'four gammas x two panels');
    const data = readdirSync(out).find((f) => f.startsWith('data-'));
    assert.ok(data && existsSync(path.join(out, data, 'annotations', 'instances_test.json')));
    // A second run finds every result on disk and trains nothing.
    const again = cli('bench', 'paper', '--preset', 'smoke', '--out', out, '--json', '--threads', '1');
    assert.equal(again.status, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /\[\d+\/\d+\]/);
    assert.deepEqual(JSON.parse(again.stdout).rows, rows);
    // A --rows invocation prints its own runs but keeps every finished row in the report.
    const sub1 = cli('bench', 'paper', '--preset', 'smoke', '--out', out, '--json', '--threads', '1', '--rows', 'fl-g2-a0.25');
    assert.equal(sub1.status, 0, sub1.stderr);
    const subRows = JSON.parse(sub1.stdout).rows as { row: string }[];
    assert.deepEqual([...new Set(subRows.map((x) => x.row))].sort(), [BASELINE_ROW, 'fl-g2-a0.25'].sort());
    assert.equal(readFileSync(path.join(dir, 'report.md'), 'utf8'), md);
    assert.match(sub1.stderr, /report \(6 runs: 3 of this invocation, 3 found from earlier ones\)/);
    const only = cli('bench', 'paper', '--preset', 'smoke', '--out', out, '--report-only');
    assert.equal(only.status, 0, only.stderr);
    assert.match(only.stderr, /report from 6 of 6 planned runs/);
    const none = cli('bench', 'paper', '--preset', 'smoke', '--out', path.join(out, 'empty'), '--report-only');
    assert.equal(none.status, 2);
    assert.match(none.stderr, /no finished run of this plan/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('bench paper usage errors: one line, exit 2, nothing run', () => {
  for (const [args, msg] of [
    [['--preset', 'huge'], /unknown preset 'huge'; presets: smoke, mini, full/],
    [['--rows', 'nope'], /unknown row 'nope'/],
    [['--jobs', '0'], /--jobs must be an integer >= 1/],
    [['--lr', '0.1', '--lrs', '0.1,0.2'], /give --lr or --lrs, not both/],
  ] as const) {
    const r = cli('bench', 'paper', ...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, msg);
    assert.doesNotMatch(r.stderr, STACK_LINE);
  }
  const help = cli('bench', 'paper', '--help');
  assert.equal(help.status, 0);
  assert.match(help.stdout, /Usage: retinanet bench paper/);
});
