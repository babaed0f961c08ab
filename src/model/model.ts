/**
 * A RetinaNet ready to run: its config, parameter values, class names, compiled inference
 * sessions per padded batch shape, and the whole detect path (preprocess, network,
 * post-process, boxes back to original pixels).
 */
import { Executable, SessionCache } from '../engine/runtime.js';
import { Graph } from '../engine/graph.js';
import { type Detections, postprocessDetections } from '../detection/postprocess.js';
import { postprocessBoxes, transformBatch } from '../data/transform.js';
import type { RgbImage } from '../io/image.js';
import { ParameterStore } from '../nn/params.js';
import type { RetinaNetConfig } from './config.js';
import { anchorsFor } from './anchors.js';
import { applyTrainableLayers, buildRetinaNet } from './retinanet.js';
import { type ConfigSources, readSidecar, readWeightsFor, resolveConfig, writeWeights } from './weights.js';

export interface InferenceOptions {
  threads?: number;
  /**
   * Feed the parameters at run time instead of baking them into the compiled graph: slower per
   * image, but the session survives weight updates (validation during training).
   */
  feedParams?: boolean;
  scoreThresh?: number;
  nmsThresh?: number;
  detectionsPerImg?: number;
  topkCandidates?: number;
}

/** Detections of one image in its original pixels. */
export interface ImageDetections extends Detections {
  /** [height, width] of the original image. */
  originalSize: [number, number];
}

export class RetinaNet {
  readonly store: ParameterStore;
  /** Name per label (index = label), when known: the config's, or the weights' sidecar's. */
  classNames: string[] | undefined;
  /** COCO category id per label, when known (a model trained here records its dataset's). */
  categoryIds: number[] | undefined;
  private readonly sessions = new SessionCache(8);

  /** Creates the model with freshly initialised parameters (seeded). */
  constructor(
    readonly config: RetinaNetConfig,
    seed = 0,
  ) {
    this.store = new ParameterStore(seed);
    // Declare every parameter by building the graph once at a small size.
    const g = new Graph();
    buildRetinaNet(g, this.store, g.input('images', 'float32', [1, 3, 128, 128]), config);
    applyTrainableLayers(this.store, config);
    this.classNames = config.classNames ? [...config.classNames] : undefined;
  }

  /**
   * A model with the weights of `file` (safetensors, torchvision names). Its config comes from
   * `overrides.configFile` or `overrides.arch` when given, else from the file's sidecar
   * (`model.json` beside `model.safetensors`), else retinanet_resnet50_fpn; class names and
   * category ids from the sidecar.
   */
  static async fromWeights(file: string, overrides: Omit<ConfigSources, 'sidecar'> = {}): Promise<RetinaNet> {
    const sidecar = readSidecar(file);
    const model = new RetinaNet(resolveConfig({ ...overrides, sidecar }));
    await model.loadWeights(file);
    if (sidecar?.classNames && sidecar.classNames.length === model.config.numClasses) model.classNames = [...sidecar.classNames];
    if (sidecar?.categoryIds && sidecar.categoryIds.length === model.config.numClasses) model.categoryIds = [...sidecar.categoryIds];
    return model;
  }

  /** Number of classes K (the config's). */
  get numClasses(): number {
    return this.config.numClasses;
  }

  /** Parameter names with their shapes, in declaration order. */
  parameterShapes(): Map<string, readonly number[]> {
    return new Map([...this.store.info].map(([n, i]) => [n, i.shape]));
  }

  /**
   * Loads weights from a safetensors file with torchvision's state_dict names. Every model
   * tensor must be present with its shape; extra tensors are an error too (except BatchNorm's
   * `num_batches_tracked`), so that a wrong architecture never loads silently.
   */
  async loadWeights(file: string): Promise<void> {
    const values = await readWeightsFor(file, this.parameterShapes(), `${this.config.name} with ${this.config.numClasses} classes`);
    for (const [name, v] of values) this.store.values.set(name, v);
    await this.sessions.clear();
  }

