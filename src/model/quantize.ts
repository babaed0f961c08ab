/**
 * int8 export: static post-training quantization of the exported detector (QDQ form, see
 * engine/quantize.ts). Activation ranges are the min/max over the calibration images of each
 * quantized tensor (the smallest min and the largest max seen); weights are per-channel
 * symmetric int8 of the folded (conv x frozen BatchNorm) weights. Preprocessing and
 * post-processing stay in float.
 */
import { Executable, OnnxSession } from '../engine/runtime.js';
import { OPSET, serialize } from '../engine/onnx.js';
import type { Tensor } from '../engine/graph.js';
import { type ActivationRange, observers, planQdq, rewriteQdq } from '../engine/quantize.js';
import { chwToHwcBytes, type RgbImage } from '../io/image.js';
import { InputError } from '../core/errors.js';
import type { RetinaNet } from './model.js';
import { EXPORT_DOC, type ExportOptions, buildDetectionGraph, exportMetadata } from './export.js';

export interface Int8ExportOptions extends ExportOptions {
  /** ONNX Runtime threads for calibration (default: all cores). */
  threads?: number;
  /** Called after each calibration image. */
  onProgress?: (done: number) => void;
}

/** What the int8 export did, also stored in the model's `quantization` metadata. */
export interface QuantizationReport {
  method: string;
  weights: string;
  activations: string;
  calibration: string;
  calibrationImages: number;
  quantizedConvs: number;
  quantizedTensors: number;
}

/** Float values of constant-valued tensors (conv weights folded with frozen BatchNorm, biases), computed once. */
async function evaluateConstants(model: RetinaNet, tensors: readonly Tensor[], threads: number | undefined): Promise<Map<Tensor, Float32Array>> {
  const out = new Map<Tensor, Float32Array>();
  const computed: Tensor[] = [];
  for (const t of tensors) {
    const v = t.source === 'param' ? model.store.values.get(t.name) : undefined;
    if (v) out.set(t, v);
    else computed.push(t);
  }
  if (computed.length > 0) {
    const exe = await Executable.create(computed[0]!.graph, computed, { threads, bake: model.store.values });
    try {
      const values = await exe.run({});
      computed.forEach((t, i) => out.set(t, values[i] as Float32Array));
    } finally {
      await exe.release();
    }
  }
  return out;
}

/**
 * The int8 detection model of `model` as ONNX bytes, calibrated on `images` (any sizes; each
 * goes through the model's own preprocessing). Same inputs, outputs and metadata as
 * `exportDetector`, plus the method in the `quantization` metadata.
 */
export async function exportDetectorInt8(
  model: RetinaNet,
  images: Iterable<RgbImage> | AsyncIterable<RgbImage>,
  opts: Int8ExportOptions = {},
): Promise<{ bytes: Uint8Array; report: QuantizationReport }> {
  const d = buildDetectionGraph(model, opts);
  const outputs = [d.boxes, d.scores, d.labels];
  const plan = planQdq(d.graph, outputs);
  const constants = new Set<Tensor>();
  for (const n of plan.convs) for (const t of n.inputs.slice(1)) if (t) constants.add(t);
  const values = await evaluateConstants(model, [...constants], opts.threads);

  // Calibration: the float graph's network with a ReduceMin/ReduceMax per quantized tensor.
  const obs = observers(plan);
  const calib = await OnnxSession.create(serialize(d.graph, { outputs: obs.flatMap((o) => [o.min, o.max]), bake: model.store.values }), { threads: opts.threads });
  const ranges = new Map<Tensor, ActivationRange>(obs.map((o) => [o.tensor, { min: Infinity, max: -Infinity }]));
  let count = 0;
  try {
    for await (const image of images) {
      const r = await calib.run({ image: { data: chwToHwcBytes(image), dims: [image.height, image.width, 3] } });
      for (const o of obs) {
        const range = ranges.get(o.tensor)!;
        range.min = Math.min(range.min, (r[o.min.name]!.data as Float32Array)[0]!);
        range.max = Math.max(range.max, (r[o.max.name]!.data as Float32Array)[0]!);
      }
      count++;
      opts.onProgress?.(count);
    }
  } finally {
    await calib.release();
  }
  if (count === 0) throw new InputError('int8 calibration needs at least one image');

  const q = rewriteQdq(plan, ranges, values);
  const report: QuantizationReport = {
    method: 'static post-training quantization, QDQ (QuantizeLinear/DequantizeLinear around every conv)',
    weights: 'int8, symmetric, per output channel (max |w| / 127); biases int32',
    activations: 'uint8, asymmetric, per tensor; Relu after a conv or residual Add folded into the quantization',
    calibration: 'min/max over the calibration images',
    calibrationImages: count,
    quantizedConvs: plan.convs.size,
    quantizedTensors: plan.points.size,
  };
  const bytes = serialize(q.graph, {
    outputs: q.outputs,
    bake: model.store.values,
    opset: opts.opset ?? OPSET,
    name: `${model.config.name}_int8`,
    metadata: exportMetadata(model, d.inference, { ...report }),
    docString: EXPORT_DOC,
  });
  return { bytes, report };
}
