/**
 * What a queued job carries of its model: the weights' path and the SHA-256 of their content
 * (and of the sidecar and config file beside them), the options that change the model's config,
 * and the inference options. Workers find the weights at the same path (shared storage), hash
 * them, and refuse a job whose content hash differs from theirs, so a shard never runs with a
 * different model than the one the producer asked for.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { InputError } from '../core/errors.js';
import { sidecarPath } from '../model/weights.js';
import { isOnnxModelFile } from '../model/detector.js';

/** The model of a run: where its files are, their content hashes, and the config overrides. */
export interface ModelSpec {
  /** What the user named: a path, a NAME of the weights list or a URL (workers resolve NAMEs and URLs themselves when the path is not theirs). */
  spec: string;
  /** The weights file on the producer's machine, absolute. */
  file: string;
  /** SHA-256 (hex) of the weights file. */
  weightsSha256: string;
  /** SHA-256 of the sidecar (`model.json` beside `model.safetensors`), null when there is none. */
  sidecarSha256: string | null;
  /** `--config FILE`, absolute, and the SHA-256 of its content. */
  configFile?: string;
  configSha256?: string;
  arch?: string;
  numClasses?: number;
  minSize?: number;
  maxSize?: number;
}

/** What each image of a job is detected with, the same for every shard of a run. */
export interface JobOptions {
  scoreThresh?: number;
  nmsThresh?: number;
  detectionsPerImg?: number;
  /** Pixel limit of the decoder (the producer's --max-pixels); default: the worker's. */
  maxPixels?: number;
  /** COCO category id per model label; results of labels mapped to a negative id are dropped (evaluation of shared classes). */
  categoryIds: number[];
  /** Drop results whose category id is negative (labels a dataset lacks, when evaluating). */
  dropNegative?: boolean;
}

/** The config overrides of a ModelSpec, as `RetinaNet.fromWeights` / `loadDetector` take them. */
export function modelOverrides(m: ModelSpec, configFile = m.configFile): { configFile?: string; arch?: string; numClasses?: number; minSize?: number; maxSize?: number } {
  return { configFile, arch: m.arch, numClasses: m.numClasses, minSize: m.minSize, maxSize: m.maxSize };
}

const hashCache = new Map<string, { key: string; sha256: string }>();

/** SHA-256 (hex) of a file's content, cached while its size, modification time and inode stay the same. */
export async function fileSha256(file: string): Promise<string> {
  const abs = path.resolve(file);
  const st = statSync(abs);
  const key = `${st.size}:${st.mtimeMs}:${st.ino}`;
  const hit = hashCache.get(abs);
  if (hit && hit.key === key) return hit.sha256;
  const hash = createHash('sha256');
  await new Promise<void>((resolve, reject) => {
    createReadStream(abs)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve())
      .on('error', reject);
  });
  const sha256 = hash.digest('hex');
  hashCache.set(abs, { key, sha256 });
  return sha256;
}

/** The sidecar a weights file is read with (none for an exported .onnx model). */
function sidecarOf(weightsFile: string): string | undefined {
  if (isOnnxModelFile(weightsFile)) return undefined;
  const s = sidecarPath(weightsFile);
  return s !== weightsFile && existsSync(s) ? s : undefined;
}

/** The ModelSpec of weights at `file` (already resolved from `spec`) with config overrides. */
export async function describeModel(
  spec: string,
  file: string,
  overrides: { configFile?: string; arch?: string; numClasses?: number; minSize?: number; maxSize?: number } = {},
): Promise<ModelSpec> {
  const abs = path.resolve(file);
  const sidecar = sidecarOf(abs);
  const configFile = overrides.configFile !== undefined ? path.resolve(overrides.configFile) : undefined;
  return {
    spec,
    file: abs,
    weightsSha256: await fileSha256(abs),
    sidecarSha256: sidecar ? await fileSha256(sidecar) : null,
    ...(configFile !== undefined ? { configFile, configSha256: await fileSha256(configFile) } : {}),
    ...(overrides.arch !== undefined ? { arch: overrides.arch } : {}),
    ...(overrides.numClasses !== undefined ? { numClasses: overrides.numClasses } : {}),
    ...(overrides.minSize !== undefined ? { minSize: overrides.minSize } : {}),
    ...(overrides.maxSize !== undefined ? { maxSize: overrides.maxSize } : {}),
  };
}

/** JSON with object keys sorted, so equal values hash equally. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/**
 * The content hash of a model and its options: SHA-256 over the weights', sidecar's and config
 * file's hashes, the config overrides and the inference options (paths and the name the user
 * typed are left out: the same content anywhere is the same model).
 */
export function contentHash(model: ModelSpec, options: JobOptions): string {
  const { spec: _spec, file: _file, configFile: _configFile, ...content } = model;
  return createHash('sha256').update(canonical({ model: content, options })).digest('hex');
}

/** A worker's files are not the model a job asked for. */
export class ModelMismatchError extends InputError {
  override name = 'ModelMismatchError';
}

/**
 * Checks that the files a worker found (`file`, its sidecar, `configFile`) have the content
 * hashes of `model`; throws a ModelMismatchError naming the first that differs.
 */
export async function verifyModel(model: ModelSpec, file: string, configFile = model.configFile): Promise<void> {
  const short = (h: string | null | undefined): string => (h ? h.slice(0, 12) : 'none');
  const weights = await fileSha256(file);
  if (weights !== model.weightsSha256) throw new ModelMismatchError(`weights ${file} have SHA-256 ${short(weights)}..., the run's are ${short(model.weightsSha256)}... (another model at this path)`);
  const sidecar = sidecarOf(file);
  const sidecarSha = sidecar ? await fileSha256(sidecar) : null;
  if (sidecarSha !== model.sidecarSha256) {
    throw new ModelMismatchError(`sidecar ${sidecarPath(file)} ${sidecarSha ? `has SHA-256 ${short(sidecarSha)}...` : 'is missing'}, the run's ${model.sidecarSha256 ? `is ${short(model.sidecarSha256)}...` : 'has none'} (its config or class names differ)`);
  }
  if (model.configSha256 !== undefined) {
    if (configFile === undefined || !existsSync(configFile)) throw new ModelMismatchError(`config ${configFile ?? model.configFile ?? ''} not found on this worker`);
    const got = await fileSha256(configFile);
    if (got !== model.configSha256) throw new ModelMismatchError(`config ${configFile} has SHA-256 ${short(got)}..., the run's ${short(model.configSha256)}...`);
  }
}
