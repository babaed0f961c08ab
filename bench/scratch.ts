/**
 * From scratch at equal wall-clock time (issue 13, part 3): `retinanet bench scratch
 * [--data bccd|raccoon] [--budget 15m] [--runs today,auto,torchvision] [--seed S]
 * [--threads N] [--root DIR] [--out DIR]`, or any dataset with `--train PATH [--train-split S]
 * --test PATH [--test-split S]`; `--merge DIR,DIR,... [--out DIR]` prints one table from runs
 * made separately (bench/scratch_device.sh runs each arm in a process of its own, in parallel).
 *
 * The held-out sets are fixed files, nothing is drawn at random: BCCD's ImageSets/Main
 * train.txt (205 images) for training and test.txt (72) for scoring; raccoon's
 * train_labels.csv (160 images, 173 boxes) and test_labels.csv (40 images, 44 boxes), the split
 * published with the dataset (datitran/raccoon_dataset), disjoint by file name.
 *
 * Runs one after the other, each for the same budget on the same training set:
 *   today        `retinanet train --config bench/bccd_config.json --batch 2 --lr 0.01
 *                --clip-grad 5` (the recipe of docs/results.md's BCCD runs: ResNet-18 with
 *                frozen BatchNorm, 128-channel FPN, two-conv GroupNorm heads, 480/640 px; padded
 *                to 32 when every image has one size, as those runs were, else the default 128)
 *   auto         `retinanet train` with no model flags: the automatic from-scratch recipe
 *   torchvision  torchvision (0.14 from Debian here) with the automatic recipe's model and recipe
 *                (bench/scratch_torchvision.py), the budget enforced the same way
 * and scores each on the held-out set with the same COCO evaluator (`retinanet eval`; the
 * torchvision detections through `eval --gt --dets` on the ground truth our reader writes).
 * Every run is a child process exactly as a user would start it; progress on stderr, the table
 * on stdout, `summary.json` and each run's folder under --out.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { InputError } from '../src/core/errors.js';
import { durationFlag, numberFlag } from '../src/core/flags.js';
import { loadDataset } from '../src/data/datasets/index.js';
import { cocoGroundTruth, datasetSource } from '../src/data/source.js';
import type { DetectionDataset } from '../src/data/types.js';
import { type CocoStatsJson, cocoStatsJson } from '../src/eval/summary.js';
import { evaluateCoco } from '../src/eval/coco.js';
import { parseStepLog } from '../src/train/log.js';
import { scratchRecipe } from '../src/train/scratch_recipe.js';
import { lastJson, newestTorch, run, runIfScript, torchCandidates, torchPythons } from './detection_common.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const cli = path.join(repo, 'dist/src/cli/main.js');

const RUNS = ['today', 'auto', 'torchvision'] as const;
type RunName = (typeof RUNS)[number];

/** A dataset as `retinanet train/eval` flags take it. */
interface DataSpec {
  path: string;
  split?: string;
}

interface Options {
  name: string;
  train: DataSpec;
  test: DataSpec;
  budget: number;
  runs: RunName[];
  seed: number;
  threads: number;
  out: string;
}

/**
 * The two datasets of docs/results.md, under `root` (default ../shared/data): BCCD (VOC,
 * train.txt / test.txt) and raccoon (headed CSVs of the published split; the same images also
 * have VOC XML in raccoon/annotations).
 */
function preset(name: string, root: string): { train: DataSpec; test: DataSpec } {
  if (name === 'bccd') return { train: { path: path.join(root, 'bccd'), split: 'train' }, test: { path: path.join(root, 'bccd'), split: 'test' } };
  if (name === 'raccoon') return { train: { path: path.join(root, 'raccoon/train_labels.csv') }, test: { path: path.join(root, 'raccoon/test_labels.csv') } };
  throw new InputError(`--data must be bccd or raccoon (or give --train and --test), got '${name}'`);
}

