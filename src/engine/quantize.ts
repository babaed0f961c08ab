/**
 * Static int8 quantization of a float graph in ONNX's QDQ form: QuantizeLinear/DequantizeLinear
 * pairs around the convolutions, which ONNX Runtime fuses into integer kernels (QLinearConv,
 * QLinearAdd, uint8 MaxPool and Resize) while the file stays standard ONNX.
 *
 * - Weights: int8, symmetric, per output channel (scale = max|w_c| / 127, zero point 0).
 * - Biases: int32 with scale = input scale x weight scale (what QLinearConv adds).
 * - Activations: uint8, asymmetric, from a calibrated [min, max] widened to hold 0
 *   (scale = (max - min) / 255, zero point = round(-min / scale)).
 *
 * Where the activations are quantized (the "points"): every conv input and output; the output
 * of an Add whose two inputs are points (residual and FPN sums); MaxPool and nearest Resize
 * outputs take their input's parameters, so they run on uint8. A conv or Add whose only consumer
 * is a Relu is quantized after the Relu with zero point 0 and the Relu dropped: quantizing to
 * [0, 255] with zero point 0 clamps negatives as the Relu did.
 */
import { Graph, GraphError, type Node, type Tensor } from './graph.js';
import * as op from './ops.js';
import { requiredSubgraph } from './onnx.js';

/** A calibrated activation range. */
export interface ActivationRange {
  min: number;
  max: number;
}

/** Where a float graph gets quantized; `observe` lists the tensors whose ranges calibration must measure. */
export interface QdqPlan {
  readonly graph: Graph;
  readonly outputs: readonly Tensor[];
  /** The convs to quantize (constant weight and bias). */
  readonly convs: ReadonlySet<Node>;
  /** Relu nodes folded into the quantization of their input. */
  readonly fusedRelus: ReadonlySet<Node>;
  /** Quantized tensors: measured (`observe`) or sharing another's parameters (MaxPool, nearest Resize). */
  readonly points: ReadonlyMap<Tensor, { sameAs?: Tensor }>;
  /** Tensors whose [min, max] calibration measures, in graph order. */
  readonly observe: readonly Tensor[];
}

export interface PlanOptions {
  /** Leave this conv in float (e.g. the last layers of a head); default: quantize every conv with constant weights. */
  keepFloat?: (conv: Node) => boolean;
}

/** Whether a tensor's value is fixed when the graph is built (only parameters and constants upstream). */
function constantValued(t: Tensor, memo: Map<Tensor, boolean>): boolean {
  let v = memo.get(t);
  if (v !== undefined) return v;
  if (!t.producer) v = t.source === 'param' || t.source === 'constant';
  else v = t.producer.inputs.every((i) => i === null || constantValued(i, memo));
  memo.set(t, v);
  return v;
}

/** Decides where `graph` (computing `outputs`) is quantized. */
export function planQdq(graph: Graph, outputs: readonly Tensor[], opts: PlanOptions = {}): QdqPlan {
  const { nodes } = requiredSubgraph(graph, outputs);
  const consumers = new Map<Tensor, Node[]>();
  for (const n of nodes) for (const i of n.inputs) if (i) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  const isOutput = new Set(outputs);
  const memo = new Map<Tensor, boolean>();
  const convs = new Set<Node>();
  const fusedRelus = new Set<Node>();
  const points = new Map<Tensor, { sameAs?: Tensor }>();
  const observe: Tensor[] = [];
  const measured = (t: Tensor): void => {
    if (points.has(t)) return;
    points.set(t, {});
    observe.push(t);
  };
  // The tensor that carries y's quantized value: the Relu's output when a Relu is y's only use.
  const afterRelu = (y: Tensor): Tensor => {
    const uses = consumers.get(y) ?? [];
    const r = uses[0];
    if (uses.length === 1 && r && r.opType === 'Relu' && !isOutput.has(y)) {
      fusedRelus.add(r);
      return r.outputs[0]!;
    }
    return y;
  };
  for (const n of nodes) {
    const [x, w, b] = n.inputs;
    if (n.opType === 'Conv' && x && w && !constantValued(x, memo) && constantValued(w, memo) && (!b || constantValued(b, memo)) && !opts.keepFloat?.(n)) {
      convs.add(n);
      measured(x);
      measured(afterRelu(n.outputs[0]!));
    } else if (n.opType === 'Add' && n.inputs.every((i) => i !== null && points.has(i))) {
      measured(afterRelu(n.outputs[0]!));
    } else if ((n.opType === 'MaxPool' || (n.opType === 'Resize' && n.attrs['mode']?.value === 'nearest')) && x && points.has(x)) {
      // Their output lies in their input's range (MaxPool's optional Indices output is never used in inference graphs).
      const src = points.get(x)!.sameAs ?? x;
      if (!points.has(n.outputs[0]!)) points.set(n.outputs[0]!, { sameAs: src });
    }
  }
  return { graph, outputs, convs, fusedRelus, points, observe };
}

