/**
 * Weights files: safetensors with torchvision's `state_dict` names, and the JSON sidecar beside
 * them (`model.safetensors` -> `model.json`) that holds the config, class names and category ids
 * a run trained with, so that `detect` and `eval` need no flags to rebuild the model.
 */
import { existsSync, readFileSync } from 'node:fs';
import { InputError } from '../core/errors.js';
import { writeAtomic } from '../core/atomic.js';
import { encodeSafetensors, readSafetensors, toFloat32 } from '../io/safetensors.js';
import { type RetinaNetConfig, architectureNames, configFor, loadConfigFile, mergeConfig } from './config.js';

/** What a sidecar holds: the model's config, its class names and category ids, and run facts. */
export interface ModelSidecar {
  config: RetinaNetConfig;
  /** Name per label (index = label). */
  classNames?: string[];
  /** COCO category id per label, for COCO results. */
  categoryIds?: number[];
  /** Anything else the writer recorded (iteration, AP, ...). */
  [extra: string]: unknown;
}

/** `model.safetensors` -> `model.json`: where the config and class names of a weights file live. */
export function sidecarPath(weightsFile: string): string {
  return weightsFile.replace(/\.safetensors$/, '') + '.json';
}

/** The sidecar of `weightsFile`, or undefined when there is none. Throws InputError when it is unreadable. */
export function readSidecar(weightsFile: string): ModelSidecar | undefined {
  const file = sidecarPath(weightsFile);
  if (!existsSync(file)) return undefined;
  let raw: ModelSidecar;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8')) as ModelSidecar;
  } catch (err) {
    throw new InputError(`cannot read ${file}: ${(err as Error).message}`);
  }
  if (!raw || typeof raw !== 'object' || !raw.config) return undefined;
  return raw;
}

/**
 * Writes `values` (shapes from `shapes`) as safetensors and the sidecar `{ config, ...extra }`,
 * each atomically (temp file + rename).
 */
export async function writeWeights(
  file: string,
  values: ReadonlyMap<string, Float32Array>,
  shapes: ReadonlyMap<string, readonly number[]>,
  config: RetinaNetConfig,
  extra: Record<string, unknown> = {},
): Promise<void> {
  const tensors = new Map([...values].map(([name, data]) => [name, { dtype: 'F32' as const, shape: [...(shapes.get(name) ?? [data.length])], data }]));
  await writeAtomic(file, encodeSafetensors(tensors, { arch: config.name, num_classes: String(config.numClasses) }));
  await writeAtomic(sidecarPath(file), JSON.stringify({ config, ...extra }, null, 2) + '\n');
}

/** Tensors found in a checkpoint that do not fit the model. */
export interface WeightMismatch {
  missing: string[];
  unexpected: string[];
  wrongShape: string[];
}

/**
 * Reads the tensors of `file` for a model whose parameters have `shapes`. Every model tensor
 * must be present with its shape; extra tensors are an error too (except BatchNorm's
 * `num_batches_tracked`), so that a wrong architecture never loads silently.
 * `describeModel` names the model in the error ("retinanet_resnet50_fpn with 91 classes").
 */
export async function readWeightsFor(file: string, shapes: ReadonlyMap<string, readonly number[]>, describeModel: string): Promise<Map<string, Float32Array>> {
  const st = await readSafetensors(file);
  const mismatch: WeightMismatch = { missing: [], unexpected: [], wrongShape: [] };
  for (const [name, shape] of shapes) {
    const t = st.tensors.get(name);
    if (!t) mismatch.missing.push(name);
    else if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      mismatch.wrongShape.push(`${name}: file [${t.shape.join(', ')}], model [${shape.join(', ')}]`);
    }
  }
  for (const name of st.tensors.keys()) {
    if (!shapes.has(name) && !name.endsWith('num_batches_tracked')) mismatch.unexpected.push(name);
  }
  const n = mismatch.missing.length + mismatch.unexpected.length + mismatch.wrongShape.length;
  if (n > 0) {
    const list = (title: string, xs: string[]): string => (xs.length ? `\n  ${title} (${xs.length}):\n    ${xs.slice(0, 20).join('\n    ')}${xs.length > 20 ? `\n    ... and ${xs.length - 20} more` : ''}` : '');
    throw new InputError(`weights ${file} do not fit ${describeModel}:` + list('missing', mismatch.missing) + list('unexpected', mismatch.unexpected) + list('wrong shape', mismatch.wrongShape));
  }
  return new Map([...shapes.keys()].map((name) => [name, Float32Array.from(toFloat32(st.tensors.get(name)!))]));
}

/** Weights without their sidecar, loaded with no architecture or config file to say what they are. */
export class MissingSidecarError extends InputError {
  override name = 'MissingSidecarError';
  constructor(
    readonly weightsFile: string,
    readonly sidecarFile: string,
  ) {
    super(`${sidecarFile} is missing (the config saved beside ${weightsFile}): say which model the weights are for with an architecture and class count, or a config file`);
  }
}

/** Where a model's config comes from, highest precedence first (see {@link resolveConfig}). */
export interface ConfigSources {
  /** A JSON config file: `{ "arch": NAME, ...overrides }`. */
  configFile?: string;
  /** A named architecture (see `architectureNames()`). */
  arch?: string;
  /** The sidecar of the weights being loaded. */
  sidecar?: ModelSidecar;
  /** Overrides applied last. */
  numClasses?: number;
  minSize?: number;
  maxSize?: number;
}

/**
 * The model config: `configFile`, else `arch`, else the weights' sidecar, else
 * retinanet_resnet50_fpn; then `numClasses`, `minSize`, `maxSize` override it. A class-count
 * override that disagrees with the config's class names drops the names.
 */
export function resolveConfig(src: ConfigSources = {}): RetinaNetConfig {
  if (src.configFile && src.arch) throw new InputError('give either an architecture or a config file, not both');
  let cfg: RetinaNetConfig;
  if (src.configFile) {
    if (!existsSync(src.configFile)) throw new InputError(`config file ${src.configFile} not found`);
    cfg = loadConfigFile(src.configFile);
  } else if (src.arch) {
    if (!architectureNames().includes(src.arch)) throw new InputError(`unknown architecture '${src.arch}'; available: ${architectureNames().join(', ')}`);
    cfg = configFor(src.arch);
  } else if (src.sidecar) {
    // A sidecar holds a complete config; merging validates it against the current schema.
    cfg = mergeConfig(configFor('retinanet_resnet50_fpn'), src.sidecar.config);
  } else {
    cfg = configFor('retinanet_resnet50_fpn');
  }
  const patch: Parameters<typeof mergeConfig>[1] = {};
  // A named architecture for weights with a sidecar keeps the sidecar's classes.
  const numClasses = src.numClasses ?? (src.arch && src.sidecar ? src.sidecar.config.numClasses : undefined);
  if (numClasses !== undefined) {
    patch.numClasses = numClasses;
    if (cfg.classNames && cfg.classNames.length !== numClasses) patch.classNames = [];
  }
  if (src.minSize !== undefined || src.maxSize !== undefined) {
    patch.transform = { minSize: src.minSize ?? cfg.transform.minSize, maxSize: src.maxSize ?? Math.max(cfg.transform.maxSize, src.minSize ?? 0) };
  }
  return mergeConfig(cfg, patch);
}