function parse(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      data: { type: 'string' },
      root: { type: 'string' },
      train: { type: 'string' },
      'train-split': { type: 'string' },
      test: { type: 'string' },
      'test-split': { type: 'string' },
      budget: { type: 'string' },
      runs: { type: 'string' },
      seed: { type: 'string' },
      threads: { type: 'string' },
      out: { type: 'string' },
    },
  });
  const seed = numberFlag(values, 'seed', { integer: true, min: 0 }) ?? 0;
  let name: string;
  let sets: { train: DataSpec; test: DataSpec };
  if (values.train || values.test) {
    if (!values.train || !values.test) throw new InputError('give both --train and --test');
    if (values.data) throw new InputError('give either --data or --train/--test');
    name = path.basename(values.train).replace(/\.[^.]*$/, '');
    sets = { train: { path: values.train, split: values['train-split'] }, test: { path: values.test, split: values['test-split'] } };
  } else {
    name = values.data ?? 'bccd';
    sets = preset(name, values.root ?? path.resolve(repo, '../shared/data'));
  }
  const runs = (values.runs ?? RUNS.join(',')).split(',').map((r) => r.trim());
  const bad = runs.filter((r) => !(RUNS as readonly string[]).includes(r));
  if (bad.length > 0 || runs.length === 0) throw new InputError(`--runs takes a comma-separated subset of ${RUNS.join(',')}, got '${values.runs}'`);
  const budget = durationFlag(values, 'budget') ?? 900;
  return {
    name,
    ...sets,
    budget,
    runs: runs as RunName[],
    seed,
    threads: numberFlag(values, 'threads', { integer: true, min: 1 }) ?? 2,
    out: values.out ?? path.join(repo, `runs/scratch-${name}-${Math.round(budget)}s-seed${seed}`),
  };
}

const dataFlags = (d: DataSpec): string[] => ['--data', d.path, ...(d.split ? ['--split', d.split] : [])];

interface StepLog {
  time: number;
  loss_cls: number;
  loss_box: number;
}

/** Median seconds per step after the first two (graph compiles and warm-up). */
function stepSeconds(log: readonly { time: number }[]): number {
  const d = log.slice(2).map((r, i) => r.time - log[i + 1]!.time);
  return d.length ? [...d].sort((a, b) => a - b)[d.length >> 1]! : log.length ? log[log.length - 1]!.time / log.length : 0;
}

function tailLoss(log: readonly StepLog[]): { cls: number; box: number } {
  const t = log.slice(-20);
  return { cls: t.reduce((a, r) => a + r.loss_cls, 0) / Math.max(1, t.length), box: t.reduce((a, r) => a + r.loss_box, 0) / Math.max(1, t.length) };
}

type Stats = Required<CocoStatsJson>;

interface Row {
  name: RunName;
  what: string;
  iters: number;
  seconds: number;
  step: number;
  loss: { cls: number; box: number };
  stats: Stats;
}

/** Training and held-out annotations as the spec of bench/scratch_torchvision.py wants them. */
function torchvisionData(train: DetectionDataset, test: DetectionDataset, testIds: readonly number[]): { train: unknown[]; eval: unknown[]; categories: { id: number; name: string }[] } {
  const testCat = new Map(test.classNames.map((n, k) => [n, test.categoryIds[k]!]));
  return {
    train: train.images
      .map((im) => {
        const keep = [...im.labels.keys()].filter((k) => !im.crowd[k] && im.boxes[4 * k + 2]! > im.boxes[4 * k]! && im.boxes[4 * k + 3]! > im.boxes[4 * k + 1]!);
        return { file: im.file, boxes: keep.map((k) => Array.from(im.boxes.subarray(4 * k, 4 * k + 4))), labels: keep.map((k) => im.labels[k]!) };
      })
      .filter((t) => t.labels.length > 0),
    eval: test.images.map((im, i) => ({ file: im.file, id: testIds[i]! })),
    categories: train.classNames.map((n) => ({ id: testCat.get(n) ?? -1, name: n })),
  };
}

