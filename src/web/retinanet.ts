/**
 * The browser API's RetinaNet: the library's model (src/model/model.ts, the same graphs and
 * detect path as in Node) with weights fetched from URLs, images from anything a page holds,
 * fine-tuning in the tab and weights saved as bytes for a download.
 */
import { InputError } from '../core/errors.js';
import type { SampleSource } from '../data/source.js';
import { memorySource } from '../data/source.js';
import type { RgbImage } from '../io/image.js';
import { type ImageDetections, type InferenceOptions, RetinaNet as Model } from '../model/model.js';
import { type RetinaNetConfig, mergeConfig } from '../model/config.js';
import { defaultTrainableLayers } from '../model/finetune.js';
import { type ConfigSources, type ModelSidecar, type WeightsLoadReport, sidecarPath } from '../model/weights.js';
import { memoryFiles } from '../platform/files.browser.js';
import { type Backend, type BackendOptions, initBackend } from './backend.js';
import { type ImageSource, toRgbImage } from './pixels.js';
import { BrowserTrainer, type FineTuneOptions } from './trainer.js';

/** Options of {@link RetinaNet.fromWeights}: the model's config overrides (as in Node) and the backend's choice. */
export interface FromWeightsOptions extends Omit<ConfigSources, 'sidecar' | 'configFile'>, BackendOptions {}

/** An image with its boxes, for fine-tuning. */
export interface LabelledImage {
  image: ImageSource;
  /** Boxes in the image's pixels: flat `[x1, y1, x2, y2, ...]` or one `[x1, y1, x2, y2]` per box. */
  boxes: ArrayLike<number> | readonly (readonly number[])[];
  /** 0-based class index per box, into the `classNames` given with the images. */
  labels: ArrayLike<number>;
}

/** A labelled set in memory: images with boxes, and the class names their labels index. */
export interface LabelledSet {
  classNames: readonly string[];
  images: readonly LabelledImage[];
}

/** Options of {@link RetinaNet.fineTune}. */
export interface FineTuneModelOptions extends FineTuneOptions {
  /** Backbone stages trained (torchvision's `trainable_backbone_layers`; default 3, as `retinanet train --weights`). */
  trainableLayers?: number;
}

/** The saved form of a model: what `retinanet detect --weights model.safetensors` reads (with model.json beside). */
export interface SavedWeights {
  /** The safetensors file. */
  weights: Uint8Array;
  /** The `.json` sidecar (config, class names, category ids). */
  sidecar: string;
}

let uploads = 0;

function flatBoxes(boxes: LabelledImage['boxes']): Float32Array {
  const first = (boxes as ArrayLike<unknown>)[0];
  if (Array.isArray(first)) return Float32Array.from((boxes as readonly (readonly number[])[]).flat());
  return Float32Array.from(boxes as ArrayLike<number>);
}

async function fetchBytes(url: string, optional: boolean): Promise<Uint8Array | undefined> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (err) {
    throw new InputError(`cannot fetch ${url}: ${(err as Error).message}`);
  }
  if (res.status === 404 && optional) return undefined;
  if (!res.ok) throw new InputError(`cannot fetch ${url}: HTTP ${res.status} ${res.statusText}`);
  return new Uint8Array(await res.arrayBuffer());
}

async function bytesOf(x: Blob | ArrayBuffer | Uint8Array | string | ModelSidecar): Promise<Uint8Array> {
  if (x instanceof Uint8Array) return x;
  if (x instanceof ArrayBuffer) return new Uint8Array(x);
  if (typeof Blob !== 'undefined' && x instanceof Blob) return new Uint8Array(await x.arrayBuffer());
  return new TextEncoder().encode(typeof x === 'string' ? x : JSON.stringify(x));
}

export class RetinaNet {
  private constructor(
    /** The library's model: config, parameters, class names, compiled sessions. */
    readonly model: Model,
    /** Where the networks run. */
    readonly backend: Backend,
  ) {}

  /**
   * The model saved at `url` (safetensors; the config and class names come from the `.json`
   * sidecar beside it, `model.safetensors` -> `model.json`, or from `options.arch`).
   */
  static async fromWeights(url: string | URL, options: FromWeightsOptions = {}): Promise<RetinaNet> {
    const backend = await initBackend(options);
    const weightsUrl = new URL(String(url), globalThis.document?.baseURI ?? globalThis.location?.href);
    const sidecarUrl = new URL(weightsUrl.href);
    sidecarUrl.pathname = sidecarPath(weightsUrl.pathname);
    const [weights, sidecar] = await Promise.all([fetchBytes(weightsUrl.href, false), fetchBytes(sidecarUrl.href, true)]);
    return RetinaNet.load(weightsUrl.href, weights!, sidecar, options, backend);
  }

