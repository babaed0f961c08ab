/**
 * Flag parsing and model/dataset resolution shared by the `train`, `detect`, `eval` and `demo`
 * commands, so every command validates input the same way and fails with the same clear messages.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { UserError } from './command.js';
import { type DatasetFormat, DATASET_FORMATS, formatProblem, loadDataset } from '../data/datasets/index.js';
import { type RetinaNetConfig, architectureNames, configFor, loadConfigFile, mergeConfig } from '../model/config.js';
import { sidecarPath } from '../model/model.js';
import { type SampleSource, datasetSource } from '../data/source.js';

type Values = Record<string, string | boolean | undefined>;

/** parseArgs definitions of the flags that choose a model (shared by train, detect, eval). */
export const MODEL_FLAGS = {
  arch: { type: 'string' },
  config: { type: 'string' },
  'num-classes': { type: 'string' },
  'min-size': { type: 'string' },
  'max-size': { type: 'string' },
} as const;

/** parseArgs definitions of the post-processing and runtime flags (detect, eval). */
export const INFERENCE_FLAGS = {
  'score-thresh': { type: 'string' },
  'nms-thresh': { type: 'string' },
  'detections-per-img': { type: 'string' },
  threads: { type: 'string' },
} as const;

/** The values of INFERENCE_FLAGS, checked. */
export function inferenceOptions(values: Values): { threads?: number; scoreThresh?: number; nmsThresh?: number; detectionsPerImg?: number } {
  return {
    threads: numberFlag(values, 'threads', { integer: true, min: 1 }),
    scoreThresh: numberFlag(values, 'score-thresh', { min: 0, max: 1 }),
    nmsThresh: numberFlag(values, 'nms-thresh', { min: 0, max: 1 }),
    detectionsPerImg: numberFlag(values, 'detections-per-img', { integer: true, min: 1 }),
  };
}

/** A numeric flag, checked: `--name` must be a number (integer if asked) within [min, max]. */
export function numberFlag(values: Values, name: string, opts: { integer?: boolean; min?: number; max?: number } = {}): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || raw.trim() === '') throw new UserError(`--${name} needs a value`);
  const v = Number(raw);
  if (!Number.isFinite(v) || (opts.integer && !Number.isInteger(v))) throw new UserError(`--${name} must be ${opts.integer ? 'an integer' : 'a number'}, got '${raw}'`);
  if (opts.min !== undefined && v < opts.min) throw new UserError(`--${name} must be >= ${opts.min}, got ${v}`);
  if (opts.max !== undefined && v > opts.max) throw new UserError(`--${name} must be <= ${opts.max}, got ${v}`);
  return v;
}

/** A duration in seconds: `900`, `900s`, `15m`, `1.5h`. */
export function durationFlag(values: Values, name: string): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || raw.trim() === '') throw new UserError(`--${name} needs a value`);
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(s|m|min|h)?\s*$/.exec(raw);
  const seconds = m ? Number(m[1]) * ({ s: 1, m: 60, min: 60, h: 3600 }[m[2] ?? 's'] ?? 1) : NaN;
  if (!(seconds > 0)) throw new UserError(`--${name} must be a positive duration such as 900, 900s, 15m or 1.5h, got '${raw}'`);
  return seconds;
}

export function stringFlag(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** A comma-separated list of integers (e.g. `--scale-jitter 640,672,704`). */
export function intListFlag(values: Values, name: string): number[] | undefined {
  const raw = stringFlag(values, name);
  if (raw === undefined) return undefined;
  const xs = raw.split(',').map((s) => Number(s.trim()));
  if (xs.length === 0 || xs.some((x) => !Number.isInteger(x) || x <= 0)) throw new UserError(`--${name} must be a comma-separated list of positive integers, got '${raw}'`);
  return xs;
}

/** Sidecar written next to weights by `train` (config, class names, category ids). */
export interface ModelSidecar {
  config: RetinaNetConfig;
  classNames?: string[];
  categoryIds?: number[];
}

export function readSidecar(weights: string): ModelSidecar | undefined {
  const file = sidecarPath(weights);
  if (!existsSync(file)) return undefined;
  try {
    const raw = JSON.parse(readFileSync(file, 'utf8')) as ModelSidecar;
    if (!raw.config) return undefined;
    return raw;
  } catch (err) {
    throw new UserError(`cannot read ${file}: ${(err as Error).message}`);
  }
}

/**
 * The model config for a command: `--config FILE`, else `--arch NAME`, else the sidecar of
 * `--weights`, else retinanet_resnet50_fpn; then `--num-classes`, `--min-size`, `--max-size`.
 */
export function resolveConfig(values: Values, sidecar?: ModelSidecar): RetinaNetConfig {
  const configFile = stringFlag(values, 'config');
  const arch = stringFlag(values, 'arch');
  if (configFile && arch) throw new UserError('give either --arch or --config, not both');
  let cfg: RetinaNetConfig;
  if (configFile) {
    if (!existsSync(configFile)) throw new UserError(`config file ${configFile} not found`);
    cfg = loadConfigFile(configFile);
  } else if (arch) {
    if (!architectureNames().includes(arch)) throw new UserError(`unknown --arch '${arch}'; available: ${architectureNames().join(', ')}`);
    cfg = configFor(arch);
  } else if (sidecar) {
    // A sidecar holds a complete config; merging validates it against the current schema.
    cfg = mergeConfig(configFor('retinanet_resnet50_fpn'), sidecar.config);
  } else {
    cfg = configFor('retinanet_resnet50_fpn');
  }
  const numClasses = numberFlag(values, 'num-classes', { integer: true, min: 1 });
  const minSize = numberFlag(values, 'min-size', { integer: true, min: 32 });
  const maxSize = numberFlag(values, 'max-size', { integer: true, min: 32 });
  const patch: Parameters<typeof mergeConfig>[1] = {};
  if (numClasses !== undefined) {
    patch.numClasses = numClasses;
    if (cfg.classNames && cfg.classNames.length !== numClasses) patch.classNames = [];
  }
  if (minSize !== undefined || maxSize !== undefined) {
    patch.transform = { minSize: minSize ?? cfg.transform.minSize, maxSize: maxSize ?? Math.max(cfg.transform.maxSize, minSize ?? 0) };
  }
  return mergeConfig(cfg, patch);
}

/** Reads a dataset given on the command line and reports its problems on stderr. */
export async function loadSource(p: string, values: Values, splitFlag = 'split'): Promise<SampleSource> {
  if (!existsSync(p)) throw new UserError(`dataset ${p} not found`);
  const format = stringFlag(values, 'format');
  if (format && !DATASET_FORMATS.includes(format as DatasetFormat)) throw new UserError(`--format must be one of ${DATASET_FORMATS.join(', ')}, got '${format}'`);
  const split = stringFlag(values, splitFlag);
  const { dataset, problems } = await loadDataset(p, {
    format: format as DatasetFormat | undefined,
    imagesDir: stringFlag(values, 'images'),
    split,
    strict: values['strict'] === true,
    checkImages: 'header',
  });
  if (problems.length > 0) {
    process.stderr.write(`${p}: ${problems.length} problem(s) found, affected items skipped (use --strict to stop instead):\n`);
    for (const pr of problems.slice(0, 10)) process.stderr.write(`  ${formatProblem(pr)}\n`);
    if (problems.length > 10) process.stderr.write(`  ... and ${problems.length - 10} more (run 'retinanet data check' for all)\n`);
  }
  if (dataset.images.length === 0) throw new UserError(`dataset ${p} has no usable images`);
  return datasetSource(dataset);
}

export function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
