/**
 * RetinaNet as one self-contained ONNX inference model: a uint8 RGB image [H, W, 3] of any
 * size in, boxes [D, 4] (xyxy in the input's pixels), scores [D] and labels [D] (int64) out.
 * Everything `RetinaNet.detect` does is in the graph, with standard ONNX operators only:
 *
 * - torchvision's `GeneralizedRCNNTransform` (eval): /255, normalize with the config's mean and
 *   std, bilinear resize (`interpolate(mode="bilinear", align_corners=False)` with the scale
 *   recomputed as `_resize_image_and_masks` does: float32 scale, output size floor(side * scale)
 *   in double), zero padding to a multiple of 32;
 * - the network (parameters as initializers);
 * - torchvision's `RetinaNet.postprocess_detections` per level: sigmoid, score > threshold,
 *   top-k (k = min(topkCandidates, count)), anchors generated from the level's run-time grid
 *   (`AnchorGenerator`: stride = padded size // grid size), `BoxCoder.decode_single`,
 *   `clip_boxes_to_image`; then class-wise NMS (ONNX NonMaxSuppression over the classes as its
 *   class axis) and the best `detectionsPerImg`, best first (equal scores by candidate order);
 * - `GeneralizedRCNNTransform.postprocess`: boxes scaled back by the float32 ratios
 *   original / resized.
 *
 * Sizes are computed in the graph (Shape, Range, NonZero, TopK with a computed k), so nothing
 * depends on the size the graph is built at; `exportDetector` checks that by building it at two
 * reference sizes and comparing the bytes.
 */
import { Graph, GraphError, type Tensor } from '../engine/graph.js';
import * as op from '../engine/ops.js';
import { OPSET, readMetadata, serialize } from '../engine/onnx.js';
import { cellAnchors } from '../detection/anchors.js';
import { BBOX_XFORM_CLIP } from '../detection/box_coder.js';
import { resizedSize } from '../data/transform.js';
import { InputError } from '../core/errors.js';
import type { InferenceOptions, RetinaNet } from './model.js';
import { type RetinaNetConfig, anchorsPerLocationOf } from './config.js';
import { buildRetinaNet } from './retinanet.js';

/** Padded images are multiples of this (torchvision's `size_divisible`). */
const SIZE_DIVISIBLE = 32;

/** The post-processing settings baked into an exported model. */
export interface ExportedInference {
  scoreThresh: number;
  nmsThresh: number;
  topkCandidates: number;
  detectionsPerImg: number;
}

export interface DetectionGraphOptions extends Pick<InferenceOptions, 'scoreThresh' | 'nmsThresh' | 'detectionsPerImg' | 'topkCandidates'> {
  /**
   * Input size [height, width] of a fixed-size model: the input is declared [height, width, 3]
   * and other sizes are rejected by the runtime. Default: any size (the height and width are
   * run-time dimensions named `height` and `width`).
   */
  fixedSize?: readonly [number, number];
  /** Size [height, width] the graph is built at when its input has run-time dimensions (no effect on the model). */
  referenceSize?: readonly [number, number];
}

/** The detection graph and its named tensors. */
export interface DetectionGraph {
  graph: Graph;
  /** uint8 [H, W, 3]. */
  image: Tensor;
  /** float32 [D, 4], xyxy in the input's pixels. */
  boxes: Tensor;
  /** float32 [D], best first. */
  scores: Tensor;
  /** int64 [D], class index in [0, K). */
  labels: Tensor;
  /** The settings baked in. */
  inference: ExportedInference;
}

/** The post-processing settings of `model` with `opts` applied, checked. */
export function exportedInference(cfg: RetinaNetConfig, opts: DetectionGraphOptions = {}): ExportedInference {
  const inf = {
    scoreThresh: opts.scoreThresh ?? cfg.inference.scoreThresh,
    nmsThresh: opts.nmsThresh ?? cfg.inference.nmsThresh,
    topkCandidates: opts.topkCandidates ?? cfg.inference.topkCandidates,
    detectionsPerImg: opts.detectionsPerImg ?? cfg.inference.detectionsPerImg,
  };
  if (!(inf.scoreThresh >= 0 && inf.scoreThresh < 1)) throw new InputError(`score threshold must be in [0, 1), got ${inf.scoreThresh}`);
  if (!(inf.nmsThresh >= 0 && inf.nmsThresh <= 1)) throw new InputError(`NMS threshold must be in [0, 1], got ${inf.nmsThresh}`);
  for (const k of ['topkCandidates', 'detectionsPerImg'] as const) {
    if (!Number.isInteger(inf[k]) || inf[k] < 1) throw new InputError(`${k} must be a positive integer, got ${inf[k]}`);
  }
  return inf;
}

