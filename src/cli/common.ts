/**
 * Flag parsing and model/dataset resolution shared by the `train`, `detect`, `eval` and `demo`
 * commands, so every command validates input the same way and fails with the same clear messages.
 */
import { existsSync, readFileSync } from 'node:fs';
export { isDirectory } from '../core/output.js';
import { UserError } from './command.js';
import path from 'node:path';
import { ProgressBar } from './progress.js';
import { type FlagValues, numberFlag, sizeFlag, stringFlag } from '../core/flags.js';
import { type DatasetFormat, DATASET_FORMATS, DatasetError, formatProblem, loadDataset } from '../data/datasets/index.js';
import { type RetinaNetConfig, architectureNames } from '../model/config.js';
import { type ConfigSources, MissingSidecarError, type ModelSidecar, resolveConfig as resolveModelConfig } from '../model/weights.js';
import { RetinaNet, defaultMaxMemory } from '../model/model.js';
import { type Detector, isOnnxModelFile, loadDetector } from '../model/detector.js';
import { type SampleSource, datasetSource } from '../data/source.js';
import { findPretrained, isWeightsUrl, pretrainedNames } from '../model/pretrained.js';
import { type StartingWeights, defaultTrainableLayers } from '../model/finetune.js';
import { fetchWithProgress } from './weights.js';

type Values = FlagValues;

export { durationFlag, intListFlag, numberFlag, sizeFlag, stringFlag } from '../core/flags.js';

