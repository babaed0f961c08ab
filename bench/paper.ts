/**
 * `retinanet bench paper`: the focal loss paper's own experiments in miniature (Table 1a-1d,
 * the prior-initialisation check, Figure 4) on a synthetic set with the paper's imbalance.
 *
 * A run is a row (paper_spec.ts) at one learning rate and seed; results are JSON files under
 * `<out>/<preset>-<hash>/runs/`, so an interrupted bench resumes where it stopped and a second
 * invocation with more rows or seeds reuses what is done. The CE baseline runs the preset's
 * learning-rate grid first; its best val AP sets the one rate of every other row (with
 * `--tune-per-row`, as `full` does, every row also runs the whole grid). `--jobs J` runs J runs
 * at once, each in a child process with `--threads T`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeAtomic } from '../src/core/atomic.js';
import { InputError } from '../src/core/errors.js';
import { runIfScript } from './detection_common.js';
import { type RatioSummary, SPLITS, type Split, type WrittenImage, cocoRatios, datasetReady, splitCount, splitRatios, writeAnnotations, writeImages } from './paper_data.js';
import { buildReport, chooseFixedLr, figure4Svg, jsonRows, markdownReport, textSummary } from './paper_report.js';
import { BASELINE_ROW, FIGURE4_ROW, PRESETS, type Plan, type PlanOptions, ROWS, type RunSpec, TABLES, TABLE_IDS, makePlan, rowById, rowConfig, runKey } from './paper_spec.js';
import { type RunResult, runOne } from './paper_worker.js';

const HELP = `Usage: retinanet bench paper [--preset mini|full|smoke] [--seeds N] [--seed S] [--json] [--out DIR]
                             [--rows FILTER] [--jobs J] [--threads T] [--lr X | --lrs A,B,..]
                             [--iters N] [--tune-per-row] [--coco DIR] [--list] [--report-only]

Table 1a/1b/1c(part)/1d of the focal loss paper, the prior-initialisation check and Figure 4,
in miniature on a synthetic set as imbalanced as COCO (docs/paper.md).

  --preset P       smoke (seconds; a test), mini (about 2 hours on 2 cores with --jobs 2), full (16 cores)
  --rows FILTER    comma-separated table ids (${TABLE_IDS.join(', ')}), row ids, or fig4
  --seeds N        seeds per row (default: the preset's); --seed S the first seed (default 0)
  --lr X           one learning rate for every row (no tuning); --lrs A,B,.. the grid to tune on
  --tune-per-row   every row runs the whole grid (default for full)
  --iters N        iterations per run (default: the preset's)
  --jobs J         runs at once, each in a child process (default 1: in this process)
  --threads T      ONNX Runtime threads per run (default: cores / jobs)
  --out DIR        output folder (default runs/paper); results are reused when present
  --coco DIR       COCO128 for the imbalance comparison (default /work/shared/data/coco128 if present)
  --json           print {rows:[...]} (one per run) instead of the text summary
  --list           print the presets, rows and planned runs, and exit
  --report-only    write the report from the run files present (e.g. after a timeout), train nothing

Writes <out>/<preset>-<hash>/: report.md (tables with the paper's numbers), results.json,
figure4.svg and runs/ (one JSON per run, reused by a later invocation); the synthetic set
(PNGs + COCO JSON) goes to <out>/data-<hash>/, shared by every preset with the same data.`;

interface Args {
  plan: Plan;
  planOptions: PlanOptions;
  json: boolean;
  jobs: number;
  threads: number;
  out: string;
  fixedLr?: number;
  coco?: string;
  list: boolean;
  /** Only gather the run files present into the report (after an interrupted or timed-out bench). */
  reportOnly: boolean;
}

function num(v: string | undefined, name: string, opts: { integer?: boolean; min?: number } = {}): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isFinite(x) || (opts.integer && !Number.isInteger(x)) || (opts.min !== undefined && x < opts.min)) {
    throw new InputError(`--${name} must be ${opts.integer ? 'an integer' : 'a number'}${opts.min !== undefined ? ` >= ${opts.min}` : ''}, got '${v}'`);
  }
  return x;
}

