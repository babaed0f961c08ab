/**
 * BCCD from scratch, side by side with torchvision for the same wall-clock time
 * (docs/results.md). `retinanet bench bccd [--data DIR] [--tv-iters N] [--seed S] [--lr X]
 * [--threads N] [--out DIR]`.
 *
 * 1. torchvision (bench/bccd_torchvision.py) trains `--tv-iters` iterations; its training time T
 *    sets the budget.
 * 2. Our run: `retinanet train --time-budget T` with the same recipe (bench/bccd_config.json;
 *    lr; flips; clipping at 5): its length, and with it the warmup (length / 10) and the x0.1
 *    steps (2/3 and 8/9), are fitted to our measured step time as it trains, and it stops at T
 *    (within half a step), its graph compile included. (A step-time probe before the run, the
 *    first way this was done, underestimated the long run's step time by 6%.)
 * 3. Both are scored on `test.txt` by the same COCO evaluator on the same ground truth.
 *
 * Every step runs as a child process exactly as a user would run it; progress goes to stderr,
 * the table to stdout and `summary.json` in the output folder.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { InputError } from '../src/core/errors.js';
import { numberFlag } from '../src/core/flags.js';
import { TORCH_PYTHON, lastJson, run, runIfScript } from './detection_common.js';
import { main as writeGroundTruth } from './bccd_gt.js';
import { parseStepLog } from '../src/train/log.js';
import type { CocoStatsJson } from '../src/eval/summary.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const cli = path.join(repo, 'dist/src/cli/main.js');

interface Options {
  data: string;
  tvIters: number;
  seed: number;
  lr: number;
  threads: number;
  out: string;
}

function parse(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: { data: { type: 'string' }, 'tv-iters': { type: 'string' }, seed: { type: 'string' }, lr: { type: 'string' }, threads: { type: 'string' }, out: { type: 'string' } },
  });
  const seed = numberFlag(values, 'seed', { integer: true, min: 0 }) ?? 0;
  return {
    data: values.data ?? path.resolve(repo, '../shared/data/bccd'),
    tvIters: numberFlag(values, 'tv-iters', { integer: true, min: 1 }) ?? 270,
    seed,
    lr: numberFlag(values, 'lr', { min: 0 }) ?? 0.01,
    threads: numberFlag(values, 'threads', { integer: true, min: 1 }) ?? 2,
    out: values.out ?? path.join(repo, `runs/bccd-compare-seed${seed}`),
  };
}

interface StepLog {
  iter: number;
  time: number;
  loss_cls: number;
  loss_box: number;
}

function readLog(file: string): StepLog[] {
  return parseStepLog(readFileSync(file, 'utf8'));
}

/** Median seconds per step after the first two (graph compile and warm-up). */
function stepSeconds(log: readonly { time: number }[]): number {
  const d = log.slice(2).map((r, i) => r.time - log[i + 1]!.time);
  return [...d].sort((a, b) => a - b)[d.length >> 1]!;
}

/** Mean of the last 20 steps' losses. */
function tailLoss(log: readonly StepLog[]): { cls: number; box: number } {
  const t = log.slice(-20);
  return { cls: t.reduce((a, r) => a + r.loss_cls, 0) / t.length, box: t.reduce((a, r) => a + r.loss_box, 0) / t.length };
}

/** `eval --json --per-class` output: the per-class maps are always there. */
type Stats = Required<CocoStatsJson>;