/** `a` quoted for a POSIX shell when it needs it. */
export function shellQuote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`;
}

/** The command as typed (`retinanet` and its arguments), for reports. */
export function commandLine(): string {
  return ['retinanet', ...process.argv.slice(2)].map(shellQuote).join(' ');
}

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

/** parseArgs definitions of the image and memory flags (train, detect, eval, data check). */
export const IMAGE_FLAGS = {
  'max-pixels': { type: 'string' },
  'max-memory': { type: 'string' },
} as const;

/**
 * Applies IMAGE_FLAGS for this process and its worker threads (which inherit the environment):
 * `--max-pixels` sets the decoder's pixel limit.
 */
export function applyImageFlags(values: Values): void {
  const maxPixels = numberFlag(values, 'max-pixels', { integer: true, min: 1 });
  if (maxPixels !== undefined) process.env['RETINANET_MAX_PIXELS'] = String(maxPixels);
}

/** The values of INFERENCE_FLAGS, checked. */
export function inferenceOptions(values: Values): { threads?: number; scoreThresh?: number; nmsThresh?: number; detectionsPerImg?: number } {
  return {
    threads: numberFlag(values, 'threads', { integer: true, min: 1 }),
    scoreThresh: numberFlag(values, 'score-thresh', { min: 0, max: 1 }),
    nmsThresh: numberFlag(values, 'nms-thresh', { min: 0, max: 1 }),
    detectionsPerImg: numberFlag(values, 'detections-per-img', { integer: true, min: 1 }),
  };
}

/**
 * The model config for a command, from MODEL_FLAGS and the weights' sidecar: `--config FILE`,
 * else `--arch NAME`, else the sidecar, else retinanet_resnet50_fpn; then `--num-classes`,
 * `--min-size`, `--max-size` (precedence of model/weights.ts `resolveConfig`).
 */
export function resolveConfig(values: Values, sidecar?: ModelSidecar): RetinaNetConfig {
  return resolveModelConfig({ ...configSources(values), sidecar });
}

/** The flags of MODEL_FLAGS as config sources for `RetinaNet.fromWeights`. */
export function configSources(values: Values): Omit<ConfigSources, 'sidecar'> {
  if (stringFlag(values, 'config') && stringFlag(values, 'arch')) throw new UserError('give either --arch or --config, not both');
  const arch = stringFlag(values, 'arch');
  if (arch && !architectureNames().includes(arch)) throw new UserError(`unknown --arch '${arch}'; available: ${architectureNames().join(', ')}`);
  return {
    configFile: stringFlag(values, 'config'),
    arch,
    numClasses: numberFlag(values, 'num-classes', { integer: true, min: 1 }),
    minSize: numberFlag(values, 'min-size', { integer: true, min: 32 }),
    maxSize: numberFlag(values, 'max-size', { integer: true, min: 32 }),
  };
}

/** Reads a dataset given on the command line and reports its problems on stderr. */
export async function loadSource(p: string, values: Values, splitFlag = 'split'): Promise<SampleSource> {
  if (!existsSync(p)) throw new UserError(`dataset ${p} not found`);
  const format = stringFlag(values, 'format');
  if (format && !DATASET_FORMATS.includes(format as DatasetFormat)) throw new UserError(`--format must be one of ${DATASET_FORMATS.join(', ')}, got '${format}'`);
  const split = stringFlag(values, splitFlag);
  let loaded;
  // Reading every image's header takes a while on big datasets: show it.
  let bar: ProgressBar | undefined;
  try {
    loaded = await loadDataset(p, {
      onProgress: (done, total) => {
        if (values['quiet'] === true || total < 500) return;
        bar ??= new ProgressBar(total, `scanning ${path.basename(p)}`);
        bar.update(done);
      },
      format: format as DatasetFormat | undefined,
      imagesDir: stringFlag(values, 'images'),
      split,
      strict: values['strict'] === true,
      checkImages: 'header',
    });
  } catch (err) {
    bar?.done();
    if (err instanceof DatasetError && err.strict) throw new UserError(err.message.replace('(strict mode: stopped at the first problem)', '(--strict stops at the first problem; without it this item would be left out with a warning)'));
    throw err;
  }
  bar?.done();
  const { dataset, problems } = loaded;
  if (problems.length > 0) {
    process.stderr.write(`${p}: ${problems.length} problem(s) found, affected items skipped (use --strict to stop instead):\n`);
    for (const pr of problems.slice(0, 10)) process.stderr.write(`  ${formatProblem(pr)}\n`);
    if (problems.length > 10) process.stderr.write(`  ... and ${problems.length - 10} more (run 'retinanet data check' for all)\n`);
  }
  if (dataset.images.length === 0) throw new UserError(`dataset ${p} has no usable images`);
  return datasetSource(dataset);
}


/**
 * Checks a weights flag without touching the network: a file, a named checkpoint of the right
 * kind (a detector for --weights, an ImageNet ResNet for --backbone-weights) or an http(s) URL.
 */
export function checkWeightsSpec(spec: string, flag: string, kind: 'retinanet' | 'backbone' = 'retinanet'): void {
  if (existsSync(spec) || isWeightsUrl(spec)) return;
  const entry = findPretrained(spec);
  if (!entry) throw new UserError(`${flag} ${spec} not found: neither a file nor named weights (${pretrainedNames().join(', ')}; see 'retinanet weights list') nor an http(s) URL`);
  if (entry.kind !== kind) {
    throw new UserError(kind === 'retinanet'
      ? `${flag} ${spec}: ${spec} is an ImageNet backbone, not a detector; start a training run from it with 'retinanet train --backbone-weights ${spec}'`
      : `${flag} ${spec}: ${spec} is a whole detector, not a backbone; start from it with --weights ${spec}`);
  }
}

/**
 * The file behind a weights flag: a file as it is; a NAME or URL downloaded into the cache on
 * first use (progress on stderr unless `quiet`), checked and converted (model/pretrained.ts).
 */
export async function weightsFile(spec: string, flag: string, kind: 'retinanet' | 'backbone' = 'retinanet', quiet = false): Promise<string> {
  checkWeightsSpec(spec, flag, kind);
  if (existsSync(spec)) return spec;
  return (await fetchWithProgress(spec, quiet)).loc.file;
}

/**
 * The model of `--weights` (a file, a NAME or a URL, or a model exported to .onnx) with the
 * MODEL_FLAGS applied; weights without their sidecar need --arch/--num-classes or --config,
 * and the error says so.
 */
export async function loadModel(weights: string, values: Values): Promise<Detector> {
  if (isOnnxModelFile(weights)) {
    if (!existsSync(weights)) throw new UserError(`--weights ${weights} not found`);
    return loadDetector(weights, configSources(values));
  }
  const file = await weightsFile(weights, '--weights', 'retinanet', values['quiet'] === true);
  try {
    const model = await RetinaNet.fromWeights(file, configSources(values));
    // One compiled session per input shape: photos of many aspect ratios stay within the budget.
    await model.setMemoryBudget(sizeFlag(values, 'max-memory') ?? defaultMaxMemory());
    return model;
  } catch (err) {
    if (err instanceof MissingSidecarError) {
      throw new UserError(`${err.sidecarFile} is missing (the config 'retinanet train' saves beside the weights): give --arch NAME and --num-classes N, or --config FILE, to say which model ${err.weightsFile} holds`);
    }
    throw err;
  }
}

/** What `train` starts from: the files of --weights / --backbone-weights, and the trainable backbone stages. */
export interface TrainStart extends StartingWeights {
  /** --trainable-backbone-layers, else torchvision's default (3 pretrained, 5 from scratch); undefined: the --config file's. */
  trainableLayers?: number;
  /** The named ImageNet ResNet of --backbone-weights, for an early depth check. */
  backboneDepth?: number;
}

/**
 * The train flags that choose where a run starts: --weights and --backbone-weights (files,
 * NAMEs or URLs, fetched into the cache here) and --trainable-backbone-layers (0-5; default 3
 * with pretrained weights, 5 without, unless a --config file sets backbone.trainableLayers).
 */
export async function trainStart(values: Values, quiet: boolean): Promise<TrainStart> {
  const weights = stringFlag(values, 'weights');
  const backbone = stringFlag(values, 'backbone-weights');
  if (weights && backbone) throw new UserError('give either --weights or --backbone-weights, not both (a RetinaNet checkpoint holds its backbone)');
  const given = numberFlag(values, 'trainable-backbone-layers', { integer: true, min: 0, max: 5 });
  if (weights) checkWeightsSpec(weights, '--weights', 'retinanet');
  if (backbone) checkWeightsSpec(backbone, '--backbone-weights', 'backbone');
  const configFile = stringFlag(values, 'config');
  let fromConfig = false;
  if (given === undefined && configFile && existsSync(configFile)) {
    try {
      const raw = JSON.parse(readFileSync(configFile, 'utf8')) as { backbone?: { trainableLayers?: unknown } };
      fromConfig = raw.backbone?.trainableLayers !== undefined;
    } catch {
      // resolveConfig reports an unreadable config file.
    }
  }
  return {
    weights: weights ? await weightsFile(weights, '--weights', 'retinanet', quiet) : undefined,
    backboneWeights: backbone ? await weightsFile(backbone, '--backbone-weights', 'backbone', quiet) : undefined,
    trainableLayers: given ?? (fromConfig ? undefined : defaultTrainableLayers(weights !== undefined || backbone !== undefined)),
    backboneDepth: backbone ? findPretrained(backbone)?.depth : undefined,
  };
}