/** A float32 constant of the given shape. */
function floats(g: Graph, values: readonly number[], shape: readonly number[]): Tensor {
  return g.constant(Float32Array.from(values), shape, 'float32');
}

/** Column `c` of [M, 4] as [M, 1]. */
function column(x: Tensor, c: number): Tensor {
  return op.slice(x, [c], [c + 1], [1]);
}

/** Element `i` of an int64 [n] shape vector as [1]. */
function dimAt(shape: Tensor, i: number): Tensor {
  return op.slice(shape, [i], [i + 1], [0]);
}

/**
 * torchvision's GeneralizedRCNNTransform (eval) on one uint8 HWC image, in the graph: returns
 * the padded network input [1, 3, H', W'] and the resized (unpadded) and original sizes as
 * float32 [2] ([height, width]).
 */
function preprocess(g: Graph, image: Tensor, cfg: RetinaNetConfig, ref: readonly [number, number]): { input: Tensor; resizedF: Tensor; originalF: Tensor } {
  const t = cfg.transform;
  // ToTensor: [H, W, 3] uint8 -> [1, 3, H, W] float in [0, 1].
  let x = op.div(op.cast(image, 'float32'), 255);
  x = op.unsqueeze(op.transpose(x, [2, 0, 1]), [0]);
  // normalize: (x - mean) / std per channel, in float32 (before the resize, as torchvision).
  x = op.div(op.sub(x, floats(g, t.mean, [1, 3, 1, 1])), floats(g, t.std, [1, 3, 1, 1]));

  // _resize_image_and_masks: scale = min(min_size / short, max_size / long) in float32
  // (`python_float / tensor` is tensor.reciprocal() * python_float), size = floor(side * scale)
  // in double (torch's interpolate with recompute_scale_factor=True).
  const hwInt = op.slice(op.shapeOf(image), [0], [2], [0]);
  const hw = op.cast(hwInt, 'float32');
  const short = op.reduceMin(hw);
  const long = op.reduceMax(hw);
  const scale = op.min(op.mul(op.reciprocal(short), t.minSize), op.mul(op.reciprocal(long), t.maxSize));
  const resized = op.cast(op.floor(op.mul(op.cast(hwInt, 'float64'), op.cast(scale, 'float64'))), 'int64');
  const [rh, rw] = resizedSize(ref[0], ref[1], t.minSize, t.maxSize);
  x = op.resizeTo(x, op.concat([op.int64s(g, [1, 3]), resized], 0), [1, 3, rh, rw], 'linear');

  // batch_images: zero padding at the bottom and right to multiples of 32.
  const padded = op.mul(op.div(op.add(resized, SIZE_DIVISIBLE - 1), SIZE_DIVISIBLE), SIZE_DIVISIBLE);
  const pads = op.concat([op.int64s(g, [0, 0, 0, 0, 0, 0]), op.sub(padded, resized)], 0);
  const ph = Math.ceil(rh / SIZE_DIVISIBLE) * SIZE_DIVISIBLE;
  const pw = Math.ceil(rw / SIZE_DIVISIBLE) * SIZE_DIVISIBLE;
  const input = op.padTo(x, pads, [1, 3, ph, pw]);
  return { input, resizedF: op.cast(resized, 'float32'), originalF: hw };
}

interface LevelCandidates {
  boxes: Tensor;
  scores: Tensor;
  labels: Tensor;
}

/**
 * One level of torchvision's `postprocess_detections`: sigmoid, score > threshold, top-k,
 * anchors of the chosen candidates, decode, clip. `logits` [1, HWA, K] and `deltas` [1, HWA, 4]
 * of a level whose feature map is `feature` [1, C, h, w]; `padded` is the network input.
 */