  /**
   * Writes the weights as safetensors (torchvision names) and a `.json` sidecar holding the
   * config, the model's class names and category ids, and `extra` (iteration, AP, ...), each
   * atomically (temp file + rename).
   */
  async saveWeights(file: string, extra: Record<string, unknown> = {}): Promise<void> {
    const labels = { ...(this.classNames ? { classNames: this.classNames } : {}), ...(this.categoryIds ? { categoryIds: this.categoryIds } : {}) };
    await writeWeights(file, this.store.values, this.parameterShapes(), this.config, { ...labels, ...extra });
  }

  /** The compiled inference graph for a padded batch shape (parameters baked in unless fed). */
  private inference(n: number, h: number, w: number, threads: number | undefined, feedParams: boolean): Promise<Executable> {
    return this.sessions.get(`${n}x${h}x${w}@${threads ?? 'all'}${feedParams ? ':fed' : ''}`, async () => {
      const g = new Graph();
      const images = g.input('images', 'float32', [n, 3, h, w]);
      const out = buildRetinaNet(g, this.store, images, this.config);
      return Executable.create(g, [out.clsLogits, out.boxDeltas], { threads, bake: feedParams ? undefined : this.store.values });
    });
  }

  /**
   * Raw head outputs for an already transformed, padded batch [N, 3, H, W]: class logits
   * [N, A, K] and deltas [N, A, 4] as flat arrays, with the anchors per level.
   */
  async forward(
    batch: Float32Array,
    shape: readonly [number, number, number, number],
    threads?: number,
    feedParams = false,
  ): Promise<{ clsLogits: Float32Array; boxDeltas: Float32Array; anchors: Float32Array[] }> {
    const [n, , h, w] = shape;
    const exe = await this.inference(n, h, w, threads, feedParams);
    const feeds = new Map<string, Float32Array>(feedParams ? this.store.values : []);
    feeds.set('images', batch);
    const [cls, box] = (await exe.run(feeds)) as [Float32Array, Float32Array];
    return { clsLogits: cls, boxDeltas: box, anchors: anchorsFor(this.config, h, w).levels };
  }

  /** Detects objects in RGB images ([0, 1] CHW); boxes come back in each image's original pixels. */
  async detect(images: readonly RgbImage[], opts: InferenceOptions = {}): Promise<ImageDetections[]> {
    const t = this.config.transform;
    const batch = transformBatch(images, undefined, { minSize: t.minSize, maxSize: t.maxSize, mean: t.mean, std: t.std });
    const { clsLogits, boxDeltas, anchors } = await this.forward(batch.data, batch.shape, opts.threads, opts.feedParams ?? false);
    const k = this.config.numClasses;
    const perImage = anchors.reduce((s, a) => s + a.length / 4, 0);
    const inf = this.config.inference;
    return images.map((_, i) => {
      let offset = i * perImage;
      const levels = anchors.map((a) => {
        const count = a.length / 4;
        const level = {
          clsLogits: clsLogits.subarray(offset * k, (offset + count) * k),
          bboxRegression: boxDeltas.subarray(offset * 4, (offset + count) * 4),
          anchors: a,
        };
        offset += count;
        return level;
      });
      const det = postprocessDetections(levels, k, batch.imageSizes[i]!, {
        scoreThresh: opts.scoreThresh ?? inf.scoreThresh,
        nmsThresh: opts.nmsThresh ?? inf.nmsThresh,
        detectionsPerImg: opts.detectionsPerImg ?? inf.detectionsPerImg,
        topkCandidates: opts.topkCandidates ?? inf.topkCandidates,
      });
      return { ...det, boxes: postprocessBoxes(det.boxes, batch.imageSizes[i]!, batch.originalSizes[i]!), originalSize: batch.originalSizes[i]! };
    });
  }

  /** Releases compiled sessions. */
  async dispose(): Promise<void> {
    await this.sessions.clear();
  }
}
