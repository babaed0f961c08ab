/**
 * The output folder of a training run: one run per folder. A new run never writes into a
 * folder that holds another run's files (its log would be appended to, its checkpoints mixed
 * with the new ones); it either gets a fresh folder, continues that run, or clears it first.
 * While a run writes, a lock file holds its pid, so two processes never write one folder.
 */
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { InputError } from '../core/errors.js';

/** The files and folders a run writes (the ones `clearRun` removes). */
export const RUN_FILES: readonly string[] = [
  'log.jsonl',
  'results.csv',
  'results.png',
  'results.svg',
  'checkpoint',
  'model.safetensors',
  'model.json',
  'best.safetensors',
  'best.json',
  // The report written after a run with validation (train/report_hook.ts).
  'report.html',
  'report.md',
  'metrics.json',
  ...['pr_overall', 'pr_curve', 'f1_curve', 'p_curve', 'r_curve', 'confusion_matrix'].flatMap((f) => [`${f}.png`, `${f}.svg`]),
  'pr',
  'errors',
  'val_images.jpg',
  'worst_images.jpg',
  '.lock',
];

/** A folder that holds another run (code 'exists') or is being written by a live process ('locked'). */
export class RunDirError extends InputError {
  override name = 'RunDirError';
  constructor(
    message: string,
    readonly code: 'exists' | 'locked',
    readonly dir: string,
  ) {
    super(message);
  }
}

/** The run files found in `dir` (empty when it holds no run). */
export function runFilesIn(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const present = new Set(readdirSync(dir));
  return RUN_FILES.filter((f) => f !== '.lock' && present.has(f));
}

/** `base` if it holds no run, else the first of `base2`, `base3`, ... that does not. */
export function nextFreeRunDir(base: string): string {
  if (runFilesIn(base).length === 0) return base;
  for (let k = 2; ; k++) if (runFilesIn(`${base}${k}`).length === 0) return `${base}${k}`;
}

/** Throws RunDirError('exists') when `dir` holds a run. */
export function assertNoRun(dir: string): void {
  const files = runFilesIn(dir);
  if (files.length > 0) throw new RunDirError(`${dir} already holds a training run (${files.join(', ')})`, 'exists', dir);
}

/** Removes a previous run's files from `dir` (nothing else in it). */
export function clearRun(dir: string): void {
  for (const f of RUN_FILES) rmSync(path.join(dir, f), { recursive: true, force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes `dir/.lock` for this process (creating `dir`); throws RunDirError('locked') naming the
 * other process when a live one holds it. A lock left by a dead process is taken over.
 * Returns the function that releases it.
 */
export async function lockRunDir(dir: string): Promise<() => void> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, '.lock');
  if (existsSync(file)) {
    const pid = Number(readFileSync(file, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
      throw new RunDirError(`${dir} is being written by another run (pid ${pid}, lock file ${file})`, 'locked', dir);
    }
  }
  writeFileSync(file, `${process.pid}\n`);
  return () => {
    try {
      if (readFileSync(file, 'utf8').trim() === String(process.pid)) rmSync(file, { force: true });
    } catch {
      // Already gone.
    }
  };
}
