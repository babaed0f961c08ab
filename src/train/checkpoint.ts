/**
 * Checkpoints: weights (safetensors, torchvision names), optimizer momentum (safetensors) and a
 * JSON state. Files are written to temporary names and renamed, and the state file — written
 * last — names the weight files it belongs to, so a crash mid-save never leaves a checkpoint
 * whose parts disagree.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { InputError } from '../core/errors.js';
import { writeAtomic } from '../core/atomic.js';
import { encodeSafetensors, readSafetensors, toFloat32 } from '../io/safetensors.js';
import type { RetinaNetConfig } from '../model/config.js';
import { parseTrainState } from './state_file.js';

/** Everything needed to continue a run bit for bit. */
export interface TrainState {
  version: 1;
  /** Iterations completed. */
  iteration: number;
  config: RetinaNetConfig;
  classNames: string[];
  categoryIds: number[];
  /** Options of the run (CLI flags resolved), so `--resume` needs no flags. */
  options: Record<string, unknown>;
  best?: { ap: number; iteration: number };
  /** Seconds of training so far (for the log's `time`). */
  elapsed: number;
  /** Length of the run and of its schedule (they differ only in time-budget runs). */
  plan?: { planned: number; scheduleIters: number; scheduleFrozen: boolean };
  weightsFile: string;
  optimizerFile: string;
}

function tensorsOf(values: ReadonlyMap<string, Float32Array>, shapes: ReadonlyMap<string, readonly number[]>): Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> {
  return new Map([...values].map(([n, d]) => [n, { dtype: 'F32' as const, shape: [...(shapes.get(n) ?? [d.length])], data: d }]));
}

/** Saves a resumable checkpoint into `dir` and removes the previous one's files. */
export async function saveCheckpoint(
  dir: string,
  state: Omit<TrainState, 'weightsFile' | 'optimizerFile' | 'version'>,
  params: ReadonlyMap<string, Float32Array>,
  shapes: ReadonlyMap<string, readonly number[]>,
  momentum: ReadonlyMap<string, Float32Array>,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const tag = String(state.iteration).padStart(7, '0');
  const weightsFile = `weights-${tag}.safetensors`;
  const optimizerFile = `optimizer-${tag}.safetensors`;
  await writeAtomic(path.join(dir, weightsFile), encodeSafetensors(tensorsOf(params, shapes)));
  await writeAtomic(path.join(dir, optimizerFile), encodeSafetensors(tensorsOf(momentum, shapes)));
  const full: TrainState = { version: 1, ...state, weightsFile, optimizerFile };
  await writeAtomic(path.join(dir, 'state.json'), JSON.stringify(full, null, 2) + '\n');
  for (const f of await readdir(dir)) {
    if (/^(weights|optimizer)-\d+\.safetensors$/.test(f) && f !== weightsFile && f !== optimizerFile) await rm(path.join(dir, f), { force: true });
  }
}

/** Reads the checkpoint in `dir`: its state, parameters and momentum buffers. */
export async function loadCheckpoint(dir: string): Promise<{ state: TrainState; params: Map<string, Float32Array>; momentum: Map<string, Float32Array> }> {
  const stateFile = path.join(dir, 'state.json');
  if (!existsSync(stateFile)) throw new InputError(`no checkpoint in ${dir} (missing state.json)`);
  let text: string;
  try {
    text = await readFile(stateFile, 'utf8');
  } catch (err) {
    throw new InputError(`cannot read checkpoint state ${stateFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const state = parseTrainState(text, stateFile);
  const read = async (f: string): Promise<Map<string, Float32Array>> => {
    const st = await readSafetensors(path.join(dir, f));
    return new Map([...st.tensors].map(([n, t]) => [n, Float32Array.from(toFloat32(t))]));
  };
  return { state, params: await read(state.weightsFile), momentum: await read(state.optimizerFile) };
}