export async function main(argv: string[]): Promise<void> {
  const o = parse(argv);
  if (!existsSync(path.join(o.data, 'ImageSets/Main/train.txt'))) throw new InputError(`no BCCD dataset at ${o.data} (expected ImageSets/Main/train.txt); pass --data DIR`);
  const probe = spawnSync(TORCH_PYTHON, ['-c', 'import torch, torchvision'], { encoding: 'utf8' });
  if (probe.status !== 0) throw new InputError(`${TORCH_PYTHON} cannot import torch/torchvision (apt-get install python3-torchvision, or set TORCH_PYTHON)`);
  mkdirSync(o.out, { recursive: true });
  const gtFile = path.join(o.out, 'test_gt.json');
  await writeGroundTruth([o.data, 'test', gtFile]);
  const recipe = ['--config', path.join(repo, 'bench/bccd_config.json'), '--batch', '2', '--lr', String(o.lr), '--clip-grad', '5', '--size-divisible', '32', '--seed', String(o.seed), '--threads', String(o.threads)];

  console.error(`[1/3] torchvision: ${o.tvIters} iterations (seed ${o.seed}, ${o.threads} threads)`);
  const tvDir = path.join(o.out, 'torchvision');
  const tv = lastJson<{ iters: number; train_seconds: number }>(run(TORCH_PYTHON, [path.join(repo, 'bench/bccd_torchvision.py'), o.data, gtFile, tvDir, String(o.tvIters), String(o.threads), String(o.lr), String(o.seed)]));
  const tvLog = JSON.parse(readFileSync(path.join(tvDir, 'log.json'), 'utf8')) as StepLog[];

  console.error(`[2/3] retinanet-ts: the ${tv.train_seconds.toFixed(0)} s torchvision trained`);
  const oursDir = path.join(o.out, 'retinanet-ts');
  // The cap only guards against a runaway length; the budget ends the run.
  run(process.execPath, [cli, 'train', '--data', o.data, '--split', 'train', ...recipe, '--time-budget', tv.train_seconds.toFixed(1), '--iters', String(3 * o.tvIters), '--out', oursDir]);
  const oursLog = readLog(path.join(oursDir, 'log.jsonl'));

  console.error(`[3/3] COCO evaluation on test.txt`);
  const oursStats = lastJson<Stats>(run(process.execPath, [cli, 'eval', '--weights', path.join(oursDir, 'model.safetensors'), '--data', o.data, '--split', 'test', '--threads', String(o.threads), '--json', '--per-class']));
  const tvStats = lastJson<Stats>(run(process.execPath, [cli, 'eval', '--gt', gtFile, '--dets', path.join(tvDir, 'detections.json'), '--json', '--per-class']));

  const rows = [
    { name: 'retinanet-ts', iters: oursLog.length, seconds: oursLog[oursLog.length - 1]!.time, step: stepSeconds(oursLog), loss: tailLoss(oursLog), stats: oursStats },
    { name: 'torchvision', iters: tv.iters, seconds: tv.train_seconds, step: stepSeconds(tvLog), loss: tailLoss(tvLog), stats: tvStats },
  ];
  const classes = Object.keys(tvStats.perClass);
  const f = (x: number): string => x.toFixed(3);
  console.log(`BCCD from scratch, same recipe, same wall-clock budget (seed ${o.seed}, ${o.threads} threads); test.txt`);
  console.log(`| | iters | train s | s / step | AP | AP50 | AP75 | APs | APm | APl | AR100 | ${classes.map((c) => `AP ${c}`).join(' | ')} | last-20 loss cls / box |`);
  console.log(`|---|${'---|'.repeat(11 + classes.length)}`);
  for (const r of rows) {
    const s = r.stats;
    console.log(`| ${r.name} | ${r.iters} | ${r.seconds.toFixed(0)} | ${r.step.toFixed(2)} | ${[s.AP, s.AP50, s.AP75, s.APs, s.APm, s.APl, s.AR100].map(f).join(' | ')} | ${classes.map((c) => f(s.perClass[c]!)).join(' | ')} | ${f(r.loss.cls)} / ${f(r.loss.box)} |`);
  }
  console.log(`\nPer class, COCO AP / AP50 on test.txt`);
  console.log(`| class | ${rows.map((r) => `${r.name} AP | ${r.name} AP50`).join(' | ')} |`);
  console.log(`|---|${'---|'.repeat(2 * rows.length)}`);
  for (const c of classes) console.log(`| ${c} | ${rows.map((r) => `${f(r.stats.perClass[c]!)} | ${f(r.stats.perClassAP50[c]!)}`).join(' | ')} |`);
  console.log(`AP difference (ours - torchvision): ${(oursStats.AP - tvStats.AP).toFixed(3)}; step time ratio ${(rows[0]!.step / rows[1]!.step).toFixed(2)}x`);
  writeFileSync(path.join(o.out, 'summary.json'), JSON.stringify({ seed: o.seed, threads: o.threads, lr: o.lr, rows }, null, 2));
}

runIfScript(import.meta.url, main);