/** uint8 parameters of a range widened to hold 0. */
export function activationParams(r: ActivationRange): { scale: number; zeroPoint: number } {
  const lo = Math.min(r.min, 0);
  const hi = Math.max(r.max, 0);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) throw new GraphError(`quantize: activation range [${r.min}, ${r.max}] is not finite`);
  const scale = Math.fround((hi - lo) / 255);
  if (scale === 0) return { scale: 1, zeroPoint: 0 };
  return { scale, zeroPoint: Math.min(255, Math.max(0, Math.round(-lo / scale))) };
}

/** Per-output-channel symmetric int8 weights: values in [-127, 127] and one scale per channel. */
export function quantizeWeights(w: Float32Array, channels: number): { q: Int8Array; scales: Float32Array } {
  const per = w.length / channels;
  if (!Number.isInteger(per)) throw new GraphError(`quantize: ${w.length} weights do not split into ${channels} channels`);
  const q = new Int8Array(w.length);
  const scales = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    let amax = 0;
    for (let i = c * per; i < (c + 1) * per; i++) amax = Math.max(amax, Math.abs(w[i]!));
    const s = amax > 0 ? Math.fround(amax / 127) : 1;
    scales[c] = s;
    for (let i = c * per; i < (c + 1) * per; i++) q[i] = Math.max(-127, Math.min(127, Math.round(w[i]! / s)));
  }
  return { q, scales };
}

/**
 * Adds ReduceMin/ReduceMax of every tensor calibration observes to the plan's graph; returns
 * them in the order of `plan.observe`, as graph outputs to serialize.
 */
export function observers(plan: QdqPlan): { tensor: Tensor; min: Tensor; max: Tensor }[] {
  return plan.observe.map((t) => ({ tensor: t, min: op.reduceMin(t), max: op.reduceMax(t) }));
}

/**
 * The quantized graph: `plan.graph` copied node by node with the Q/DQ pairs inserted.
 * `ranges` holds a range for every tensor of `plan.observe`; `values` the float values of every
 * quantized conv's weight and bias tensors (they are constant-valued: parameters folded with a
 * frozen BatchNorm, say). Graph outputs keep their names and dimension names.
 */