export async function main(argv: string[]): Promise<void> {
  const at = argv.indexOf('--merge');
  if (at >= 0) {
    const { values } = parseArgs({ args: argv, options: { merge: { type: 'string' }, out: { type: 'string' } } });
    const dirs = (values.merge ?? '').split(',').filter((d) => d.length > 0);
    if (dirs.length === 0) throw new InputError('--merge takes a comma-separated list of run folders');
    merge(dirs, values.out);
    return;
  }
  const o = parse(argv);
  for (const d of [o.train, o.test]) if (!existsSync(d.path)) throw new InputError(`no dataset at ${d.path} (--root DIR, or --train/--test)`);
  let torchPython: string | undefined;
  if (o.runs.includes('torchvision')) {
    // TORCH_PYTHON's first interpreter when set; otherwise the newest torch found. A 15-minute arm
    // per torch is too long to time both, and torch 2 is the faster trainer on this kind of CPU
    // (issue 16's measurement of a ResNet-50-FPN step: torch 2.13 2.97 s, torch 1.13 4.14 s). A torch 2
    // with a CUDA torchvision wheel works through bench/torch_compat.py.
    torchPython = (process.env.TORCH_PYTHON ? torchPythons()[0] : newestTorch(torchPythons()))?.python;
    if (torchPython === undefined) throw new InputError(`none of ${torchCandidates().join(', ')} imports torch and torchvision (apt-get install python3-torchvision, set TORCH_PYTHON, or leave torchvision out of --runs)`);
  }
  mkdirSync(o.out, { recursive: true });
  const { dataset: train } = await loadDataset(o.train.path, { split: o.train.split, checkImages: 'header' });
  const { dataset: test } = await loadDataset(o.test.path, { split: o.test.split, checkImages: 'header' });
  const gt = await cocoGroundTruth(datasetSource(test));
  const gtFile = path.join(o.out, 'test_gt.json');
  writeFileSync(gtFile, JSON.stringify(gt));
  const common = ['--time-budget', String(o.budget), '--seed', String(o.seed), '--threads', String(o.threads), '--quiet'];
  const evalOurs = (dir: string): Stats => lastJson<Stats>(run(process.execPath, [cli, 'eval', '--weights', path.join(dir, 'model.safetensors'), ...dataFlags(o.test), '--threads', String(o.threads), '--json', '--per-class']));
  const oneSize = new Set(train.images.map((im) => `${im.width}x${im.height}`)).size === 1;
  const rows: Row[] = [];
  const minutes = (o.budget / 60).toFixed(1);
  console.error(`bench scratch: ${o.name}, ${train.images.length} training images, ${test.images.length} held-out; ${o.runs.join(', ')} for ${minutes} min each (${o.threads} threads, seed ${o.seed}) -> ${o.out}`);

  for (const [k, name] of o.runs.entries()) {
    const dir = path.join(o.out, name);
    console.error(`[${k + 1}/${o.runs.length}] ${name} (${minutes} min) ...`);
    if (name === 'today' || name === 'auto') {
      const flags =
        name === 'today'
          ? ['--config', path.join(repo, 'bench/bccd_config.json'), '--batch', '2', '--lr', '0.01', '--clip-grad', '5', ...(oneSize ? ['--size-divisible', '32'] : [])]
          : [];
      run(process.execPath, [cli, 'train', ...dataFlags(o.train), ...flags, ...common, '--out', dir, '--exist-ok']);
      const log = parseStepLog(readFileSync(path.join(dir, 'log.jsonl'), 'utf8'));
      const cfg = JSON.parse(readFileSync(path.join(dir, 'model.json'), 'utf8')).config as { name: string; backbone: { baseWidth: number; norm: string }; transform: { minSize: number } };
      rows.push({ name, what: `${cfg.name} (width ${cfg.backbone.baseWidth}, ${cfg.backbone.norm}, ${cfg.transform.minSize} px)`, iters: log.length, seconds: log[log.length - 1]!.time, step: stepSeconds(log), loss: tailLoss(log), stats: evalOurs(dir) });
    } else {
      // The automatic recipe's choice, as `retinanet train` makes it for these flags.
      const choice = scratchRecipe(train, { timeBudget: o.budget, cores: o.threads });
      const spec = {
        config: choice.config,
        recipe: { batch: choice.recipe.batchSize, lr: choice.recipe.lr, clip: choice.recipe.clipGradNorm, flip: choice.recipe.flip, minSizes: choice.recipe.minSizes, seconds: o.budget, threads: o.threads, seed: o.seed },
        ...torchvisionData(train, test, gt.images.map((im) => im.id)),
      };
      mkdirSync(dir, { recursive: true });
      const specFile = path.join(dir, 'spec.json');
      writeFileSync(specFile, JSON.stringify(spec));
      const tv = lastJson<{ torchvision?: string; iters: number; train_seconds: number }>(run(torchPython!, [path.join(repo, 'bench/scratch_torchvision.py'), specFile, dir]));
      const log = JSON.parse(readFileSync(path.join(dir, 'log.json'), 'utf8')) as StepLog[];
      const detections = JSON.parse(readFileSync(path.join(dir, 'detections.json'), 'utf8')) as unknown[];
      // `retinanet eval` refuses an empty results file (a user mistake there); a model that has not
      // learnt yet may detect nothing, which the same evaluator scores in-process (0, or -1 for an
      // area range without ground truth, as pycocotools).
      const stats = detections.length > 0 ? lastJson<Stats>(run(process.execPath, [cli, 'eval', '--gt', gtFile, '--dets', path.join(dir, 'detections.json'), '--json', '--per-class'])) : (cocoStatsJson(evaluateCoco(gt, []), true) as Stats);
      rows.push({ name, what: `torchvision ${tv.torchvision ?? ''}, the auto recipe's model (width ${choice.config.backbone.baseWidth}, ${choice.config.transform.minSize} px)`, iters: tv.iters, seconds: tv.train_seconds, step: stepSeconds(log), loss: tailLoss(log), stats });
    }
    const s = rows[rows.length - 1]!.stats;
    console.error(`    ${name}: ${rows[rows.length - 1]!.iters} iterations, AP ${s.AP.toFixed(3)}, AP50 ${s.AP50.toFixed(3)}`);
  }

  const summary: Summary = { data: o.name, train: o.train, test: o.test, testImages: test.images.length, budget: o.budget, seed: o.seed, threads: o.threads, rows };
  writeFileSync(path.join(o.out, 'summary.json'), JSON.stringify(summary, null, 2));
  printTable(summary);
  console.log(`\nsummary: ${path.join(o.out, 'summary.json')}`);
}

