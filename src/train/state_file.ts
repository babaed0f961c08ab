/**
 * Reading a checkpoint's `state.json` (see checkpoint.ts): the file is checked field by field, so
 * that a damaged or hand-edited state is an `InputError` naming the field, never a crash later
 * in the trainer or the CLI, and so that it cannot point at weight files outside its folder.
 */
import { InputError } from '../core/errors.js';
import { configFor, mergeConfig, type RetinaNetConfig } from '../model/config.js';
import type { TrainState } from './checkpoint.js';

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** Parses and checks the text of `file` (a state.json). */
export function parseTrainState(text: string, file: string): TrainState {
  const bad = (what: string): never => {
    throw new InputError(`corrupt checkpoint state ${file}: ${what} (restore the file from a backup, or start the run again without resuming)`);
  };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return bad((err as Error).message);
  }
  if (!isRecord(raw)) return bad('not a JSON object');
  if (raw.version !== 1) throw new InputError(`checkpoint ${file} has unsupported version ${typeof raw.version === 'number' ? raw.version : JSON.stringify(raw.version ?? null).slice(0, 20)}`);
  if (!isCount(raw.iteration)) bad('"iteration" must be a whole number >= 0');
  if (!(typeof raw.elapsed === 'number' && Number.isFinite(raw.elapsed) && raw.elapsed >= 0)) bad('"elapsed" must be a number of seconds >= 0');
  if (!isRecord(raw.options) || (raw.options.cli !== undefined && !isRecord(raw.options.cli))) bad('"options" must be an object (and its "cli", when present, too)');
  if (!Array.isArray(raw.classNames) || !raw.classNames.every((n) => typeof n === 'string')) bad('"classNames" must be a list of strings');
  if (!Array.isArray(raw.categoryIds) || !raw.categoryIds.every((n) => typeof n === 'number' && Number.isFinite(n))) bad('"categoryIds" must be a list of numbers');
  if (raw.best !== undefined) {
    const b = raw.best;
    if (!isRecord(b) || typeof b.ap !== 'number' || !Number.isFinite(b.ap) || !isCount(b.iteration)) bad('"best" must be {"ap": number, "iteration": number}');
  }
  if (raw.plan !== undefined) {
    const p = raw.plan;
    if (!isRecord(p) || !isCount(p.planned) || !isCount(p.scheduleIters) || typeof p.scheduleFrozen !== 'boolean') bad('"plan" must be {"planned": number, "scheduleIters": number, "scheduleFrozen": boolean}');
  }
  for (const key of ['weightsFile', 'optimizerFile'] as const) {
    const f = raw[key];
    // Names of files beside state.json: a path elsewhere (../, /) is refused.
    if (typeof f !== 'string' || !/^[^/\\]+\.safetensors$/.test(f) || f.startsWith('..')) bad(`"${key}" must be the name of a .safetensors file in the checkpoint folder`);
  }
  if (!isRecord(raw.config)) bad('"config" must be an object');
  let config: RetinaNetConfig;
  try {
    config = mergeConfig(configFor('retinanet_resnet50_fpn'), raw.config as Parameters<typeof mergeConfig>[1]);
  } catch (err) {
    return bad((err as Error).message);
  }
  return { ...(raw as unknown as TrainState), config };
}