/** Expands --rows: table ids, row ids and `fig4` (Figure 4's row). */
export function expandFilter(filter: string): string[] {
  const out = new Set<string>();
  for (const raw of filter.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (raw === 'fig4' || raw === 'figure4') out.add(FIGURE4_ROW);
    else if (TABLE_IDS.includes(raw)) {
      for (const r of TABLES.find((t) => t.id === raw)!.rows) out.add(r.row);
    } else out.add(rowById(raw).id);
  }
  return [...out];
}

export function parsePaperArgs(argv: string[]): Args | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        preset: { type: 'string' },
        seeds: { type: 'string' },
        seed: { type: 'string' },
        json: { type: 'boolean' },
        out: { type: 'string' },
        rows: { type: 'string' },
        jobs: { type: 'string' },
        threads: { type: 'string' },
        lr: { type: 'string' },
        lrs: { type: 'string' },
        iters: { type: 'string' },
        'tune-per-row': { type: 'boolean' },
        coco: { type: 'string' },
        list: { type: 'boolean' },
        'report-only': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: false,
    });
  } catch (err) {
    throw new InputError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) return 'help';
  if (v.lr !== undefined && v.lrs !== undefined) throw new InputError('give --lr or --lrs, not both');
  const fixedLr = num(v.lr, 'lr', { min: 0 });
  const lrs = fixedLr !== undefined ? [fixedLr] : v.lrs?.split(',').map((x) => num(x, 'lrs', { min: 0 })!);
  const planOptions: PlanOptions = {
    preset: v.preset ?? 'mini',
    seeds: num(v.seeds, 'seeds', { integer: true, min: 1 }),
    seed: num(v.seed, 'seed', { integer: true, min: 0 }),
    rows: v.rows !== undefined ? expandFilter(v.rows) : undefined,
    lrs,
    iters: num(v.iters, 'iters', { integer: true, min: 1 }),
    tunePerRow: v['tune-per-row'] ? true : undefined,
  };
  if (planOptions.rows && planOptions.rows.length === 0) throw new InputError('--rows selects no row');
  const plan = makePlan(planOptions);
  // The baseline sets the one rate unless it is given.
  if (fixedLr === undefined && !plan.rows.includes(BASELINE_ROW)) plan.rows = ROWS.map((r) => r.id).filter((id) => id === BASELINE_ROW || plan.rows.includes(id));
  const jobs = num(v.jobs, 'jobs', { integer: true, min: 1 }) ?? 1;
  const threads = num(v.threads, 'threads', { integer: true, min: 1 }) ?? Math.max(1, Math.floor(os.availableParallelism() / jobs));
  const coco = v.coco ?? (existsSync('/work/shared/data/coco128') ? '/work/shared/data/coco128' : undefined);
  return { plan, planOptions, json: v.json === true, jobs, threads, out: v.out ?? path.join('runs', 'paper'), fixedLr, coco, list: v.list === true, reportOnly: v['report-only'] === true };
}

/** Runs `tasks` with at most `jobs` at once; resolves when all are done (the first error rejects after the rest finish). */
async function pool<T>(tasks: (() => Promise<T>)[], jobs: number): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  let failure: unknown;
  const lane = async (): Promise<void> => {
    while (next < tasks.length && failure === undefined) {
      const i = next++;
      try {
        results[i] = await tasks[i]!();
      } catch (err) {
        failure ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, tasks.length) }, lane));
  if (failure !== undefined) throw failure;
  return results;
}

const SCRIPT = fileURLToPath(import.meta.url);

/** Children running now: a SIGINT / SIGTERM of the bench (e.g. `timeout`) ends them too. */
const live = new Set<ChildProcess>();
let trapped = false;

function trapSignals(): void {
  if (trapped) return;
  trapped = true;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      for (const c of live) c.kill('SIGTERM');
      process.stderr.write(`bench paper: ${sig}, ${live.size} run(s) stopped; finished runs are kept (--report-only writes their report)\n`);
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
}

