/**
 * What `detect` and `eval` need of a model, from either kind of file: safetensors weights (a
 * `RetinaNet`, built from its config) or a model exported by `retinanet export` (`.onnx`,
 * float32 or int8, run as it is by ONNX Runtime with its class names from the metadata).
 */
import { readFile } from 'node:fs/promises';
import { InputError } from '../core/errors.js';
import { OnnxSession } from '../engine/runtime.js';
import { chwToHwcBytes } from '../io/image.js';
import type { RgbImage } from '../io/image.js';
import { type ExportMetadata, parseExportMetadata } from './export.js';
import { type ImageDetections, type InferenceOptions, RetinaNet } from './model.js';
import type { ConfigSources } from './weights.js';

/** A model that detects: `RetinaNet` and `OnnxDetector` both are one. */
export interface Detector {
  readonly numClasses: number;
  /** The score threshold it detects with unless told otherwise. */
  readonly scoreThresh: number;
  /** Name per label, when known. */
  readonly classNames: string[] | undefined;
  /** COCO category id per label, when known. */
  readonly categoryIds: number[] | undefined;
  /** Detections per image, boxes in each image's original pixels. */
  detect(images: readonly RgbImage[], opts?: InferenceOptions): Promise<ImageDetections[]>;
  /** Releases compiled sessions. */
  dispose(): Promise<void>;
  /** Throws an InputError when `opts` asks for something this detector cannot do (checked before any image). */
  checkOptions?(opts: InferenceOptions): void;
}

/** Whether `file` names an exported ONNX model (by its extension) rather than safetensors weights. */
export function isOnnxModelFile(file: string): boolean {
  return /\.onnx$/i.test(file);
}

/**
 * An exported detection model (see `model/export.ts`) run by ONNX Runtime. Its post-processing
 * settings are in the graph; `detect` can only tighten them: a higher score threshold or fewer
 * detections per image give exactly what an export with those settings would (scores above a
 * higher threshold and the best detections are the same either side of NMS), anything else is
 * an InputError that says to re-export.
 */
export class OnnxDetector implements Detector {
  private session: Promise<OnnxSession> | undefined;

  private constructor(
    /** The model file. */
    readonly file: string,
    private readonly bytes: Uint8Array,
    /** The model's metadata: config, class names, baked post-processing, quantization. */
    readonly metadata: ExportMetadata,
  ) {}

  /** Reads an exported model and its metadata (the session is compiled on the first `detect`). */
  static async load(file: string): Promise<OnnxDetector> {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(file));
    } catch (err) {
      throw new InputError(`cannot read ${file}: ${(err as Error).message}`);
    }
    return new OnnxDetector(file, bytes, parseExportMetadata(bytes, file));
  }

  get numClasses(): number {
    return this.metadata.config.numClasses;
  }

  get classNames(): string[] | undefined {
    return this.metadata.classNames;
  }

  get scoreThresh(): number {
    return this.metadata.inference.scoreThresh;
  }

  get categoryIds(): number[] | undefined {
    return this.metadata.categoryIds;
  }

  checkOptions(opts: InferenceOptions): void {
    this.tightening(opts);
  }

  /** The post-processing that `opts` asks for, as a filter on the model's output. */
  private tightening(opts: InferenceOptions): { scoreThresh: number; detectionsPerImg: number } {
    const baked = this.metadata.inference;
    const reexport = (what: string): InputError =>
      new InputError(`${this.file} was exported with ${what}; export it again with the setting you want (retinanet export ... --score-thresh/--nms-thresh/--detections-per-img)`);
    if (opts.scoreThresh !== undefined && opts.scoreThresh < baked.scoreThresh) throw reexport(`score threshold ${baked.scoreThresh}, which a lower --score-thresh cannot undo`);
    if (opts.nmsThresh !== undefined && opts.nmsThresh !== baked.nmsThresh) throw reexport(`NMS threshold ${baked.nmsThresh} built in`);
    if (opts.topkCandidates !== undefined && opts.topkCandidates !== baked.topkCandidates) throw reexport(`${baked.topkCandidates} candidates per level built in`);
    if (opts.detectionsPerImg !== undefined && opts.detectionsPerImg > baked.detectionsPerImg) throw reexport(`at most ${baked.detectionsPerImg} detections per image`);
    return { scoreThresh: opts.scoreThresh ?? baked.scoreThresh, detectionsPerImg: opts.detectionsPerImg ?? baked.detectionsPerImg };
  }

  async detect(images: readonly RgbImage[], opts: InferenceOptions = {}): Promise<ImageDetections[]> {
    const { scoreThresh, detectionsPerImg } = this.tightening(opts);
    const filter = scoreThresh > this.metadata.inference.scoreThresh ? Math.fround(scoreThresh) : -Infinity;
    this.session ??= OnnxSession.create(this.bytes, { threads: opts.threads });
    const session = await this.session;
    const out: ImageDetections[] = [];
    for (const image of images) {
      const r = await session.run({ image: { data: chwToHwcBytes(image), dims: [image.height, image.width, 3] } });
      const boxes = r['boxes']!.data as Float32Array;
      const scores = r['scores']!.data as Float32Array;
      const labels = r['labels']!.data as BigInt64Array;
      let d = 0;
      while (d < scores.length && d < detectionsPerImg && scores[d]! > filter) d++;
      out.push({
        boxes: boxes.slice(0, 4 * d),
        scores: scores.slice(0, d),
        labels: Int32Array.from(labels.subarray(0, d), Number),
        originalSize: [image.height, image.width],
      });
    }
    return out;
  }

  async dispose(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    if (s) await (await s).release();
  }
}

/**
 * The detector in `file`: an exported `.onnx` model, or safetensors weights built with
 * `RetinaNet.fromWeights(file, overrides)`. An exported model carries its config, so overrides
 * are an error for it.
 */
export async function loadDetector(file: string, overrides: Omit<ConfigSources, 'sidecar'> = {}): Promise<Detector> {
  if (!isOnnxModelFile(file)) return RetinaNet.fromWeights(file, overrides);
  const words: Record<string, string> = { configFile: 'a config file', arch: 'an architecture', numClasses: 'a class count', minSize: 'a min size', maxSize: 'a max size' };
  const given = Object.entries(overrides)
    .filter(([, v]) => v !== undefined)
    .map(([k]) => words[k] ?? k);
  if (given.length > 0) {
    throw new InputError(`${file} is an exported model: its config is built in, so ${given.join(', ')} cannot change it (give them when exporting, or use the safetensors weights)`);
  }
  return OnnxDetector.load(file);
}