export function rewriteQdq(plan: QdqPlan, ranges: ReadonlyMap<Tensor, ActivationRange>, values: ReadonlyMap<Tensor, Float32Array>): { graph: Graph; outputs: Tensor[] } {
  const src = plan.graph;
  const g = new Graph();
  const map = new Map<Tensor, Tensor>();
  const quantized = new Map<Tensor, { q: Tensor; scale: Tensor; zeroPoint: Tensor; scaleValue: number }>();
  const params = new Map<Tensor, { scale: number; zeroPoint: number }>();
  for (const [t, p] of plan.points) {
    const from = p.sameAs ?? t;
    const r = ranges.get(from);
    if (!r) throw new GraphError(`quantize: no calibrated range for ${from.name}`);
    params.set(t, activationParams(r));
  }

  const leaf = (t: Tensor): Tensor => {
    let m = map.get(t);
    if (m) return m;
    if (t.source === 'constant') {
      const c = src.constants.get(t.name)!;
      m = g.constant(c.data, t.shape, t.dtype);
    } else if (t.source === 'param') {
      m = g.param(t.name, t.shape, t.dtype);
    } else {
      m = g.input(t.name, t.dtype, t.shape, t.dimNames);
    }
    map.set(t, m);
    return m;
  };
  // A consumer's view of t: a fresh DequantizeLinear when t is quantized (ONNX Runtime fuses a
  // DQ into the one node it feeds), else t's copy.
  const read = (t: Tensor | null): Tensor | null => {
    if (t === null) return null;
    const qt = quantized.get(t);
    if (qt) return op.dequantizeLinear(qt.q, qt.scale, qt.zeroPoint);
    const m = map.get(t);
    if (m) return m;
    if (t.producer) throw new GraphError(`quantize: ${t.name} read before it is computed`);
    return leaf(t);
  };
  const quantizeAs = (t: Tensor, value: Tensor): void => {
    const p = params.get(t)!;
    const scale = g.constant(Float32Array.of(p.scale), [], 'float32');
    const zeroPoint = g.constant(Uint8Array.of(p.zeroPoint), [], 'uint8');
    quantized.set(t, { q: op.quantizeLinear(value, scale, zeroPoint), scale, zeroPoint, scaleValue: p.scale });
  };
  const weightCache = new Map<Tensor, { q: Tensor; scales: Float32Array; scale: Tensor; zeroPoint: Tensor }>();
  const weightOf = (w: Tensor): { q: Tensor; scales: Float32Array; scale: Tensor; zeroPoint: Tensor } => {
    let e = weightCache.get(w);
    if (e) return e;
    const v = values.get(w);
    if (!v) throw new GraphError(`quantize: no value for the weight ${w.name}`);
    const cOut = w.shape[0]!;
    const { q, scales } = quantizeWeights(v, cOut);
    e = { q: g.constant(q, w.shape, 'int8'), scales, scale: g.constant(scales, [cOut], 'float32'), zeroPoint: g.constant(new Int8Array(cOut), [cOut], 'int8') };
    weightCache.set(w, e);
    return e;
  };

  // A quantized graph input (or constant) is quantized where it enters.
  for (const t of plan.points.keys()) if (!t.producer) quantizeAs(t, leaf(t));

  const outputs = new Map<Tensor, Tensor>();
  const isOutput = new Set(plan.outputs);
  const { nodes } = requiredSubgraph(src, plan.outputs);
  for (const n of nodes) {
    if (plan.fusedRelus.has(n)) continue;
    if (plan.convs.has(n)) {
      const [x, w, b] = n.inputs as [Tensor, Tensor, Tensor | null | undefined];
      const xq = quantized.get(x);
      if (!xq) throw new GraphError(`quantize: the input of conv ${n.outputs[0]!.name} is not quantized`);
      const wq = weightOf(w);
      const inputs: Tensor[] = [read(x)!, op.dequantizeLinear(wq.q, wq.scale, wq.zeroPoint, 0)];
      if (b) {
        const bv = values.get(b);
        if (!bv) throw new GraphError(`quantize: no value for the bias ${b.name}`);
        const bScales = wq.scales.map((s) => Math.fround(s * xq.scaleValue));
        const bq = Int32Array.from(bv, (v, c) => Math.max(-2147483647, Math.min(2147483647, Math.round(v / bScales[c]!))));
        const cOut = bv.length;
        inputs.push(op.dequantizeLinear(g.constant(bq, [cOut], 'int32'), g.constant(bScales, [cOut], 'float32'), g.constant(new Int32Array(cOut), [cOut], 'int32'), 0));
      }
      const y = n.outputs[0]!;
      const [out] = g.addNode('Conv', inputs, [{ dtype: y.dtype, shape: y.shape, dynamic: y.dynamic }], n.attrs);
      const carrier = [...plan.fusedRelus].find((r) => r.inputs[0] === y)?.outputs[0] ?? y;
      quantizeAs(carrier, out!);
      continue;
    }
    if (n.opType === 'Identity' && n.outputs.length === 1 && isOutput.has(n.outputs[0]!)) {
      const o = n.outputs[0]!;
      outputs.set(o, g.output(o.name, read(n.inputs[0]!)!, o.dimNames));
      continue;
    }
    const copies = g.addNode(
      n.opType,
      n.inputs.map(read),
      n.outputs.map((o) => ({ dtype: o.dtype, shape: o.shape, dynamic: o.dynamic })),
      n.attrs,
    );
    n.outputs.forEach((o, i) => {
      const c = copies[i]!;
      map.set(o, c);
      if (plan.points.has(o)) quantizeAs(o, c);
      else {
        const relu = [...plan.fusedRelus].find((r) => r.inputs[0] === o);
        if (relu) quantizeAs(relu.outputs[0]!, c);
      }
    });
  }
  const outs = plan.outputs.map((o) => {
    const m = outputs.get(o) ?? read(o);
    if (!m) throw new GraphError(`quantize: output ${o.name} was not computed`);
    return m;
  });
  return { graph: g, outputs: outs };
}