/** Runs this script in a child process with `args`; rejects with the tail of its stderr on failure. */
function child(args: string[]): Promise<void> {
  trapSignals();
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [SCRIPT, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    live.add(p);
    p.on('exit', () => live.delete(p));
    let err = '';
    p.stderr.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-4000);
    });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`child ${args.slice(0, 2).join(' ')} exited ${code}:\n${err}`))));
  });
}

/** Progress goes to stderr, so stdout holds only the summary (or the JSON). */
function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

/** Writes the synthetic set if absent, in `jobs` slices (child processes when jobs > 1). */
async function ensureData(a: Args, dataDir: string): Promise<void> {
  const data = a.plan.preset.data;
  if (datasetReady(dataDir, data)) return;
  const t0 = performance.now();
  for (const split of SPLITS) {
    const n = splitCount(data, split);
    const parts = Math.min(a.jobs, n);
    const bounds = Array.from({ length: parts }, (_, k) => [Math.floor((k * n) / parts), Math.floor(((k + 1) * n) / parts)] as const);
    const partsDir = path.join(dataDir, 'parts');
    mkdirSync(partsDir, { recursive: true });
    const images = await pool(
      bounds.map(([from, to]) => async (): Promise<WrittenImage[]> => {
        if (a.jobs === 1) return writeImages(dataDir, data, split, from, to);
        const file = path.join(partsDir, `${split}-${from}.json`);
        await child(['--make-data', `${split}:${from}:${to}`, '--data-dir', dataDir, '--plan', JSON.stringify(a.planOptions)]);
        return JSON.parse(readFileSync(file, 'utf8')) as WrittenImage[];
      }),
      a.jobs,
    );
    await writeAnnotations(dataDir, data, split, images.flat());
  }
  log(`data: ${SPLITS.map((s) => `${splitCount(data, s)} ${s}`).join(', ')} images written in ${((performance.now() - t0) / 1000).toFixed(0)} s to ${dataDir}`);
}

function runFile(runsDir: string, key: string): string {
  return path.join(runsDir, `${key.replace(/[^A-Za-z0-9_.@-]/g, '_')}.json`);
}

function readRun(runsDir: string, key: string): RunResult | undefined {
  const f = runFile(runsDir, key);
  if (!existsSync(f)) return undefined;
  try {
    return JSON.parse(readFileSync(f, 'utf8')) as RunResult;
  } catch {
    return undefined;
  }
}

async function execute(a: Args, runs: RunSpec[], dataDir: string, runsDir: string, progress: { done: number; total: number }): Promise<RunResult[]> {
  return pool(
    runs.map((r) => async (): Promise<RunResult> => {
      let res = readRun(runsDir, r.key);
      if (!res) {
        if (a.jobs === 1) {
          res = await runOne(a.plan.preset, dataDir, r, a.threads);
          await writeAtomic(runFile(runsDir, r.key), JSON.stringify(res));
        } else {
          await child(['--worker', r.key, '--data-dir', dataDir, '--runs-dir', runsDir, '--threads', String(a.threads), '--plan', JSON.stringify(a.planOptions)]);
          res = readRun(runsDir, r.key);
          if (!res) throw new Error(`run ${r.key}: the child left no result`);
        }
        progress.done++;
        const ap = res.test ? `test AP ${(100 * res.test.AP).toFixed(1)}, val AP ${(100 * res.val!.AP).toFixed(1)}` : res.stopped;
        log(`[${progress.done}/${progress.total}] ${r.key}: ${ap} (${res.wall_s.toFixed(0)} s)`);
      } else {
        progress.done++;
      }
      return res;
    }),
    a.jobs,
  );
}

/** The imbalance of our set (its train split) and of COCO128 at 800 px. */
async function imbalance(a: Args, dataDir: string): Promise<RatioSummary[]> {
  const out: RatioSummary[] = [];
  const cfg = rowConfig(a.plan.preset, rowById(FIGURE4_ROW));
  out.push(await splitRatios(dataDir, 'train', 'ours (train split)', `${a.plan.preset.data.imageSize} px, demo anchors 16-256 x 3 x 3`, cfg));
  if (a.coco) {
    const c = await cocoRatios(a.coco).catch(() => undefined);
    if (c) out.push(c);
  }
  return out;
}

