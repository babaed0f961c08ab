/**
 * Shared helpers of the detection benchmarks: deterministic data, timing, and running the
 * torchvision counterpart (Debian's /usr/bin/python3 with torch) in the same run.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../src/core/random.js';

/** Interpreter that has torch/torchvision (Debian packages); override with TORCH_PYTHON. */
export const TORCH_PYTHON = process.env.TORCH_PYTHON ?? '/usr/bin/python3';

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

/**
 * Runs `bench/<script>` with the torch interpreter and parses the JSON it prints last, or
 * returns a reason string when torch is unavailable.
 */
export function runTorch<T>(script: string, args: string[]): T | string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  // Compiled to dist/bench; the .py files stay in the source tree.
  const file = path.resolve(here, '../../bench', script);
  const probe = spawnSync(TORCH_PYTHON, ['-c', 'import torch, torchvision'], { encoding: 'utf8' });
  if (probe.status !== 0) return `skipped torchvision comparison: ${TORCH_PYTHON} cannot import torch/torchvision`;
  const r = spawnSync(TORCH_PYTHON, [file, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) return `torchvision run failed: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`;
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as T;
}

/** Prints one result row: ours, torchvision's, ratio. */
export function report(label: string, ours: Timing, theirs: { medianMs: number; minMs: number; threads: number } | string): void {
  console.log(`${label}`);
  console.log(`  retinanet-ts : median ${ours.medianMs.toFixed(3)} ms, min ${ours.minMs.toFixed(3)} ms (${ours.runs} runs)`);
  if (typeof theirs === 'string') {
    console.log(`  torchvision  : ${theirs}`);
    return;
  }
  console.log(`  torchvision  : median ${theirs.medianMs.toFixed(3)} ms, min ${theirs.minMs.toFixed(3)} ms (torch threads: ${theirs.threads})`);
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
      console.error(err);
      process.exitCode = 1;
    });
  }
}
