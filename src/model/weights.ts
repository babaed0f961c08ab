/**
 * Weights files: safetensors with torchvision's `state_dict` names, and the JSON sidecar beside
 * them (`model.safetensors` -> `model.json`) that holds the config, class names and category ids
 * a run trained with, so that `detect` and `eval` need no flags to rebuild the model.
 */
import { InputError } from '../core/errors.js';
import { fs } from '../platform/files.js';
import { encodeSafetensors, toFloat32, type Tensor } from '../io/safetensors.js';
import { type TensorFile, readTensorFile } from '../io/pytorch_file.js';
import { type RetinaNetConfig, architectureNames, configFor, loadConfigFile, mergeConfig } from './config.js';

const { existsSync, readFileSync, writeAtomic } = fs;

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
  checkSidecar(raw, file);
  return raw;
}

/** The fields a sidecar's reader uses have the types it expects (the config itself is checked by mergeConfig). */
function checkSidecar(raw: ModelSidecar, file: string): void {
  const bad = (what: string): never => {
    throw new InputError(`${file}: ${what} (fix the file, or delete it and give the model's architecture and classes instead)`);
  };
  if (typeof raw.config !== 'object' || Array.isArray(raw.config)) bad('"config" must be an object');
  if (raw.classNames !== undefined && !(Array.isArray(raw.classNames) && raw.classNames.every((n) => typeof n === 'string'))) bad('"classNames" must be a list of strings');
  if (raw.categoryIds !== undefined && !(Array.isArray(raw.categoryIds) && raw.categoryIds.every((n) => typeof n === 'number' && Number.isFinite(n)))) {
    bad('"categoryIds" must be a list of numbers');
  }
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

/** The classification layer, the one tensor pair that depends on the class count. */
export const CLASSIFIER_PREFIX = 'head.classification_head.cls_logits.';

/** Options of {@link readWeightsFor} and `RetinaNet.loadWeights`. */
export interface LoadWeightsOptions {
  /**
   * Fine-tuning: when the file's classification layer (`head.classification_head.cls_logits.*`)
   * is for another number of classes, or absent, load every other tensor and leave the layer
   * to its initialiser (the paper's: normal std 0.01, bias -log((1 - pi) / pi), pi = 0.01).
   * Every other tensor must still be present with its shape. Without it (detect, eval), any
   * mismatch is an error.
   */
  replaceClassifier?: boolean;
}

/** What a load took from a weights file and what it left to the initialisers. */
export interface WeightsLoadReport {
  file: string;
  /** The file's format (told by content, not name). */
  format: TensorFile['format'];
  /** Model parameters set from the file, in model order. */
  loaded: string[];
  /** Model parameters not in the file (or not fitting, when allowed) that keep their initialiser's values. */
  initialized: string[];
  /** File tensors left unused because the load ignores them (`num_batches_tracked`, a backbone's `fc.*`). */
  ignored: string[];
  /** The class count of the file's classifier, when the load replaced it. */
  fileClasses?: number;
}

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Names without a `module.` prefix (DataParallel/DDP) when every tensor has it. */
function withoutModulePrefix(tensors: Map<string, Tensor>): Map<string, Tensor> {
  const names = [...tensors.keys()];
  if (names.length === 0 || !names.every((n) => n.startsWith('module.'))) return tensors;
  return new Map([...tensors].map(([n, t]) => [n.slice('module.'.length), t]));
}

/**
 * torchvision's renames of RetinaNet checkpoints written before its version-2 modules (as its
 * `_load_from_state_dict` does for `version < 2`): `backbone.fpn.{inner,layer}_blocks.<i>.<w|b>`
 * -> `...<i>.0.<w|b>` and `head.<head>.conv.<2i>.<w|b>` -> `head.<head>.conv.<i>.0.<w|b>`. The
 * published `retinanet_resnet50_fpn_coco` checkpoint predates them. Other names pass unchanged.
 */
export function upgradeTorchvisionNames(tensors: Map<string, Tensor>): Map<string, Tensor> {
  const rename = (name: string): string =>
    name
      .replace(/^(backbone\.fpn\.(?:inner|layer)_blocks\.\d+)\.(weight|bias)$/, '$1.0.$2')
      .replace(/^(head\.(?:classification|regression)_head\.conv)\.(\d+)\.(weight|bias)$/, (_m, head: string, i: string, type: string) => (Number(i) % 2 === 0 ? `${head}.${Number(i) / 2}.0.${type}` : _m));
  const names = [...tensors.keys()];
  if (!names.some((n) => rename(n) !== n)) return tensors;
  return new Map([...tensors].map(([n, t]) => [tensors.has(rename(n)) ? n : rename(n), t]));
}

function mismatchError(file: string, describeModel: string, m: WeightMismatch, hint = ''): InputError {
  const list = (title: string, xs: string[]): string => (xs.length ? `\n  ${title} (${xs.length}):\n    ${xs.slice(0, 20).join('\n    ')}${xs.length > 20 ? `\n    ... and ${xs.length - 20} more` : ''}` : '');
  return new InputError(`weights ${file} do not fit ${describeModel}:` + list('missing', m.missing) + list('unexpected', m.unexpected) + list('wrong shape', m.wrongShape) + hint);
}

/**
 * Matches the tensors of `file` (by their names after `rename`; null drops a tensor into
 * `ignored`) to model parameters of `shapes`. `optional(name)` parameters may be absent or
 * shaped otherwise: they are reported as initialised instead of failing.
 */
function matchTensors(
  file: string,
  st: TensorFile,
  shapes: ReadonlyMap<string, readonly number[]>,
  describeModel: string,
  rename: (fileName: string) => string | null,
  optional: (name: string) => boolean,
  hint = '',
): { values: Map<string, Float32Array>; report: WeightsLoadReport } {
  const tensors = new Map<string, Tensor>();
  const fileName = new Map<string, string>();
  const ignored: string[] = [];
  for (const [name, t] of withoutModulePrefix(st.tensors)) {
    const to = rename(name);
    if (to === null || name.endsWith('num_batches_tracked')) ignored.push(name);
    else {
      tensors.set(to, t);
      fileName.set(to, name);
    }
  }
  const mismatch: WeightMismatch = { missing: [], unexpected: [], wrongShape: [] };
  const values = new Map<string, Float32Array>();
  const initialized: string[] = [];
  for (const [name, shape] of shapes) {
    const t = tensors.get(name);
    const fits = t !== undefined && sameShape(t.shape, shape);
    if (fits) values.set(name, Float32Array.from(toFloat32(t)));
    else if (optional(name)) initialized.push(name);
    else if (!t) mismatch.missing.push(name);
    else mismatch.wrongShape.push(`${name}: file ${shapeText(t.shape)}, model ${shapeText(shape)}`);
  }
  for (const name of tensors.keys()) if (!shapes.has(name)) mismatch.unexpected.push(fileName.get(name)!);
  if (mismatch.missing.length + mismatch.unexpected.length + mismatch.wrongShape.length > 0) throw mismatchError(file, describeModel, mismatch, hint);
  return { values, report: { file, format: st.format, loaded: [...values.keys()], initialized, ignored } };
}

/**
 * Reads the tensors of `file` (safetensors or a PyTorch checkpoint, told by content) for a model
 * whose parameters have `shapes`. Every model tensor must be present with its shape; extra
 * tensors are an error too (except BatchNorm's `num_batches_tracked`), so that a wrong
 * architecture never loads silently. `describeModel` names the model in the error
 * ("retinanet_resnet50_fpn with 91 classes"). With `replaceClassifier`, see {@link LoadWeightsOptions}.
 */
export async function readWeightsFor(file: string, shapes: ReadonlyMap<string, readonly number[]>, describeModel: string, opts: LoadWeightsOptions = {}): Promise<Map<string, Float32Array>> {
  return (await readWeightsReport(file, shapes, describeModel, opts)).values;
}

/** {@link readWeightsFor} with the report of what was loaded and what was left to initialisers. */
export async function readWeightsReport(
  file: string,
  shapes: ReadonlyMap<string, readonly number[]>,
  describeModel: string,
  opts: LoadWeightsOptions = {},
  anchorsPerLocation = 9,
): Promise<{ values: Map<string, Float32Array>; report: WeightsLoadReport }> {
  const st = await readTensorFile(file);
  const isClassifier = (name: string): boolean => name.startsWith(CLASSIFIER_PREFIX);
  const looksLikeBackbone = st.tensors.has('conv1.weight') && st.tensors.has('layer1.0.conv1.weight');
  const hint = looksLikeBackbone ? `\n  (${file} holds a bare ResNet, e.g. ImageNet weights: load it as backbone weights, --backbone-weights)` : '';
  const upgraded: TensorFile = { ...st, tensors: upgradeTorchvisionNames(withoutModulePrefix(st.tensors)) };
  const out = matchTensors(file, upgraded, shapes, describeModel, (n) => n, (n) => opts.replaceClassifier === true && isClassifier(n), hint);
  if (out.report.initialized.length > 0) {
    const w = withoutModulePrefix(st.tensors).get(`${CLASSIFIER_PREFIX}weight`);
    if (w && w.shape.length === 4 && w.shape[0]! % anchorsPerLocation === 0) out.report.fileClasses = w.shape[0]! / anchorsPerLocation;
  }
  return out;
}

/**
 * The depth of the torchvision ResNet whose state_dict names (without prefix) are the keys of
 * `tensors` (18, 34, 50 or 101), from its blocks per stage and block type; undefined for
 * anything else.
 */
export function resnetDepthOf(tensors: ReadonlyMap<string, { shape: number[] }>): number | undefined {
  const blocks = [1, 2, 3, 4].map((l) => {
    let n = 0;
    while (tensors.has(`layer${l}.${n}.conv1.weight`)) n++;
    return n;
  });
  const bottleneck = tensors.has('layer1.0.conv3.weight');
  const key = `${blocks.join(',')}${bottleneck ? 'b' : ''}`;
  return ({ '2,2,2,2': 18, '3,4,6,3': 34, '3,4,6,3b': 50, '3,4,23,3b': 101 } as Record<string, number>)[key];
}

/** The prefix of a RetinaNet's ResNet parameters; a bare ResNet's names lack it. */
export const BACKBONE_PREFIX = 'backbone.body.';

/**
 * Reads an ImageNet ResNet `state_dict` (torchvision's `resnet50` names: `conv1.weight`,
 * `bn1.running_mean`, `layer1.0.conv1.weight`, ...) for the `backbone.body.*` parameters of
 * `shapes`; `fc.*` and `num_batches_tracked` are ignored. Every backbone parameter must be
 * there with its shape (a ResNet-18 file for a ResNet-50 backbone is an error naming the
 * tensors); the other model parameters are reported as initialised.
 */
export async function readBackboneWeights(file: string, shapes: ReadonlyMap<string, readonly number[]>, describeModel: string): Promise<{ values: Map<string, Float32Array>; report: WeightsLoadReport }> {
  const st = await readTensorFile(file);
  const backbone = new Map([...shapes].filter(([n]) => n.startsWith(BACKBONE_PREFIX)));
  const fileDepth = resnetDepthOf(withoutModulePrefix(st.tensors));
  const modelDepth = resnetDepthOf(new Map([...backbone].map(([n, s]) => [n.slice(BACKBONE_PREFIX.length), { shape: [...s] }])));
  const hint = st.tensors.has(`${BACKBONE_PREFIX}conv1.weight`)
    ? `\n  (${file} holds a whole RetinaNet: load it as weights, --weights, not as backbone weights)`
    : fileDepth && modelDepth && fileDepth !== modelDepth
      ? `\n  (${file} holds a ResNet-${fileDepth}; the model's backbone is a ResNet-${modelDepth}: choose an architecture or config with backbone depth ${fileDepth})`
      : [...st.tensors.keys()].some((n) => n.endsWith('.running_mean')) && !shapes.has(`${BACKBONE_PREFIX}bn1.running_mean`)
        ? `\n  (${file} is a BatchNorm ResNet and the model's backbone uses GroupNorm (backbone.norm 'group_norm'): its statistics have nowhere to go; load it into a frozen_bn backbone such as retinanet_resnet18_fpn_small, or use a GroupNorm checkpoint)`
        : '';
  const out = matchTensors(file, st, backbone, `the ResNet backbone of ${describeModel}`, (n) => (n.startsWith('fc.') ? null : BACKBONE_PREFIX + n), () => false, hint);
  out.report.initialized = [...shapes.keys()].filter((n) => !backbone.has(n));
  return out;
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