export async function runPaper(a: Args): Promise<void> {
  const p = a.plan.preset;
  const root = path.join(a.out, `${p.name}-${a.plan.hash}`);
  // The set depends on the data spec only: presets and iteration counts that share it share it.
  const dataDir = path.join(a.out, `data-${createHash('sha256').update(JSON.stringify(p.data)).digest('hex').slice(0, 12)}`);
  const runsDir = path.join(root, 'runs');
  const tuning = a.fixedLr === undefined;
  const grid = (rows: string[]): RunSpec[] => a.plan.seeds.flatMap((seed) => rows.flatMap((row) => p.lrs.map((lr) => ({ key: runKey(row, lr, seed), row, lr, seed }))));
  const at = (rows: string[], lr: number): RunSpec[] => a.plan.seeds.flatMap((seed) => rows.map((row) => ({ key: runKey(row, lr, seed), row, lr, seed })));
  const others = a.plan.rows.filter((r) => r !== BASELINE_ROW);
  if (a.list) {
    console.log(`presets:\n${Object.values(PRESETS).map((x) => `  ${x.name.padEnd(6)} ${x.about}`).join('\n')}`);
    console.log(`rows (${a.plan.rows.length}): ${a.plan.rows.join(', ')}`);
    const n = tuning ? (p.tunePerRow ? grid(a.plan.rows).length : grid([BASELINE_ROW]).length + at(others, p.lrs[0]!).length) : at(a.plan.rows, a.fixedLr!).length;
    const perRun = p.cpuSeconds.fixed + p.iters * p.cpuSeconds.perIter;
    console.log(`runs: ${n} of ${p.iters} iterations, about ${perRun.toFixed(0)} CPU s each (OHEM rows about a quarter more: their extra forward pass); in ${Math.ceil(n / a.jobs)} wave(s) of ${a.jobs} job(s): about ${((Math.ceil(n / a.jobs) * perRun) / 60).toFixed(1)} min at 1 thread per job, plus writing the data once`);
    console.log(`output ${root}, data ${dataDir}`);
    return;
  }
  mkdirSync(runsDir, { recursive: true });
  if (a.reportOnly) {
    const present = (tuning ? grid(a.plan.rows) : at(a.plan.rows, a.fixedLr!)).map((r) => readRun(runsDir, r.key)).filter((r): r is RunResult => r !== undefined);
    if (!present.length) throw new InputError(`--report-only: no finished run of this plan in ${runsDir}`);
    const planned = tuning ? (p.tunePerRow ? grid(a.plan.rows).length : grid([BASELINE_ROW]).length + at(others, p.lrs[0]!).length) : at(a.plan.rows, a.fixedLr!).length;
    log(`report from ${present.length} of ${planned} planned runs found in ${runsDir}`);
    await writeOutputs(a, root, dataDir, present, a.fixedLr ?? chooseFixedLr(present));
    return;
  }
  await ensureData(a, dataDir);
  const progress = { done: 0, total: 0 };
  let results: RunResult[];
  let fixedLr = a.fixedLr;
  if (!tuning) {
    const runs = at(a.plan.rows, fixedLr!);
    progress.total = runs.length;
    results = await execute(a, runs, dataDir, runsDir, progress);
  } else if (p.tunePerRow) {
    const runs = grid(a.plan.rows);
    progress.total = runs.length;
    results = await execute(a, runs, dataDir, runsDir, progress);
    fixedLr = chooseFixedLr(results);
  } else {
    const base = grid([BASELINE_ROW]);
    progress.total = base.length + at(others, p.lrs[0]!).length;
    const first = await execute(a, base, dataDir, runsDir, progress);
    fixedLr = chooseFixedLr(first);
    if (fixedLr === undefined) throw new Error('the CE baseline diverged at every learning rate of the grid');
    log(`learning rate for all rows (best CE val AP): ${fixedLr}`);
    results = [...first, ...(await execute(a, at(others, fixedLr), dataDir, runsDir, progress))];
  }
  await writeOutputs(a, root, dataDir, results, fixedLr);
}