function levelCandidates(
  logits: Tensor,
  deltas: Tensor,
  feature: Tensor,
  padded: Tensor,
  cell: Float32Array,
  numClasses: number,
  inf: ExportedInference,
  resizedF: Tensor,
): LevelCandidates {
  const g = logits.graph;
  const a = cell.length / 4;
  const scores = op.sigmoid(op.reshapeSymbolic(logits, [-1]));
  const idx = op.squeeze(op.nonZero(op.greater(scores, Math.fround(inf.scoreThresh))), [0]);
  const kept = op.gather(scores, idx);
  const k = op.min(op.shapeOf(idx), op.int64s(g, [inf.topkCandidates]));
  const top = op.topK(kept, k, { maxK: inf.topkCandidates });
  const flat = op.gather(idx, top.indices);
  const anchorIdx = op.div(flat, numClasses);
  const labels = op.sub(flat, op.mul(anchorIdx, numClasses));
  const rel = op.gather(op.reshapeSymbolic(deltas, [-1, 4]), anchorIdx);

  // AnchorGenerator: anchor = cell anchor + (x * stride_x, y * stride_y) of its location, with
  // stride = padded size // grid size (integer division, as torchvision).
  const grid = op.shapeOf(feature);
  const size = op.shapeOf(padded);
  const gw = dimAt(grid, 3);
  const strideY = op.div(dimAt(size, 2), dimAt(grid, 2));
  const strideX = op.div(dimAt(size, 3), gw);
  const loc = op.div(anchorIdx, a);
  const which = op.sub(anchorIdx, op.mul(loc, a));
  const gy = op.div(loc, gw);
  const gx = op.sub(loc, op.mul(gy, gw));
  const sx = op.unsqueeze(op.cast(op.mul(gx, strideX), 'float32'), [1]);
  const sy = op.unsqueeze(op.cast(op.mul(gy, strideY), 'float32'), [1]);
  const anchors = op.add(op.gather(g.constant(cell, [a, 4], 'float32'), which), op.concat([sx, sy, sx, sy], 1));

  // BoxCoder.decode_single with weights (1, 1, 1, 1) and torchvision's float32 steps.
  const [x1, y1, x2, y2] = [0, 1, 2, 3].map((c) => column(anchors, c)) as [Tensor, Tensor, Tensor, Tensor];
  const widths = op.sub(x2, x1);
  const heights = op.sub(y2, y1);
  const ctrX = op.add(x1, op.mul(widths, 0.5));
  const ctrY = op.add(y1, op.mul(heights, 0.5));
  const [dx, dy, dw, dh] = [0, 1, 2, 3].map((c) => column(rel, c)) as [Tensor, Tensor, Tensor, Tensor];
  const clip = Math.fround(BBOX_XFORM_CLIP);
  const predCx = op.add(op.mul(dx, widths), ctrX);
  const predCy = op.add(op.mul(dy, heights), ctrY);
  const halfW = op.mul(op.mul(op.exp(op.min(dw, clip)), widths), 0.5);
  const halfH = op.mul(op.mul(op.exp(op.min(dh, clip)), heights), 0.5);

  // clip_boxes_to_image: x to [0, width], y to [0, height] of the resized image.
  const h = op.squeeze(op.slice(resizedF, [0], [1], [0]), [0]);
  const w = op.squeeze(op.slice(resizedF, [1], [2], [0]), [0]);
  const clamp = (v: Tensor, hi: Tensor): Tensor => op.max(op.min(v, hi), 0);
  const boxes = op.concat([clamp(op.sub(predCx, halfW), w), clamp(op.sub(predCy, halfH), h), clamp(op.add(predCx, halfW), w), clamp(op.add(predCy, halfH), h)], 1);
  return { boxes, scores: top.values, labels };
}

/**
 * Builds the detection graph of `model` (see the module comment). With `fixedSize` the input
 * has static dimensions; otherwise its height and width are run-time dimensions and the graph
 * is built at `referenceSize` (a detail that never shows in the model).
 */