/** What `summary.json` holds: the options of the run and one row per arm. */
interface Summary {
  data: string;
  train: DataSpec;
  test: DataSpec;
  testImages: number;
  budget: number;
  seed: number;
  threads: number;
  rows: Row[];
}

/** The markdown tables of docs/results.md for one summary. */
function printTable(s: Summary): void {
  const f = (x: number): string => x.toFixed(3);
  const { rows } = s;
  const classes = Object.keys(rows[0]!.stats.perClass);
  console.log(`${s.data} from scratch, ${(s.budget / 60).toFixed(1)} min per run (${s.threads} threads, seed ${s.seed}); COCO AP on ${s.testImages} held-out images`);
  console.log(`| run | model | iters | train s | s / step | AP | AP50 | AP75 | APs | APm | APl | AR100 | last-20 loss cls / box |`);
  console.log(`|---|---|---|---|---|---|---|---|---|---|---|---|---|`);
  for (const r of rows) {
    const st = r.stats;
    console.log(`| ${r.name} | ${r.what} | ${r.iters} | ${r.seconds.toFixed(0)} | ${r.step.toFixed(2)} | ${[st.AP, st.AP50, st.AP75, st.APs, st.APm, st.APl, st.AR100].map(f).join(' | ')} | ${f(r.loss.cls)} / ${f(r.loss.box)} |`);
  }
  console.log(`\nPer class, COCO AP / AP50`);
  console.log(`| class | ${rows.map((r) => `${r.name} AP / AP50`).join(' | ')} |`);
  console.log(`|---|${'---|'.repeat(rows.length)}`);
  for (const c of classes) console.log(`| ${c} | ${rows.map((r) => `${f(r.stats.perClass[c] ?? 0)} / ${f(r.stats.perClassAP50[c] ?? 0)}`).join(' | ')} |`);
}

/**
 * `bench scratch --merge DIR,DIR,... [--out DIR]`: one table from the summary.json of runs made
 * separately (bench/scratch_device.sh runs each arm in its own process, in parallel); the runs
 * must share dataset, budget, seed and threads. Writes the merged summary.json under --out.
 */
function merge(dirs: string[], out: string | undefined): void {
  const parts = dirs.map((d) => {
    const file = path.join(d, 'summary.json');
    if (!existsSync(file)) throw new InputError(`--merge: no summary.json in ${d} (did that run finish?)`);
    return JSON.parse(readFileSync(file, 'utf8')) as Summary;
  });
  const first = parts[0]!;
  for (const p of parts.slice(1)) {
    if (p.data !== first.data || p.budget !== first.budget || p.seed !== first.seed || p.threads !== first.threads) {
      throw new InputError(`--merge: ${p.data} (${p.budget} s, seed ${p.seed}, ${p.threads} threads) and ${first.data} (${first.budget} s, seed ${first.seed}, ${first.threads} threads) are not runs of one comparison`);
    }
  }
  const merged: Summary = { ...first, rows: parts.flatMap((p) => p.rows) };
  if (out) {
    mkdirSync(out, { recursive: true });
    writeFileSync(path.join(out, 'summary.json'), JSON.stringify(merged, null, 2));
  }
  printTable(merged);
}

runIfScript(import.meta.url, main);
