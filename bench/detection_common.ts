/**
 * Shared helpers of the detection benchmarks: deterministic data, timing, and running the
 * torchvision counterpart in the same run, with every torch found (Debian's 1.13 and a torch 2
 * virtual environment), compared against the faster.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../src/core/random.js';
import { InputError } from '../src/core/errors.js';

/** A Python interpreter with torch and torchvision, and what it has. */
export interface TorchPython {
  python: string;
  torch: string;
  torchvision: string;
  /** 'native' when torchvision's C++ ops loaded, else the CPU NMS of bench/torch_compat.py. */
  nms: string;
}

/**
 * Interpreters tried as the torchvision reference, in order: `TORCH_PYTHON` (a colon-separated
 * list) when set, else Debian's `/usr/bin/python3` (torch 1.13), `python3` on the PATH, and the
 * virtual environments `V/`, `.venv/` and `venv-torch2/` in or beside the repository (where the
 * developers' guide installs torch 2). One per distinct torch version is kept.
 */
export function torchCandidates(repo = repoRoot()): string[] {
  if (process.env.TORCH_PYTHON) return process.env.TORCH_PYTHON.split(':').filter((p) => p.length > 0);
  const venvs = ['V', '.venv', 'venv-torch2'].flatMap((v) => [path.join(repo, v, 'bin/python3'), path.join(repo, '..', v, 'bin/python3')]);
  return ['/usr/bin/python3', 'python3', ...venvs.filter((p) => existsSync(p))];
}

/** The repository root (benchmarks compile to dist/bench; the .py files stay in bench/). */
function repoRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
}

let found: TorchPython[] | undefined;

/** The interpreters of {@link torchCandidates} that import torch and torchvision, one per torch version. */
export function torchPythons(): TorchPython[] {
  if (found) return found;
  found = [];
  const compat = path.join(repoRoot(), 'bench/torch_compat.py');
  for (const python of torchCandidates()) {
    const r = spawnSync(python, [compat], { encoding: 'utf8' });
    if (r.status !== 0) continue;
    const v = JSON.parse(r.stdout.trim().split('\n').pop()!) as Omit<TorchPython, 'python'>;
    if (found.some((f) => f.torch === v.torch)) continue;
    found.push({ python, ...v });
  }
  return found;
}

/** The interpreter with the highest torch version (versions like `2.13.0+cpu`, `1.13.1`). */
export function newestTorch<T extends { torch: string }>(found: readonly T[]): T | undefined {
  const key = (v: string): number[] => v.split(/[.+]/).slice(0, 3).map((x) => Number.parseInt(x, 10) || 0);
  const newer = (a: T, b: T): boolean => {
    const ka = key(a.torch), kb = key(b.torch);
    for (let i = 0; i < 3; i++) if (ka[i] !== kb[i]) return ka[i]! > kb[i]!;
    return false;
  };
  return found.reduce<T | undefined>((best, t) => (best === undefined || newer(t, best) ? t : best), undefined);
}

/** One line naming an interpreter's versions, e.g. `torch 2.13.0+cpu / torchvision 0.28.0`. */
export function describeTorch(t: TorchPython): string {
  return `torch ${t.torch} / torchvision ${t.torchvision}${t.nms === 'native' ? '' : ' (CPU NMS in Python)'}`;
}

/** Interpreter of the first reference, kept for the scripts that need exactly one (bench bccd). */
export const TORCH_PYTHON = process.env.TORCH_PYTHON?.split(':')[0] ?? '/usr/bin/python3';

/** Deterministic uniform [0, 1) generator: the project's seeded mulberry32 {@link Rng}. */
export function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

/** Standard normal samples from a uniform generator (Box-Muller). */
export function normal(u: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}

/** Timing summary in milliseconds. */
export interface Timing {
  medianMs: number;
  minMs: number;
  runs: number;
}

/** Runs `fn` `warmup` times, then `runs` times, and reports median and min wall time. */
export function time(fn: () => void, runs = 30, warmup = 5): Timing {
  for (let i = 0; i < warmup; i++) fn();
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const s = performance.now();
    fn();
    t.push(performance.now() - s);
  }
  t.sort((a, b) => a - b);
  return { medianMs: t[t.length >> 1]!, minMs: t[0]!, runs };
}

/** Writes typed arrays as raw little-endian files into a fresh temp dir; returns the dir. */
export function dumpArrays(arrays: Record<string, Float32Array | Int32Array>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'retinanet-bench-'));
  for (const [name, a] of Object.entries(arrays)) writeFileSync(path.join(dir, name), new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  return dir;
}