export function buildDetectionGraph(model: RetinaNet, opts: DetectionGraphOptions = {}): DetectionGraph {
  const cfg = model.config;
  const inf = exportedInference(cfg, opts);
  if (opts.fixedSize && !opts.fixedSize.every((d) => Number.isInteger(d) && d >= 1)) throw new InputError(`fixed input size must be positive integers, got ${opts.fixedSize.join('x')}`);
  const ref = opts.fixedSize ?? opts.referenceSize ?? [cfg.transform.minSize, Math.round((cfg.transform.minSize * 4) / 3)];
  const g = new Graph();
  const image = g.input('image', 'uint8', [ref[0], ref[1], 3], opts.fixedSize ? undefined : ['height', 'width', null]);
  const pre = preprocess(g, image, cfg, ref);
  const net = buildRetinaNet(g, model.store, pre.input, cfg);

  const a = anchorsPerLocationOf(cfg);
  const levels = net.levels.map((lv, l) => {
    const cell = cellAnchors(cfg.anchors.sizes[l]!, cfg.anchors.aspectRatios[l]!);
    if (cell.length / 4 !== a) throw new GraphError(`anchors: level ${l} has ${cell.length / 4} anchors per location, the head ${a}`);
    return levelCandidates(lv.clsLogits, lv.boxDeltas, net.features[l]!, pre.input, cell, cfg.numClasses, inf, pre.resizedF);
  });
  const boxes = op.concat(levels.map((c) => c.boxes), 0);
  const scores = op.concat(levels.map((c) => c.scores), 0);
  const labels = op.concat(levels.map((c) => c.labels), 0);

  // batched_nms: NonMaxSuppression with the classes on its class axis (each class's score row
  // holds its own candidates' scores, -1 elsewhere, below the threshold 0), at most
  // detectionsPerImg kept per class: more could never reach the final list.
  const classes = g.constant(BigInt64Array.from({ length: cfg.numClasses }, (_, i) => BigInt(i)), [cfg.numClasses, 1], 'int64');
  const own = op.equal(classes, op.unsqueeze(labels, [0]));
  const classScores = op.where(own, op.unsqueeze(scores, [0]), op.scalar(g, -1));
  const selected = op.nonMaxSuppression(op.unsqueeze(boxes, [0]), op.unsqueeze(classScores, [0]), inf.detectionsPerImg, Math.fround(inf.nmsThresh), 0);
  // NMS lists the kept boxes class by class; order them by score, equal scores by candidate
  // index (torchvision's and RetinaNet.detect's order): sort the indices, then a stable top-k.
  const keptIdx = op.squeeze(op.slice(selected, [2], [3], [1]), [1]);
  const byIndex = op.topK(keptIdx, op.shapeOf(keptIdx), { largest: false }).values;
  const d = op.min(op.shapeOf(byIndex), op.int64s(g, [inf.detectionsPerImg]));
  const best = op.topK(op.gather(scores, byIndex), d, { maxK: inf.detectionsPerImg });
  const keep = op.gather(byIndex, best.indices);

  // postprocess: resize_boxes back to the input's pixels with float32 ratios original / resized.
  const ratio = op.div(pre.originalF, pre.resizedF); // [h, w]
  const ratioXY = op.gather(ratio, g.constant(BigInt64Array.of(1n, 0n, 1n, 0n), [4], 'int64'));
  const outBoxes = op.mul(op.gather(boxes, keep), ratioXY);
  return {
    graph: g,
    image,
    boxes: g.output('boxes', outBoxes, ['detections', null]),
    scores: g.output('scores', best.values, ['detections']),
    labels: g.output('labels', op.gather(labels, keep), ['detections']),
    inference: inf,
  };
}

/** Metadata keys of an exported model (`metadata_props`, all JSON except `format`). */
export const EXPORT_METADATA = {
  /** 'retinanet-ts/1'. */
  format: 'format',
  /** Class names, index = label. */
  classNames: 'class_names',
  /** COCO category id per label, when known. */
  categoryIds: 'category_ids',
  /** The model's RetinaNetConfig. */
  config: 'config',
  /** The post-processing settings baked in: {scoreThresh, nmsThresh, topkCandidates, detectionsPerImg}. */
  inference: 'inference',
  /** The preprocessing: {minSize, maxSize, mean, std, sizeDivisible, resize}. */
  preprocessing: 'preprocessing',
  /** null for float32, or the int8 method and calibration facts. */
  quantization: 'quantization',
} as const;

export const EXPORT_FORMAT = 'retinanet-ts/1';

/** What an exported model's metadata says, parsed. */
export interface ExportMetadata {
  classNames?: string[];
  categoryIds?: number[];
  config: RetinaNetConfig;
  inference: ExportedInference;
  quantization: Record<string, unknown> | null;
}