  /** A model from weights the page holds (a picked file's bytes), with its sidecar when there is one. */
  static async fromBytes(weights: Blob | ArrayBuffer | Uint8Array, sidecar?: Blob | string | ModelSidecar, options: FromWeightsOptions & { name?: string } = {}): Promise<RetinaNet> {
    const backend = await initBackend(options);
    const name = `/uploads/${++uploads}/${(options.name ?? 'model.safetensors').replace(/[/\\]/g, '_')}`;
    return RetinaNet.load(name, await bytesOf(weights), sidecar === undefined ? undefined : await bytesOf(sidecar), options, backend);
  }

  private static async load(location: string, weights: Uint8Array, sidecar: Uint8Array | undefined, options: FromWeightsOptions, backend: Backend): Promise<RetinaNet> {
    const sidecarLocation = location.endsWith('.safetensors') ? sidecarPath(location) : undefined;
    memoryFiles.put(location, weights);
    if (sidecar && sidecarLocation) memoryFiles.put(sidecarLocation, sidecar);
    try {
      const { arch, numClasses, minSize, maxSize } = options;
      return new RetinaNet(await Model.fromWeights(location, { arch, numClasses, minSize, maxSize }), backend);
    } finally {
      memoryFiles.remove(location);
      if (sidecarLocation) memoryFiles.remove(sidecarLocation);
    }
  }

  get config(): RetinaNetConfig {
    return this.model.config;
  }

  /** Name per label, when known. */
  get classNames(): readonly string[] | undefined {
    return this.model.classNames;
  }

  /** COCO category id per label, when known. */
  get categoryIds(): readonly number[] | undefined {
    return this.model.categoryIds;
  }

  /**
   * Detects objects in an image; boxes come back as flat `[x1, y1, x2, y2, ...]` in the image's
   * pixels, best first, with `scores` and `labels` (as `RetinaNet.detect` in Node).
   */
  async detect(source: ImageSource, opts: InferenceOptions = {}): Promise<ImageDetections> {
    const [det] = await this.model.detect([await toRgbImage(source)], opts);
    return det!;
  }

  /**
   * A copy of this model to fine-tune on `data` (images in memory with their classes, or a
   * sample source such as `datasetSource(loadDataset(...).dataset)`), as `retinanet train
   * --weights` starts: the same weights, the classification layer re-initialised when the class
   * count differs, the first backbone stages frozen. Run the trainer, then `tuned.detect` or
   * `tuned.saveWeights`.
   */
  async fineTune(data: LabelledSet | SampleSource, options: FineTuneModelOptions): Promise<{ tuned: RetinaNet; trainer: BrowserTrainer; load: WeightsLoadReport }> {
    const source = 'images' in data ? await labelledSource(data) : data;
    const config = mergeConfig(this.model.config, {
      numClasses: source.classNames.length,
      classNames: [...source.classNames],
      backbone: { trainableLayers: options.trainableLayers ?? defaultTrainableLayers(true) },
    });
    const model = new Model(config, options.seed ?? 0);
    const start = `/fine-tune/${++uploads}/start.safetensors`;
    await this.model.saveWeights(start);
    let load: WeightsLoadReport;
    try {
      load = await model.loadWeights(start, { replaceClassifier: true });
    } finally {
      memoryFiles.remove(start);
      memoryFiles.remove(sidecarPath(start));
    }
    const tuned = new RetinaNet(model, this.backend);
    return { tuned, trainer: new BrowserTrainer(model, source, options), load };
  }

  /** The weights as `saveWeights` writes them in Node: a safetensors file and its `.json` sidecar. */
  async saveWeights(extra: Record<string, unknown> = {}): Promise<SavedWeights> {
    const file = `/saved/${++uploads}/model.safetensors`;
    await this.model.saveWeights(file, extra);
    try {
      return { weights: memoryFiles.get(file)!, sidecar: new TextDecoder().decode(memoryFiles.get(sidecarPath(file))!) };
    } finally {
      memoryFiles.remove(file);
      memoryFiles.remove(sidecarPath(file));
    }
  }

  /** Releases the compiled sessions. */
  async dispose(): Promise<void> {
    await this.model.dispose();
  }
}

/** A labelled set as a sample source (images decoded now: the set is small). */
async function labelledSource(set: LabelledSet): Promise<SampleSource> {
  const samples = [];
  for (const [i, item] of set.images.entries()) {
    const image: RgbImage = await toRgbImage(item.image);
    const boxes = flatBoxes(item.boxes);
    const labels = Int32Array.from(item.labels);
    if (boxes.length !== 4 * labels.length) throw new InputError(`image ${i + 1}: ${boxes.length / 4} boxes but ${labels.length} labels`);
    for (const l of labels) if (!(l >= 0 && l < set.classNames.length)) throw new InputError(`image ${i + 1}: label ${l} is not a class index (${set.classNames.length} classes)`);
    samples.push({ image, boxes, labels, id: i + 1 });
  }
  return memorySource(samples, set.classNames);
}