/**
 * Every finished run in `runsDir` for `seeds` besides `results` (earlier invocations', other
 * rows or rates): the files on disk are the table, whichever invocation wrote them.
 */
function finishedRuns(runsDir: string, seeds: readonly number[], results: readonly RunResult[]): RunResult[] {
  const have = new Set(results.map((r) => r.key));
  const known = new Set(ROWS.map((r) => r.id));
  const more: RunResult[] = [];
  for (const f of readdirSync(runsDir).filter((x) => x.endsWith('.json')).sort()) {
    const r = readRun(runsDir, f.slice(0, -'.json'.length));
    if (r && typeof r.key === 'string' && !have.has(r.key) && known.has(r.row) && seeds.includes(r.seed)) more.push(r);
  }
  return [...results, ...more];
}

/**
 * Writes report.md, results.json and figure4.svg from every finished run of the preset's rows
 * and these seeds (so a `--rows` invocation adds to the table instead of replacing it), and
 * prints the summary of this invocation's runs.
 */
async function writeOutputs(a: Args, root: string, dataDir: string, results: RunResult[], fixedLr: number | undefined): Promise<void> {
  const p = a.plan.preset;
  const tablePlan: Plan = { ...a.plan, rows: p.rows ?? ROWS.map((r) => r.id) };
  const all = finishedRuns(path.join(root, 'runs'), a.plan.seeds, results);
  const full = buildReport(tablePlan, all, fixedLr, datasetReady(dataDir, p.data) ? await imbalance(a, dataDir) : undefined);
  await writeAtomic(path.join(root, 'results.json'), JSON.stringify({ preset: p, seeds: a.plan.seeds, fixedLr, rows: jsonRows(full), summaries: full.summaries, figure4: full.figure4, imbalance: full.imbalance }, null, 1));
  await writeAtomic(path.join(root, 'report.md'), markdownReport(full, tablePlan));
  if (full.figure4) await writeAtomic(path.join(root, 'figure4.svg'), figure4Svg(full.figure4));
  log(`report (${all.length} runs: ${results.length} of this invocation, ${all.length - results.length} found from earlier ones): ${path.join(root, 'report.md')}`);
  const mine = buildReport(a.plan, results, fixedLr, full.imbalance);
  console.log(a.json ? JSON.stringify({ rows: jsonRows(mine) }) : textSummary(mine));
}

/** A child's job: one run (--worker KEY) or one slice of the data (--make-data split:from:to). */
async function childMain(argv: string[]): Promise<void> {
  const get = (name: string): string => {
    const i = argv.indexOf(`--${name}`);
    if (i < 0 || argv[i + 1] === undefined) throw new Error(`child: --${name} missing`);
    return argv[i + 1]!;
  };
  const plan = makePlan(JSON.parse(get('plan')) as PlanOptions);
  const dataDir = get('data-dir');
  if (argv.includes('--make-data')) {
    const [split, from, to] = get('make-data').split(':');
    const images = await writeImages(dataDir, plan.preset.data, split as Split, Number(from), Number(to));
    await writeAtomic(path.join(dataDir, 'parts', `${split}-${from}.json`), JSON.stringify(images));
    return;
  }
  const key = get('worker');
  const [row, lrPart, seedPart] = key.split('@');
  const run: RunSpec = { key, row: row!, lr: Number(lrPart!.slice(2)), seed: Number(seedPart!.slice(1)) };
  const res = await runOne(plan.preset, dataDir, run, Number(get('threads')));
  const runsDir = get('runs-dir');
  await writeAtomic(runFile(runsDir, key), JSON.stringify(res));
}

export async function main(argv: string[]): Promise<void> {
  if (argv.includes('--worker') || argv.includes('--make-data')) return childMain(argv);
  const a = parsePaperArgs(argv);
  if (a === 'help') {
    console.log(HELP);
    return;
  }
  await runPaper(a);
}

export const PAPER_HELP = HELP;

runIfScript(import.meta.url, main);