/** The metadata_props of an export of `model`. */
export function exportMetadata(model: RetinaNet, inf: ExportedInference, quantization: Record<string, unknown> | null): Record<string, string> {
  const t = model.config.transform;
  const m: Record<string, string> = {
    [EXPORT_METADATA.format]: EXPORT_FORMAT,
    [EXPORT_METADATA.config]: JSON.stringify(model.config),
    [EXPORT_METADATA.inference]: JSON.stringify(inf),
    [EXPORT_METADATA.preprocessing]: JSON.stringify({
      input: 'uint8 RGB [height, width, 3]',
      minSize: t.minSize,
      maxSize: t.maxSize,
      mean: t.mean,
      std: t.std,
      sizeDivisible: SIZE_DIVISIBLE,
      resize: 'bilinear, half_pixel (torch interpolate align_corners=False), short side to minSize, long side at most maxSize',
    }),
    [EXPORT_METADATA.quantization]: JSON.stringify(quantization),
  };
  if (model.classNames) m[EXPORT_METADATA.classNames] = JSON.stringify(model.classNames);
  if (model.categoryIds) m[EXPORT_METADATA.categoryIds] = JSON.stringify(model.categoryIds);
  return m;
}

/** Reads and checks the metadata of exported model bytes; `file` names them in errors. */
export function parseExportMetadata(bytes: Uint8Array, file: string): ExportMetadata {
  let props: Record<string, string>;
  try {
    props = readMetadata(bytes);
  } catch (err) {
    throw new InputError(`${file} is not an ONNX model (${(err as Error).message})`);
  }
  if (props[EXPORT_METADATA.format] !== EXPORT_FORMAT) {
    throw new InputError(`${file} is not a model exported by 'retinanet export' (its metadata has no format '${EXPORT_FORMAT}'); export one with: retinanet export --weights W.safetensors --out model.onnx`);
  }
  const json = <T>(key: string): T | undefined => {
    const v = props[key];
    if (v === undefined) return undefined;
    try {
      return JSON.parse(v) as T;
    } catch {
      throw new InputError(`${file}: metadata '${key}' is not valid JSON`);
    }
  };
  const config = json<RetinaNetConfig>(EXPORT_METADATA.config);
  const inference = json<ExportedInference>(EXPORT_METADATA.inference);
  if (!config || !inference) throw new InputError(`${file}: metadata lacks '${EXPORT_METADATA.config}' or '${EXPORT_METADATA.inference}'; re-export the model`);
  return {
    config,
    inference,
    classNames: json<string[]>(EXPORT_METADATA.classNames),
    categoryIds: json<number[]>(EXPORT_METADATA.categoryIds),
    quantization: json<Record<string, unknown> | null>(EXPORT_METADATA.quantization) ?? null,
  };
}

export interface ExportOptions extends DetectionGraphOptions {
  /** ONNX opset (default 17; 13 to 21). */
  opset?: number;
}

/**
 * The float32 detection model of `model` as ONNX bytes, with class names and config facts in
 * its metadata. A model with run-time dimensions is built at two reference sizes and the two
 * serializations compared, so that a size fixed by mistake in the graph fails here.
 */
export function exportDetector(model: RetinaNet, opts: ExportOptions = {}): Uint8Array {
  const build = (referenceSize?: readonly [number, number]): Uint8Array => {
    const d = buildDetectionGraph(model, { ...opts, referenceSize });
    return serialize(d.graph, {
      outputs: [d.boxes, d.scores, d.labels],
      bake: model.store.values,
      opset: opts.opset ?? OPSET,
      name: model.config.name,
      metadata: exportMetadata(model, d.inference, null),
      docString: EXPORT_DOC,
    });
  };
  const bytes = build();
  if (!opts.fixedSize) {
    const { minSize } = model.config.transform;
    assertSameModel(bytes, build([minSize + 96, minSize + 32]));
  }
  return bytes;
}

/** Throws when two serializations of one model differ (a size fixed in the graph by mistake). */
export function assertSameModel(a: Uint8Array, b: Uint8Array): void {
  if (a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))) return;
  throw new GraphError('export: the graph depends on the size it was built at (a static size of a run-time dimension reached the model); this is a bug');
}

/** The graph's doc string: how to call the model. */
export const EXPORT_DOC =
  'RetinaNet detector exported by retinanet-ts. Input "image": uint8 RGB [height, width, 3] of any size. ' +
  'Outputs: "boxes" float32 [D, 4] (x1, y1, x2, y2 in the input\'s pixels), "scores" float32 [D] (best first), ' +
  '"labels" int64 [D] (index into metadata class_names). Preprocessing, NMS and the score threshold are in the graph.';