/** Runs a command with progress on stderr; returns its stdout, or throws with its last lines. */
export function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`${path.basename(cmd)} ${args.slice(0, 2).join(' ')} failed (exit ${r.status}): ${r.stdout.trim().split('\n').slice(-3).join(' | ')}`);
  return r.stdout;
}

/** The JSON object a reference script prints on its last line. */
export function lastJson<T>(stdout: string): T {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as T;
}

/** Runs `bench/<script>` with one interpreter and parses the JSON it prints last, or returns why it failed. */
export function runTorchWith<T>(py: TorchPython, script: string, args: string[]): T | string {
  const r = spawnSync(py.python, [path.join(repoRoot(), 'bench', script), ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) return `torchvision run failed (${describeTorch(py)}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`;
  return lastJson<T>(r.stdout);
}

/** A reference result and the interpreter that gave it, with the others' times for the record. */
export type TorchResult<T> = T & { ref: TorchPython; others: { ref: TorchPython; ms: number }[] };

/**
 * Runs `bench/<script>` with every interpreter of {@link torchPythons} and returns the fastest
 * result by `speed` (milliseconds; the median by default): the benchmarks compare against the
 * faster torch, and say which. Returns a reason string when no interpreter has torch.
 */
export function runTorch<T extends object>(script: string, args: string[], speed: (t: T) => number = (t) => (t as { medianMs: number }).medianMs): TorchResult<T> | string {
  const pythons = torchPythons();
  if (pythons.length === 0) return `skipped torchvision comparison: none of ${torchCandidates().join(', ')} imports torch and torchvision (set TORCH_PYTHON)`;
  const runs: { ref: TorchPython; result: T }[] = [];
  const errors: string[] = [];
  for (const ref of pythons) {
    const result = runTorchWith<T>(ref, script, args);
    if (typeof result === 'string') errors.push(result);
    else runs.push({ ref, result });
  }
  if (runs.length === 0) return errors.join('; ');
  runs.sort((a, b) => speed(a.result) - speed(b.result));
  const best = runs[0]!;
  return { ...best.result, ref: best.ref, others: runs.slice(1).map((r) => ({ ref: r.ref, ms: speed(r.result) })) };
}

/** Names the reference a result came from and, when several torches ran, the slower ones. */
export function describeReference(r: { ref: TorchPython; others: { ref: TorchPython; ms: number }[] }): string {
  const others = r.others.map((o) => `${describeTorch(o.ref)}: ${o.ms.toFixed(1)} ms`).join('; ');
  return `${describeTorch(r.ref)}${others ? `, the faster (also ran ${others})` : ''}`;
}

/** Prints one result row: ours, torchvision's, ratio. */
export function report(label: string, ours: Timing, theirs: TorchResult<{ medianMs: number; minMs: number; threads: number }> | string): void {
  console.log(`${label}`);
  console.log(`  retinanet-ts : median ${ours.medianMs.toFixed(3)} ms, min ${ours.minMs.toFixed(3)} ms (${ours.runs} runs)`);
  if (typeof theirs === 'string') {
    console.log(`  torchvision  : ${theirs}`);
    return;
  }
  console.log(`  torchvision  : median ${theirs.medianMs.toFixed(3)} ms, min ${theirs.minMs.toFixed(3)} ms (torch threads: ${theirs.threads}; ${describeReference(theirs)})`);
  console.log(`  ratio ours/torchvision (median): ${(ours.medianMs / theirs.medianMs).toFixed(2)}x`);
}

/**
 * Runs a benchmark's `main` when its file is the script node was started with, so each file
 * works both as `node dist/bench/<name>.js` and from `retinanet bench <name>`.
 */
export function runIfScript(moduleUrl: string, main: (argv: string[]) => Promise<void> | void): void {
  const script = process.argv[1];
  let isScript = false;
  try {
    isScript = !!script && realpathSync(script) === realpathSync(fileURLToPath(moduleUrl));
  } catch {
    isScript = false;
  }
  if (isScript) {
    Promise.resolve(main(process.argv.slice(2))).catch((err: unknown) => {
      // A usage mistake is one line; anything else keeps its stack for the bug report.
      if (err instanceof InputError) {
        console.error(`${path.basename(script!)}: ${err.message}`);
        process.exitCode = 2;
      } else {
        console.error(err);
        process.exitCode = 1;
      }
    });
  }
}
