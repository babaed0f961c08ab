/**
 * A RetinaNet ready to run: its config, parameter values, class names, compiled inference
 * sessions per padded batch shape, and the whole detect path (preprocess, network,
 * post-process, boxes back to original pixels).
 */
import { Executable, SessionCache } from '../engine/runtime.js';
import { Graph, type Tensor } from '../engine/graph.js';
import { estimateMemory, sessionBytes } from '../engine/memory.js';
import { type Detections, postprocessDetections } from '../detection/postprocess.js';
import { postprocessBoxes, transformBatch } from '../data/transform.js';
import type { RgbImage } from '../io/image.js';
import { ParameterStore, initialize } from '../nn/params.js';
import { system } from '../platform/system.js';
import { type RetinaNetConfig, anchorsPerLocationOf } from './config.js';
import { anchorsFor } from './anchors.js';
import { applyTrainableLayers, buildRetinaNet } from './retinanet.js';
import {
  type ConfigSources, type LoadWeightsOptions, type WeightsLoadReport, MissingSidecarError,
  readBackboneWeights, readSidecar, readWeightsReport, resolveConfig, sidecarPath, writeWeights,
} from './weights.js';

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

/** The default memory budget of a run: 80% of the machine's memory (no limit where the platform does not say). */
export function defaultMaxMemory(): number {
  return Math.floor(0.8 * (system.totalMemory() ?? Infinity));
}

export class RetinaNet {
  readonly store: ParameterStore;
  /** Name per label (index = label), when known: the config's, or the weights' sidecar's. */
  classNames: string[] | undefined;
  /** COCO category id per label, when known (a model trained here records its dataset's). */
  categoryIds: number[] | undefined;
  private sessions = new SessionCache(8);
  private readonly sessionEstimates = new Map<string, number>();
  private memoryBudget = Infinity;

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
   * (`model.json` beside `model.safetensors`); without either, a MissingSidecarError. Class
   * names and category ids come from the sidecar.
   */
  static async fromWeights(file: string, overrides: Omit<ConfigSources, 'sidecar'> = {}): Promise<RetinaNet> {
    const sidecar = readSidecar(file);
    if (!sidecar && overrides.arch === undefined && overrides.configFile === undefined) throw new MissingSidecarError(file, sidecarPath(file));
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

  /** The score threshold it detects with unless told otherwise (the config's). */
  get scoreThresh(): number {
    return this.config.inference.scoreThresh;
  }

  /** Parameter names with their shapes, in declaration order. */
  parameterShapes(): Map<string, readonly number[]> {
    return new Map([...this.store.info].map(([n, i]) => [n, i.shape]));
  }

  /**
   * Loads weights from a safetensors file or a PyTorch checkpoint (told by content) with
   * torchvision's state_dict names. Every model tensor must be present with its shape; extra
   * tensors are an error too (except BatchNorm's `num_batches_tracked`), so that a wrong
   * architecture never loads silently. With `{ replaceClassifier: true }` (fine-tuning), a
   * classification layer for another class count is left out and re-initialised as the paper
   * says (normal std 0.01, prior bias); the report says what was loaded and re-initialised.
   */
  async loadWeights(file: string, opts: LoadWeightsOptions = {}): Promise<WeightsLoadReport> {
    const { values, report } = await readWeightsReport(file, this.parameterShapes(), `${this.config.name} with ${this.config.numClasses} classes`, opts, anchorsPerLocationOf(this.config));
    for (const [name, v] of values) this.store.values.set(name, v);
    this.reinitialize(report.initialized);
    await this.sessions.clear();
    return report;
  }

  /**
   * Loads an ImageNet ResNet `state_dict` (torchvision's `resnet50` names: `conv1.weight`,
   * `layer1.0.conv1.weight`, ...; `fc.*` ignored) into `backbone.body.*`, BatchNorm statistics
   * and affine included; every other parameter (FPN, heads) is re-initialised.
   */
  async loadBackboneWeights(file: string): Promise<WeightsLoadReport> {
    const { values, report } = await readBackboneWeights(file, this.parameterShapes(), `${this.config.name} (ResNet-${this.config.backbone.depth}, base width ${this.config.backbone.baseWidth})`);
    for (const [name, v] of values) this.store.values.set(name, v);
    this.reinitialize(report.initialized);
    await this.sessions.clear();
    return report;
  }

  /** Sets parameters back to their initialiser's values (the same as a fresh model with this seed). */
  private reinitialize(names: readonly string[]): void {
    for (const name of names) {
      const info = this.store.info.get(name)!;
      this.store.values.set(name, initialize(name, info.shape, info.init, this.store.seed));
    }
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

  /**
   * Bounds the memory its compiled inference sessions (one per padded input shape) hold
   * together: beyond `bytes` the least recently used are released. Default: at most 8 sessions.
   */
  async setMemoryBudget(bytes: number): Promise<void> {
    await this.sessions.clear();
    this.memoryBudget = bytes;
    this.sessions = new SessionCache(Number.isFinite(bytes) ? 64 : 8, bytes);
  }

  private inferenceGraph(n: number, h: number, w: number): { g: Graph; outputs: [Tensor, Tensor] } {
    const g = new Graph();
    const out = buildRetinaNet(g, this.store, g.input('images', 'float32', [n, 3, h, w]), this.config);
    return { g, outputs: [out.clsLogits, out.boxDeltas] };
  }

  /** The compiled inference graph for a padded batch shape (parameters baked in unless fed). */
  private inference(n: number, h: number, w: number, threads: number | undefined, feedParams: boolean): Promise<Executable> {
    const key = `${n}x${h}x${w}@${threads ?? 'all'}${feedParams ? ':fed' : ''}`;
    let bytes = 0;
    if (Number.isFinite(this.memoryBudget)) {
      bytes = this.sessionEstimates.get(key) ?? 0;
      if (!this.sessionEstimates.has(key)) {
        const { g, outputs } = this.inferenceGraph(n, h, w);
        bytes = sessionBytes(estimateMemory(g, outputs, feedParams ? undefined : new Set(this.store.values.keys())));
        this.sessionEstimates.set(key, bytes);
      }
    }
    return this.sessions.get(
      key,
      async () => {
        const { g, outputs } = this.inferenceGraph(n, h, w);
        return Executable.create(g, outputs, { threads, bake: feedParams ? undefined : this.store.values });
      },
      bytes,
    );
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
