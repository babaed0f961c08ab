/**
 * One typed function per ONNX operator (opset 17). Each infers its output shape and dtype from
 * its inputs and throws a `GraphError` naming the operator and the mismatch when they disagree.
 * Layout conventions follow ONNX: images are NCHW, conv weights are [C_out, C_in/group, kH, kW].
 */
import { attr, type Attr, type DType, Graph, GraphError, type Shape, Tensor, isFloat, shapeSize } from './graph.js';

// ---------------------------------------------------------------------------------------------
// Helpers

function fmt(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

function one(g: Graph, op: string, inputs: (Tensor | null)[], dtype: DType, shape: Shape, attrs: Record<string, Attr> = {}, dynamic?: boolean): Tensor {
  return g.addNode(op, inputs, [dynamic === undefined ? { dtype, shape } : { dtype, shape, dynamic }], attrs)[0]!;
}

/** Refuses an op that would bake `x`'s reference size into the model when `x` is dynamic. */
function requireStatic(op: string, x: Tensor, instead: string): void {
  if (x.dynamic) {
    throw new GraphError(`${op}: ${x.name} [${x.shape.join(', ')}] has run-time dimensions; a static target would fix them to this size (use ${instead})`);
  }
}

function sameDtype(op: string, a: Tensor, b: Tensor): void {
  if (a.dtype !== b.dtype) throw new GraphError(`${op}: dtype mismatch ${a.dtype} vs ${b.dtype} (${a.name}, ${b.name})`);
}

function requireFloat(op: string, x: Tensor): void {
  if (!isFloat(x.dtype)) throw new GraphError(`${op}: expects a float tensor, got ${x.dtype} (${x.name})`);
}

function normAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new GraphError(`${op}: axis ${axis} out of range for rank ${rank}`);
  return a;
}

/** Numpy-style broadcast of two shapes. */
export function broadcastShapes(op: string, a: Shape, b: Shape): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new GraphError(`${op}: shapes ${fmt(a)} and ${fmt(b)} cannot be broadcast`);
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** An int64 constant vector (axes, shapes, pads) as ONNX wants them for shape-like inputs. */
export function int64s(g: Graph, values: readonly number[]): Tensor {
  return g.constant(BigInt64Array.from(values.map((v) => BigInt(v))), [values.length], 'int64');
}

/** A scalar constant of the given dtype. */
export function scalar(g: Graph, value: number, dtype: DType = 'float32'): Tensor {
  switch (dtype) {
    case 'float32':
      return g.constant(Float32Array.of(value), [], dtype);
    case 'float64':
      return g.constant(Float64Array.of(value), [], dtype);
    case 'int64':
      return g.constant(BigInt64Array.of(BigInt(value)), [], dtype);
    case 'int32':
      return g.constant(Int32Array.of(value), [], dtype);
    case 'bool':
    case 'uint8':
      return g.constant(Uint8Array.of(value), [], dtype);
    case 'int8':
      return g.constant(Int8Array.of(value), [], dtype);
  }
}

/** A scalar constant with the same dtype as `like`. */
export function scalarLike(like: Tensor, value: number): Tensor {
  return scalar(like.graph, value, like.dtype);
}

// ---------------------------------------------------------------------------------------------
// Elementwise

/** A binary op's operand: a tensor, or a number taken as a scalar constant of the other operand's dtype. */
export type Operand = Tensor | number;

function binary(op: string, a: Operand, b: Operand, outDtype?: DType): Tensor {
  if (typeof a === 'number' && typeof b === 'number') throw new GraphError(`${op}: at least one operand must be a tensor`);
  // The constant is created here, before the node, as a separate scalarLike() call would.
  const x = typeof a === 'number' ? scalarLike(b as Tensor, a) : a;
  const y = typeof b === 'number' ? scalarLike(x, b) : b;
  sameDtype(op, x, y);
  return one(x.graph, op, [x, y], outDtype ?? x.dtype, broadcastShapes(op, x.shape, y.shape));
}

/** Elementwise a + b with broadcasting (either may be a number). */
export const add = (a: Operand, b: Operand): Tensor => binary('Add', a, b);
/** Elementwise a - b with broadcasting (either may be a number). */
export const sub = (a: Operand, b: Operand): Tensor => binary('Sub', a, b);
/** Elementwise a * b with broadcasting (either may be a number). */
export const mul = (a: Operand, b: Operand): Tensor => binary('Mul', a, b);
/** Elementwise a / b with broadcasting (either may be a number). */
export const div = (a: Operand, b: Operand): Tensor => binary('Div', a, b);
/** Elementwise a ^ b with broadcasting (either may be a number). */
export const pow = (a: Operand, b: Operand): Tensor => binary('Pow', a, b);
/** Elementwise minimum (either may be a number). */
export const min = (a: Operand, b: Operand): Tensor => binary('Min', a, b);
/** Elementwise maximum (either may be a number). */
export const max = (a: Operand, b: Operand): Tensor => binary('Max', a, b);
export const equal = (a: Operand, b: Operand): Tensor => binary('Equal', a, b, 'bool');
export const less = (a: Operand, b: Operand): Tensor => binary('Less', a, b, 'bool');
export const lessOrEqual = (a: Operand, b: Operand): Tensor => binary('LessOrEqual', a, b, 'bool');
export const greater = (a: Operand, b: Operand): Tensor => binary('Greater', a, b, 'bool');
export const greaterOrEqual = (a: Operand, b: Operand): Tensor => binary('GreaterOrEqual', a, b, 'bool');
export const and = (a: Tensor, b: Tensor): Tensor => binary('And', a, b, 'bool');
export const or = (a: Tensor, b: Tensor): Tensor => binary('Or', a, b, 'bool');

function unary(op: string, x: Tensor, floatOnly = true, attrs: Record<string, Attr> = {}): Tensor {
  if (floatOnly) requireFloat(op, x);
  return one(x.graph, op, [x], x.dtype, x.shape, attrs);
}

export const neg = (x: Tensor): Tensor => unary('Neg', x, false);
export const sqrt = (x: Tensor): Tensor => unary('Sqrt', x);
export const exp = (x: Tensor): Tensor => unary('Exp', x);
export const log = (x: Tensor): Tensor => unary('Log', x);
export const abs = (x: Tensor): Tensor => unary('Abs', x, false);
export const relu = (x: Tensor): Tensor => unary('Relu', x);
export const sigmoid = (x: Tensor): Tensor => unary('Sigmoid', x);
/** log(1 + exp(x)), computed stably by ONNX Runtime for large |x|. */
export const softplus = (x: Tensor): Tensor => unary('Softplus', x);
export const sign = (x: Tensor): Tensor => unary('Sign', x, false);
export const reciprocal = (x: Tensor): Tensor => unary('Reciprocal', x);
export const tanh = (x: Tensor): Tensor => unary('Tanh', x);
export const identity = (x: Tensor): Tensor => unary('Identity', x, false);

export function not(x: Tensor): Tensor {
  if (x.dtype !== 'bool') throw new GraphError(`Not: expects bool, got ${x.dtype}`);
  return one(x.graph, 'Not', [x], 'bool', x.shape);
}

/** Clamps x to [min, max]; either bound may be omitted. */
export function clip(x: Tensor, lo?: number, hi?: number): Tensor {
  requireFloat('Clip', x);
  const g = x.graph;
  const inputs: (Tensor | null)[] = [x, lo === undefined ? null : scalarLike(x, lo)];
  if (hi !== undefined) inputs.push(scalarLike(x, hi));
  return one(g, 'Clip', inputs, x.dtype, x.shape);
}

/** Elementwise select: cond ? a : b, broadcasting all three. */
export function where(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  if (cond.dtype !== 'bool') throw new GraphError(`Where: condition must be bool, got ${cond.dtype}`);
  sameDtype('Where', a, b);
  const shape = broadcastShapes('Where', broadcastShapes('Where', cond.shape, a.shape), b.shape);
  return one(a.graph, 'Where', [cond, a, b], a.dtype, shape);
}

export function cast(x: Tensor, to: DType): Tensor {
  if (x.dtype === to) return x;
  return one(x.graph, 'Cast', [x], to, x.shape, { to: attr.int(onnxTypeCode(to)) });
}

/** Sum of any number of same-shaped (or broadcastable) tensors. */
export function sum(xs: readonly Tensor[]): Tensor {
  if (xs.length === 0) throw new GraphError('Sum: needs at least one input');
  if (xs.length === 1) return xs[0]!;
  let shape: Shape = xs[0]!.shape;
  for (const x of xs.slice(1)) {
    sameDtype('Sum', xs[0]!, x);
    shape = broadcastShapes('Sum', shape, x.shape);
  }
  return one(xs[0]!.graph, 'Sum', [...xs], xs[0]!.dtype, shape);
}

/** ONNX TensorProto.DataType code of a dtype. */
export function onnxTypeCode(dtype: DType): number {
  switch (dtype) {
    case 'float32':
      return 1;
    case 'uint8':
      return 2;
    case 'int8':
      return 3;
    case 'int32':
      return 6;
    case 'int64':
      return 7;
    case 'bool':
      return 9;
    case 'float64':
      return 11;
  }
}

// ---------------------------------------------------------------------------------------------
// Linear algebra

/** Matrix product with numpy semantics for rank >= 2 (batch dims broadcast). */
export function matmul(a: Tensor, b: Tensor): Tensor {
  sameDtype('MatMul', a, b);
  if (a.rank < 2 || b.rank < 2) throw new GraphError(`MatMul: inputs must have rank >= 2, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
  const [m, k] = a.shape.slice(-2) as [number, number];
  const [k2, n] = b.shape.slice(-2) as [number, number];
  if (k !== k2) throw new GraphError(`MatMul: inner dimensions differ: ${fmt(a.shape)} x ${fmt(b.shape)}`);
  const batch = broadcastShapes('MatMul', a.shape.slice(0, -2), b.shape.slice(0, -2));
  return one(a.graph, 'MatMul', [a, b], a.dtype, [...batch, m, n]);
}

export interface GemmOptions {
  alpha?: number;
  beta?: number;
  transA?: boolean;
  transB?: boolean;
}

/** alpha * op(A) @ op(B) + beta * C for 2-D A and B; C broadcasts to [M, N]. */
export function gemm(a: Tensor, b: Tensor, c?: Tensor, opts: GemmOptions = {}): Tensor {
  sameDtype('Gemm', a, b);
  if (a.rank !== 2 || b.rank !== 2) throw new GraphError(`Gemm: A and B must be 2-D, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
  const [m, k] = opts.transA ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
  const [k2, n] = opts.transB ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!];
  if (k !== k2) throw new GraphError(`Gemm: inner dimensions differ (${k} vs ${k2})`);
  if (c) broadcastShapes('Gemm', [m, n], c.shape);
  const attrs: Record<string, Attr> = {
    alpha: attr.float(opts.alpha ?? 1),
    beta: attr.float(opts.beta ?? 1),
    transA: attr.int(opts.transA ? 1 : 0),
    transB: attr.int(opts.transB ? 1 : 0),
  };
  return one(a.graph, 'Gemm', c ? [a, b, c] : [a, b], a.dtype, [m, n], attrs);
}

// ---------------------------------------------------------------------------------------------
// Convolution and pooling (2-D, NCHW)

export interface ConvOptions {
  /** [sH, sW] or one number for both; default 1. */
  strides?: number | readonly [number, number];
  /** [top, left, bottom, right] as ONNX orders them, or one number for all sides; default 0. */
  pads?: number | readonly [number, number, number, number];
  dilations?: number | readonly [number, number];
  group?: number;
}

function pair(v: number | readonly [number, number] | undefined, dflt: number): [number, number] {
  if (v === undefined) return [dflt, dflt];
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

function quad(v: number | readonly [number, number, number, number] | undefined): [number, number, number, number] {
  if (v === undefined) return [0, 0, 0, 0];
  return typeof v === 'number' ? [v, v, v, v] : [v[0], v[1], v[2], v[3]];
}

/** Normalised 2-D convolution geometry, shared by conv, its gradients and pooling. */
export interface ConvGeometry {
  strides: [number, number];
  pads: [number, number, number, number];
  dilations: [number, number];
  group: number;
}

export function convGeometry(opts: ConvOptions): ConvGeometry {
  return { strides: pair(opts.strides, 1), pads: quad(opts.pads), dilations: pair(opts.dilations, 1), group: opts.group ?? 1 };
}

function convOutDim(op: string, inDim: number, k: number, s: number, d: number, p0: number, p1: number): number {
  const out = Math.floor((inDim + p0 + p1 - d * (k - 1) - 1) / s) + 1;
  if (out <= 0) throw new GraphError(`${op}: input size ${inDim} too small for kernel ${k} (dilation ${d}, padding ${p0}+${p1})`);
  return out;
}

function geometryAttrs(geo: ConvGeometry, kernel: readonly [number, number]): Record<string, Attr> {
  return {
    kernel_shape: attr.ints(kernel),
    strides: attr.ints(geo.strides),
    pads: attr.ints(geo.pads),
    dilations: attr.ints(geo.dilations),
    group: attr.int(geo.group),
  };
}

/** 2-D convolution. x: [N, C_in, H, W], w: [C_out, C_in/group, kH, kW], b: [C_out]. */
export function conv(x: Tensor, w: Tensor, b?: Tensor | null, opts: ConvOptions = {}): Tensor {
  sameDtype('Conv', x, w);
  if (x.rank !== 4 || w.rank !== 4) throw new GraphError(`Conv: expects 4-D input and weight, got ${fmt(x.shape)} and ${fmt(w.shape)}`);
  const geo = convGeometry(opts);
  const [n, c, h, wd] = x.shape as [number, number, number, number];
  const [cOut, cInG, kh, kw] = w.shape as [number, number, number, number];
  if (c % geo.group !== 0 || cOut % geo.group !== 0) throw new GraphError(`Conv: group ${geo.group} does not divide channels (${c} in, ${cOut} out)`);
  if (c / geo.group !== cInG) {
    throw new GraphError(`Conv: input has ${c} channels, weight expects ${cInG * geo.group} (weight ${w.name} ${fmt(w.shape)}, group ${geo.group})`);
  }
  if (b && (b.rank !== 1 || b.shape[0] !== cOut)) throw new GraphError(`Conv: bias must be [${cOut}], got ${fmt(b.shape)}`);
  const oh = convOutDim('Conv', h, kh, geo.strides[0], geo.dilations[0], geo.pads[0], geo.pads[2]);
  const ow = convOutDim('Conv', wd, kw, geo.strides[1], geo.dilations[1], geo.pads[1], geo.pads[3]);
  return one(x.graph, 'Conv', b ? [x, w, b] : [x, w], x.dtype, [n, cOut, oh, ow], geometryAttrs(geo, [kh, kw]));
}

export interface ConvTransposeOptions extends ConvOptions {
  outputPadding?: number | readonly [number, number];
}

/** 2-D transposed convolution. x: [N, C_in, H, W], w: [C_in, C_out/group, kH, kW]. */
export function convTranspose(x: Tensor, w: Tensor, b?: Tensor | null, opts: ConvTransposeOptions = {}): Tensor {
  sameDtype('ConvTranspose', x, w);
  if (x.rank !== 4 || w.rank !== 4) throw new GraphError(`ConvTranspose: expects 4-D input and weight, got ${fmt(x.shape)} and ${fmt(w.shape)}`);
  const geo = convGeometry(opts);
  const op = pair(opts.outputPadding, 0);
  const [n, c, h, wd] = x.shape as [number, number, number, number];
  const [cIn, cOutG, kh, kw] = w.shape as [number, number, number, number];
  if (c !== cIn) throw new GraphError(`ConvTranspose: input has ${c} channels, weight expects ${cIn}`);
  const cOut = cOutG * geo.group;
  if (b && (b.rank !== 1 || b.shape[0] !== cOut)) throw new GraphError(`ConvTranspose: bias must be [${cOut}], got ${fmt(b.shape)}`);
  const oh = geo.strides[0] * (h - 1) + op[0] + ((kh - 1) * geo.dilations[0] + 1) - geo.pads[0] - geo.pads[2];
  const ow = geo.strides[1] * (wd - 1) + op[1] + ((kw - 1) * geo.dilations[1] + 1) - geo.pads[1] - geo.pads[3];
  if (oh <= 0 || ow <= 0) throw new GraphError(`ConvTranspose: empty output for input ${fmt(x.shape)}`);
  const attrs = { ...geometryAttrs(geo, [kh, kw]), output_padding: attr.ints(op) };
  return one(x.graph, 'ConvTranspose', b ? [x, w, b] : [x, w], x.dtype, [n, cOut, oh, ow], attrs);
}

export interface PoolOptions {
  kernel: number | readonly [number, number];
  strides?: number | readonly [number, number];
  pads?: number | readonly [number, number, number, number];
  ceilMode?: boolean;
}

function poolShape(op: string, x: Tensor, opts: PoolOptions): { shape: number[]; attrs: Record<string, Attr>; geo: ConvGeometry; kernel: [number, number] } {
  requireFloat(op, x);
  if (x.rank !== 4) throw new GraphError(`${op}: expects a 4-D input, got ${fmt(x.shape)}`);
  const kernel = pair(opts.kernel, 1);
  const geo = convGeometry({ strides: opts.strides ?? kernel, pads: opts.pads });
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const dim = (i: number, k: number, s: number, p0: number, p1: number): number => {
    const span = i + p0 + p1 - k;
    if (span < 0) throw new GraphError(`${op}: input size ${i} smaller than kernel ${k}`);
    return (opts.ceilMode ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  };
  const shape = [n, c, dim(h, kernel[0], geo.strides[0], geo.pads[0], geo.pads[2]), dim(w, kernel[1], geo.strides[1], geo.pads[1], geo.pads[3])];
  const attrs: Record<string, Attr> = {
    kernel_shape: attr.ints(kernel),
    strides: attr.ints(geo.strides),
    pads: attr.ints(geo.pads),
    ceil_mode: attr.int(opts.ceilMode ? 1 : 0),
  };
  return { shape, attrs, geo, kernel };
}

/** Max pooling; returns the pooled tensor. */
export function maxPool(x: Tensor, opts: PoolOptions): Tensor {
  // Values only: ONNX Runtime's MaxPool with the Indices output runs a generic loop 3-10x slower
  // than its plain kernel (docs/performance.md); the gradient rule asks for indices itself.
  const { shape, attrs } = poolShape('MaxPool', x, opts);
  return one(x.graph, 'MaxPool', [x], x.dtype, shape, attrs);
}

/**
 * Max pooling that also returns ONNX's flat int64 indices into the whole input tensor
 * (what the gradient scatters into).
 */
export function maxPoolWithIndices(x: Tensor, opts: PoolOptions): { values: Tensor; indices: Tensor } {
  const { shape, attrs } = poolShape('MaxPool', x, opts);
  const [values, indices] = x.graph.addNode('MaxPool', [x], [{ dtype: x.dtype, shape }, { dtype: 'int64', shape }], attrs);
  return { values: values!, indices: indices! };
}

/** Average pooling (padding counted in the divisor when `countIncludePad`). */
export function averagePool(x: Tensor, opts: PoolOptions & { countIncludePad?: boolean }): Tensor {
  const { shape, attrs } = poolShape('AveragePool', x, opts);
  attrs['count_include_pad'] = attr.int(opts.countIncludePad ? 1 : 0);
  return one(x.graph, 'AveragePool', [x], x.dtype, shape, attrs);
}

/**
 * Nearest-neighbour upsampling by integer factors on H and W, as torch's
 * `interpolate(mode="nearest")` does when the target size is an exact multiple.
 */
export function upsampleNearest(x: Tensor, factor: number | readonly [number, number] = 2): Tensor {
  if (x.rank !== 4) throw new GraphError(`Resize: expects a 4-D input, got ${fmt(x.shape)}`);
  const [fh, fw] = pair(factor, 2);
  if (!Number.isInteger(fh) || !Number.isInteger(fw) || fh < 1 || fw < 1) throw new GraphError(`Resize: factors must be positive integers, got ${fh}, ${fw}`);
  const g = x.graph;
  const scales = g.constant(Float32Array.of(1, 1, fh, fw), [4], 'float32');
  const [n, c, h, w] = x.shape as [number, number, number, number];
  return one(g, 'Resize', [x, null, scales], x.dtype, [n, c, h * fh, w * fw], {
    mode: attr.string('nearest'),
    coordinate_transformation_mode: attr.string('asymmetric'),
    nearest_mode: attr.string('floor'),
  });
}

// ---------------------------------------------------------------------------------------------
// Shape manipulation

/** Reshape; one dimension may be -1 (inferred) and 0 is not special. `x` must not be dynamic (see `reshapeSymbolic`). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  requireStatic('Reshape', x, 'reshapeSymbolic or reshapeTo');
  const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const unknown = shape.filter((d) => d === -1).length;
  if (unknown > 1) throw new GraphError(`Reshape: at most one -1 allowed in ${fmt(shape)}`);
  const resolved = shape.map((d) => (d === -1 ? x.size / known : d));
  if (shapeSize(resolved) !== x.size || resolved.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new GraphError(`Reshape: cannot reshape ${fmt(x.shape)} (${x.size} elements) to ${fmt(shape)}`);
  }
  if (resolved.length === x.rank && resolved.every((d, i) => d === x.shape[i])) return x;
  return one(x.graph, 'Reshape', [x, int64s(x.graph, resolved)], x.dtype, resolved);
}

/** [d0 * ... * d(axis-1), d(axis) * ...]: a reshape, or ONNX Flatten for a dynamic tensor. */
export function flatten(x: Tensor, axis = 1): Tensor {
  const a = axis < 0 ? axis + x.rank : axis;
  const out = [shapeSize(x.shape.slice(0, a)), shapeSize(x.shape.slice(a))];
  if (x.dynamic) return one(x.graph, 'Flatten', [x], x.dtype, out, { axis: attr.int(a) });
  return reshape(x, out);
}

/**
 * Inserts size-1 axes (positions in the output). A static tensor is reshaped; a dynamic one
 * goes through ONNX Unsqueeze, which holds for any run-time size.
 */
export function unsqueeze(x: Tensor, axes: readonly number[]): Tensor {
  const rank = x.rank + axes.length;
  const norm = axes.map((a) => normAxis('Unsqueeze', a, rank));
  const out: number[] = [];
  let j = 0;
  for (let i = 0; i < rank; i++) out.push(norm.includes(i) ? 1 : x.shape[j++]!);
  if (x.dynamic) return one(x.graph, 'Unsqueeze', [x, int64s(x.graph, norm)], x.dtype, out);
  return reshape(x, out);
}

/** Removes the given size-1 axes (ONNX Squeeze for a dynamic tensor, a reshape otherwise). */
export function squeeze(x: Tensor, axes: readonly number[]): Tensor {
  const norm = axes.map((a) => normAxis('Squeeze', a, x.rank));
  for (const a of norm) if (x.shape[a] !== 1) throw new GraphError(`Squeeze: axis ${a} of ${fmt(x.shape)} is not 1`);
  const out = x.shape.filter((_, i) => !norm.includes(i));
  if (x.dynamic) return one(x.graph, 'Squeeze', [x, int64s(x.graph, norm)], x.dtype, out);
  return reshape(x, out);
}

export function transpose(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.rank || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
    throw new GraphError(`Transpose: ${fmt(perm)} is not a permutation of rank ${x.rank}`);
  }
  if (perm.every((p, i) => p === i)) return x;
  return one(x.graph, 'Transpose', [x], x.dtype, perm.map((p) => x.shape[p]!), { perm: attr.ints(perm) });
}

export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new GraphError('Concat: needs at least one input');
  if (xs.length === 1) return xs[0]!;
  const first = xs[0]!;
  const a = normAxis('Concat', axis, first.rank);
  let total = 0;
  for (const x of xs) {
    sameDtype('Concat', first, x);
    if (x.rank !== first.rank || x.shape.some((d, i) => i !== a && d !== first.shape[i])) {
      throw new GraphError(`Concat: shapes ${fmt(first.shape)} and ${fmt(x.shape)} differ outside axis ${a}`);
    }
    total += x.shape[a]!;
  }
  const shape = [...first.shape];
  shape[a] = total;
  return one(first.graph, 'Concat', [...xs], first.dtype, shape, { axis: attr.int(a) });
}

/** Static slice geometry per axis, with numpy's clamping of starts/ends. */
export interface SliceSpec {
  starts: number[];
  ends: number[];
  axes: number[];
  steps: number[];
}

export function resolveSlice(op: string, shape: Shape, starts: readonly number[], ends: readonly number[], axes?: readonly number[], steps?: readonly number[]): SliceSpec & { outShape: number[] } {
  const ax = (axes ?? starts.map((_, i) => i)).map((a) => normAxis(op, a, shape.length));
  const st = steps ?? ax.map(() => 1);
  if (starts.length !== ax.length || ends.length !== ax.length || st.length !== ax.length) throw new GraphError(`${op}: starts, ends, axes and steps must have equal lengths`);
  const outShape = [...shape];
  const rs: number[] = [];
  const re: number[] = [];
  ax.forEach((a, i) => {
    const dim = shape[a]!;
    const step = st[i]!;
    if (step === 0) throw new GraphError(`${op}: step 0`);
    let s = starts[i]!;
    let e = ends[i]!;
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    if (step > 0) {
      s = Math.min(Math.max(s, 0), dim);
      e = Math.min(Math.max(e, 0), dim);
      outShape[a] = Math.max(0, Math.ceil((e - s) / step));
    } else {
      s = Math.min(Math.max(s, -1), dim - 1);
      e = Math.min(Math.max(e, -1), dim - 1);
      outShape[a] = Math.max(0, Math.ceil((e - s) / step));
    }
    rs.push(s);
    re.push(e);
  });
  return { starts: rs, ends: re, axes: ax, steps: [...st], outShape };
}

/**
 * numpy-style slice along `axes` (default: the leading axes), with optional steps (may be
 * negative). For a dynamic tensor the starts and ends go into the model as written, and ONNX
 * Runtime clamps them (numpy's rules) to the run-time size.
 */
export function slice(x: Tensor, starts: readonly number[], ends: readonly number[], axes?: readonly number[], steps?: readonly number[]): Tensor {
  const spec = resolveSlice('Slice', x.shape, starts, ends, axes, steps);
  const g = x.graph;
  if (x.dynamic) {
    const inputs = [x, int64s(g, starts), int64s(g, ends), int64s(g, spec.axes), int64s(g, spec.steps)];
    return one(g, 'Slice', inputs, x.dtype, spec.outShape);
  }
  // ONNX reads an end of -1 as "one before the last"; to run to the front with a negative step, use INT64_MIN-like sentinel.
  const ends64 = spec.ends.map((e, i) => (spec.steps[i]! < 0 && e === -1 ? -(2 ** 53) : e));
  const inputs = [x, int64s(g, spec.starts), int64s(g, ends64), int64s(g, spec.axes), int64s(g, spec.steps)];
  return one(g, 'Slice', inputs, x.dtype, spec.outShape);
}

/** Constant-value padding. pads are [begin_0, ..., begin_{r-1}, end_0, ..., end_{r-1}] (may be negative). */
export function pad(x: Tensor, pads: readonly number[], value = 0): Tensor {
  if (pads.length !== 2 * x.rank) throw new GraphError(`Pad: expects ${2 * x.rank} pad values for rank ${x.rank}, got ${pads.length}`);
  if (pads.every((p) => p === 0)) return x;
  const shape = x.shape.map((d, i) => d + pads[i]! + pads[i + x.rank]!);
  if (shape.some((d) => d < 0)) throw new GraphError(`Pad: negative output shape for ${fmt(x.shape)} with pads ${fmt(pads)}`);
  const g = x.graph;
  return one(g, 'Pad', [x, int64s(g, pads), scalarLike(x, value)], x.dtype, shape, { mode: attr.string('constant') });
}

/** Broadcasts x to `shape` (numpy rules). `x` must not be dynamic (see `expandTo`). */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  requireStatic('Expand', x, 'expandTo');
  const out = broadcastShapes('Expand', x.shape, shape);
  if (out.length === x.rank && out.every((d, i) => d === x.shape[i])) return x;
  return one(x.graph, 'Expand', [x, int64s(x.graph, shape)], x.dtype, out);
}

/** A tensor of `shape` filled with `value`, with the dtype of `like`. */
export function fill(like: Tensor, shape: readonly number[], value: number): Tensor {
  return expand(scalarLike(like, value), shape);
}

// ---------------------------------------------------------------------------------------------
// Indexing

function requireIndex(op: string, idx: Tensor): void {
  if (idx.dtype !== 'int64' && idx.dtype !== 'int32') throw new GraphError(`${op}: indices must be int64 or int32, got ${idx.dtype}`);
}

/** Takes entries along `axis` by `indices` (output shape: x.shape[:axis] + indices.shape + x.shape[axis+1:]). */
export function gather(x: Tensor, indices: Tensor, axis = 0): Tensor {
  requireIndex('Gather', indices);
  const a = normAxis('Gather', axis, x.rank);
  const shape = [...x.shape.slice(0, a), ...indices.shape, ...x.shape.slice(a + 1)];
  return one(x.graph, 'Gather', [x, indices], x.dtype, shape, { axis: attr.int(a) });
}

/** out[i][j] = x[indices[i][j]][j] (for axis 0): output has the indices' shape. */
export function gatherElements(x: Tensor, indices: Tensor, axis = 0): Tensor {
  requireIndex('GatherElements', indices);
  const a = normAxis('GatherElements', axis, x.rank);
  if (indices.rank !== x.rank) throw new GraphError(`GatherElements: indices rank ${indices.rank} differs from data rank ${x.rank}`);
  return one(x.graph, 'GatherElements', [x, indices], x.dtype, indices.shape, { axis: attr.int(a) });
}

export type ScatterReduction = 'none' | 'add' | 'mul' | 'min' | 'max';

/** Copy of data with data[indices[i][j]][j] = updates[i][j] (axis 0), or accumulated by `reduction`. */
export function scatterElements(data: Tensor, indices: Tensor, updates: Tensor, axis = 0, reduction: ScatterReduction = 'none'): Tensor {
  requireIndex('ScatterElements', indices);
  sameDtype('ScatterElements', data, updates);
  const a = normAxis('ScatterElements', axis, data.rank);
  if (indices.rank !== data.rank || updates.shape.some((d, i) => d !== indices.shape[i]) || updates.rank !== indices.rank) {
    throw new GraphError(`ScatterElements: indices ${fmt(indices.shape)} and updates ${fmt(updates.shape)} must match in shape and rank of data ${fmt(data.shape)}`);
  }
  return one(data.graph, 'ScatterElements', [data, indices, updates], data.dtype, data.shape, { axis: attr.int(a), reduction: attr.string(reduction) });
}

/** ScatterND: indices [..., k] address the leading k axes of data. */
export function scatterND(data: Tensor, indices: Tensor, updates: Tensor, reduction: ScatterReduction = 'none'): Tensor {
  if (indices.dtype !== 'int64') throw new GraphError(`ScatterND: indices must be int64, got ${indices.dtype}`);
  sameDtype('ScatterND', data, updates);
  const k = indices.shape[indices.rank - 1]!;
  const expected = [...indices.shape.slice(0, -1), ...data.shape.slice(k)];
  if (expected.length !== updates.rank || expected.some((d, i) => d !== updates.shape[i])) {
    throw new GraphError(`ScatterND: updates must be ${fmt(expected)}, got ${fmt(updates.shape)}`);
  }
  return one(data.graph, 'ScatterND', [data, indices, updates], data.dtype, data.shape, { reduction: attr.string(reduction) });
}

// ---------------------------------------------------------------------------------------------
// Reductions

function reducedShape(op: string, x: Tensor, axes: readonly number[] | undefined, keepdims: boolean): { axes: number[]; shape: number[] } {
  const ax = (axes ?? x.shape.map((_, i) => i)).map((a) => normAxis(op, a, x.rank));
  const shape = keepdims ? x.shape.map((d, i) => (ax.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !ax.includes(i));
  return { axes: ax, shape };
}

/** Sum over `axes` (all axes when omitted). */
export function reduceSum(x: Tensor, axes?: readonly number[], keepdims = false): Tensor {
  const r = reducedShape('ReduceSum', x, axes, keepdims);
  if (r.axes.length === 0) return x;
  // opset 13+ takes ReduceSum's axes as an input.
  return one(x.graph, 'ReduceSum', [x, int64s(x.graph, r.axes)], x.dtype, r.shape, { keepdims: attr.int(keepdims ? 1 : 0) });
}

/** Mean over `axes` (all axes when omitted). */
export function reduceMean(x: Tensor, axes?: readonly number[], keepdims = false): Tensor {
  const r = reducedShape('ReduceMean', x, axes, keepdims);
  if (r.axes.length === 0) return x;
  return one(x.graph, 'ReduceMean', [x], x.dtype, r.shape, { axes: attr.ints(r.axes), keepdims: attr.int(keepdims ? 1 : 0) });
}

/** Max over `axes` (all axes when omitted). */
export function reduceMax(x: Tensor, axes?: readonly number[], keepdims = false): Tensor {
  const r = reducedShape('ReduceMax', x, axes, keepdims);
  if (r.axes.length === 0) return x;
  return one(x.graph, 'ReduceMax', [x], x.dtype, r.shape, { axes: attr.ints(r.axes), keepdims: attr.int(keepdims ? 1 : 0) });
}

// ---------------------------------------------------------------------------------------------
// Composites

/**
 * Group normalisation over NCHW (torch.nn.GroupNorm semantics: biased variance, eps inside the
 * square root), built from primitive ops so that autodiff covers it. gamma/beta: [C].
 */
export function groupNorm(x: Tensor, numGroups: number, gamma: Tensor | null, beta: Tensor | null, eps = 1e-5): Tensor {
  requireFloat('GroupNorm', x);
  if (x.rank !== 4) throw new GraphError(`GroupNorm: expects NCHW, got ${fmt(x.shape)}`);
  const [n, c, h, w] = x.shape as [number, number, number, number];
  if (c % numGroups !== 0) throw new GraphError(`GroupNorm: ${numGroups} groups do not divide ${c} channels`);
  // A dynamic input (any H and W) is grouped with ONNX's 0/-1 and restored to its run-time shape.
  const xg = x.dynamic ? reshapeSymbolic(x, [0, numGroups, -1]) : reshape(x, [n, numGroups, (c / numGroups) * h * w]);
  let normed: Tensor;
  if (x.graph.options.fusedNorms && !x.dynamic && x.dtype === 'float32') {
    normed = layerNormLastAxis(xg, eps);
  } else {
    const centered = sub(xg, reduceMean(xg, [2], true));
    const variance = reduceMean(mul(centered, centered), [2], true);
    normed = div(centered, sqrt(add(variance, scalarLike(x, eps))));
  }
  let y = x.dynamic ? reshapeTo(normed, shapeOf(x), x.shape) : reshape(normed, [n, c, h, w]);
  if (gamma) y = mul(y, reshape(gamma, [1, c, 1, 1]));
  if (beta) y = add(y, reshape(beta, [1, c, 1, 1]));
  return y;
}

const unitScales = new WeakMap<Graph, Map<number, Tensor>>();

/**
 * (x - mean) / sqrt(var + eps) over the last axis, as one LayerNormalization node with a unit
 * scale and no bias (one constant of ones per length, shared by the graph). The node's Mean and
 * InvStdDev outputs exist for the gradient rule (autodiff.ts), which reuses InvStdDev instead of
 * recomputing the variance. Static float32 only (ONNX Runtime's kernel stashes in float32).
 */
export function layerNormLastAxis(x: Tensor, eps = 1e-5): Tensor {
  requireStatic('LayerNormalization', x, 'the primitive GroupNorm');
  if (x.dtype !== 'float32') throw new GraphError(`LayerNormalization: float32 only, got ${x.dtype} (${x.name})`);
  const len = x.shape[x.rank - 1]!;
  let cache = unitScales.get(x.graph);
  if (!cache) unitScales.set(x.graph, (cache = new Map()));
  let ones = cache.get(len);
  if (!ones) cache.set(len, (ones = x.graph.constant(new Float32Array(len).fill(1), [len], 'float32')));
  const stats = [...x.shape.slice(0, -1), 1];
  const [y] = x.graph.addNode(
    'LayerNormalization',
    [x, ones],
    [
      { dtype: 'float32', shape: x.shape },
      { dtype: 'float32', shape: stats },
      { dtype: 'float32', shape: stats },
    ],
    { axis: attr.int(-1), epsilon: attr.float(eps) },
  );
  return y!;
}

/** Per-channel affine y = x * scale + shift (a frozen BatchNorm); scale/shift: [C]. */
export function channelAffine(x: Tensor, scale: Tensor, shift: Tensor): Tensor {
  const c = x.shape[1]!;
  const bshape = [1, c, ...x.shape.slice(2).map(() => 1)];
  return add(mul(x, reshape(scale, bshape)), reshape(shift, bshape));
}

/** GatherND (batch_dims 0): indices [..., k] address the leading k axes of x. */
export function gatherND(x: Tensor, indices: Tensor): Tensor {
  if (indices.dtype !== 'int64') throw new GraphError(`GatherND: indices must be int64, got ${indices.dtype}`);
  const k = indices.shape[indices.rank - 1]!;
  if (k > x.rank) throw new GraphError(`GatherND: index depth ${k} exceeds data rank ${x.rank}`);
  return one(x.graph, 'GatherND', [x, indices], x.dtype, [...indices.shape.slice(0, -1), ...x.shape.slice(k)]);
}

// ---------------------------------------------------------------------------------------------
// Run-time sizes: ops for graphs with dynamic shapes (see graph.ts). A size computed in the
// graph has no value when the graph is built, so these ops take the reference-size shape of
// their output (`ref`) from the caller, or use the largest possible size (`nonZero`, `topK`
// with a computed k, `nonMaxSuppression`). Their outputs are `dynamic`.

/** Rounds down elementwise. */
export const floor = (x: Tensor): Tensor => unary('Floor', x);
/** Rounds up elementwise. */
export const ceil = (x: Tensor): Tensor => unary('Ceil', x);

/** Min over `axes` (all axes when omitted). */
export function reduceMin(x: Tensor, axes?: readonly number[], keepdims = false): Tensor {
  const r = reducedShape('ReduceMin', x, axes, keepdims);
  if (r.axes.length === 0) return x;
  return one(x.graph, 'ReduceMin', [x], x.dtype, r.shape, { axes: attr.ints(r.axes), keepdims: attr.int(keepdims ? 1 : 0) });
}

/**
 * The run-time shape of `x`: int64 [rank] (ONNX Shape). Its shape is static even when `x` is
 * dynamic; its values are what the sizes computed in the graph start from.
 */
export function shapeOf(x: Tensor): Tensor {
  return one(x.graph, 'Shape', [x], 'int64', [x.rank], {}, false);
}

/**
 * Reshape with ONNX's own target semantics, written into the model as given: 0 copies the
 * input's dimension at that position, -1 is inferred. It therefore holds at every run-time size
 * of a dynamic tensor, e.g. `[0, 32, -1]` groups channels whatever H and W are.
 */
export function reshapeSymbolic(x: Tensor, target: readonly number[]): Tensor {
  if (target.filter((d) => d === -1).length > 1) throw new GraphError(`Reshape: at most one -1 allowed in ${fmt(target)}`);
  const copied = target.map((d, i) => {
    if (d !== 0) return d;
    if (i >= x.rank) throw new GraphError(`Reshape: 0 at position ${i} of ${fmt(target)} but ${x.name} has rank ${x.rank}`);
    return x.shape[i]!;
  });
  const known = copied.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const resolved = copied.map((d) => (d === -1 ? x.size / known : d));
  if (shapeSize(resolved) !== x.size || resolved.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new GraphError(`Reshape: cannot reshape ${fmt(x.shape)} to ${fmt(target)} (0 copies, -1 infers)`);
  }
  return one(x.graph, 'Reshape', [x, int64s(x.graph, target)], x.dtype, resolved);
}

function requireShapeTensor(op: string, shape: Tensor, ref: Shape): void {
  if (shape.dtype !== 'int64' || shape.rank !== 1 || shape.shape[0] !== ref.length) {
    throw new GraphError(`${op}: the shape must be int64 [${ref.length}], got ${shape.dtype}${fmt(shape.shape)}`);
  }
}

/** Reshape to a shape computed in the graph (int64 [rank]); `ref` is the result's shape at the reference size. */
export function reshapeTo(x: Tensor, shape: Tensor, ref: Shape): Tensor {
  requireShapeTensor('Reshape', shape, ref);
  if (shapeSize(ref) !== x.size) throw new GraphError(`Reshape: reference shape ${fmt(ref)} does not hold the ${x.size} elements of ${fmt(x.shape)}`);
  return one(x.graph, 'Reshape', [x, shape], x.dtype, ref, {}, true);
}

/** Broadcast to a shape computed in the graph (ONNX Expand); `ref` is the result's shape at the reference size. */
export function expandTo(x: Tensor, shape: Tensor, ref: Shape): Tensor {
  requireShapeTensor('Expand', shape, ref);
  return one(x.graph, 'Expand', [x, shape], x.dtype, broadcastShapes('Expand', x.shape, ref), {}, true);
}

/** ONNX Range: start, start + delta, ... below limit (scalars of one dtype); `refLength` is its length at the reference size. */
export function range(start: Tensor, limit: Tensor, delta: Tensor, refLength: number): Tensor {
  sameDtype('Range', start, limit);
  sameDtype('Range', start, delta);
  for (const t of [start, limit, delta]) if (t.rank !== 0) throw new GraphError(`Range: start, limit and delta must be scalars, got ${t.name} ${fmt(t.shape)}`);
  return one(start.graph, 'Range', [start, limit, delta], start.dtype, [refLength], {}, true);
}

/** Indices of the non-zero (true) elements: int64 [rank, count]; the reference count is every element. */
export function nonZero(x: Tensor): Tensor {
  return one(x.graph, 'NonZero', [x], 'int64', [x.rank, x.size], {}, true);
}

export interface TopKOptions {
  axis?: number;
  /** Largest first (default) or smallest first. */
  largest?: boolean;
  /** Largest k possible when k is computed in the graph (the reference size); default the axis length. */
  maxK?: number;
}

/**
 * The k largest (or smallest) entries along `axis`, sorted, with their int64 indices. Equal
 * values come in index order (ONNX TopK). `k` is a number, or an int64 [1] tensor computed in
 * the graph (e.g. min(1000, count)).
 */
export function topK(x: Tensor, k: number | Tensor, opts: TopKOptions = {}): { values: Tensor; indices: Tensor } {
  const a = normAxis('TopK', opts.axis ?? -1, x.rank);
  const dim = x.shape[a]!;
  const g = x.graph;
  let kt: Tensor;
  let refK: number;
  if (typeof k === 'number') {
    if (!Number.isInteger(k) || k < 0 || k > dim) throw new GraphError(`TopK: k = ${k} outside [0, ${dim}]`);
    kt = int64s(g, [k]);
    refK = k;
  } else {
    if (k.dtype !== 'int64' || k.rank !== 1 || k.shape[0] !== 1) throw new GraphError(`TopK: k must be int64 [1], got ${k.dtype}${fmt(k.shape)}`);
    kt = k;
    refK = Math.min(opts.maxK ?? dim, dim);
  }
  const shape = [...x.shape];
  shape[a] = refK;
  const dynamic = x.dynamic || typeof k !== 'number';
  const attrs = { axis: attr.int(a), largest: attr.int(opts.largest === false ? 0 : 1), sorted: attr.int(1) };
  const [values, indices] = g.addNode('TopK', [x, kt], [{ dtype: x.dtype, shape, dynamic }, { dtype: 'int64', shape, dynamic }], attrs);
  return { values: values!, indices: indices! };
}

/**
 * ONNX NonMaxSuppression: greedy NMS per batch and class. boxes [B, M, 4] (corners, any
 * order), scores [B, C, M]; a box is kept when its score is above `scoreThreshold` and its IoU
 * with every kept box of its class is at most `iouThreshold`. Returns int64 [S, 3] rows
 * (batch, class, box), class by class, each class best first.
 */
export function nonMaxSuppression(boxes: Tensor, scores: Tensor, maxPerClass: number, iouThreshold: number, scoreThreshold: number): Tensor {
  requireFloat('NonMaxSuppression', boxes);
  sameDtype('NonMaxSuppression', boxes, scores);
  if (boxes.rank !== 3 || boxes.shape[2] !== 4) throw new GraphError(`NonMaxSuppression: boxes must be [B, M, 4], got ${fmt(boxes.shape)}`);
  const [b, m] = boxes.shape as [number, number, number];
  if (scores.rank !== 3 || scores.shape[0] !== b || scores.shape[2] !== m) throw new GraphError(`NonMaxSuppression: scores must be [${b}, C, ${m}], got ${fmt(scores.shape)}`);
  const g = boxes.graph;
  const inputs = [boxes, scores, int64s(g, [maxPerClass]), g.constant(Float32Array.of(iouThreshold), [1], 'float32'), g.constant(Float32Array.of(scoreThreshold), [1], 'float32')];
  return one(g, 'NonMaxSuppression', inputs, 'int64', [b * scores.shape[1]! * Math.min(m, maxPerClass), 3], { center_point_box: attr.int(0) }, true);
}

/**
 * Resize of an NCHW tensor to sizes computed in the graph (int64 [4]), ONNX Resize with
 * `half_pixel` coordinates: `linear` is torch's `interpolate(mode="bilinear",
 * align_corners=False)` without antialiasing. `ref` is the output shape at the reference size.
 */
export function resizeTo(x: Tensor, sizes: Tensor, ref: Shape, mode: 'linear' | 'nearest' = 'linear'): Tensor {
  requireFloat('Resize', x);
  requireShapeTensor('Resize', sizes, ref);
  if (ref.length !== x.rank) throw new GraphError(`Resize: reference shape ${fmt(ref)} has another rank than ${fmt(x.shape)}`);
  const attrs: Record<string, Attr> = { mode: attr.string(mode), coordinate_transformation_mode: attr.string('half_pixel') };
  if (mode === 'nearest') attrs['nearest_mode'] = attr.string('floor');
  return one(x.graph, 'Resize', [x, null, null, sizes], x.dtype, ref, attrs, true);
}

/** Constant padding by amounts computed in the graph (int64 [2 * rank], ONNX's begin..., end... order). */
export function padTo(x: Tensor, pads: Tensor, ref: Shape, value = 0): Tensor {
  if (pads.dtype !== 'int64' || pads.rank !== 1 || pads.shape[0] !== 2 * x.rank) throw new GraphError(`Pad: pads must be int64 [${2 * x.rank}], got ${pads.dtype}${fmt(pads.shape)}`);
  if (ref.length !== x.rank) throw new GraphError(`Pad: reference shape ${fmt(ref)} has another rank than ${fmt(x.shape)}`);
  return one(x.graph, 'Pad', [x, pads, scalarLike(x, value)], x.dtype, ref, { mode: attr.string('constant') }, true);
}

/**
 * ONNX QuantizeLinear: saturate(round(x / scale) + zeroPoint), rounding half to even, to the
 * zero point's dtype (uint8 or int8). Per-tensor with scalar scale and zero point, or per
 * channel along `axis` with [C] ones.
 */
export function quantizeLinear(x: Tensor, scale: Tensor, zeroPoint: Tensor, axis?: number): Tensor {
  requireFloat('QuantizeLinear', x);
  if (zeroPoint.dtype !== 'uint8' && zeroPoint.dtype !== 'int8') throw new GraphError(`QuantizeLinear: zero point must be uint8 or int8, got ${zeroPoint.dtype}`);
  checkQuantParams('QuantizeLinear', x, scale, zeroPoint, axis);
  return one(x.graph, 'QuantizeLinear', [x, scale, zeroPoint], zeroPoint.dtype, x.shape, axis === undefined ? {} : { axis: attr.int(normAxis('QuantizeLinear', axis, x.rank)) });
}

/** ONNX DequantizeLinear: (x - zeroPoint) * scale as float32; scale and zero point as in `quantizeLinear`. */
export function dequantizeLinear(x: Tensor, scale: Tensor, zeroPoint: Tensor, axis?: number): Tensor {
  sameDtype('DequantizeLinear', x, zeroPoint);
  checkQuantParams('DequantizeLinear', x, scale, zeroPoint, axis);
  return one(x.graph, 'DequantizeLinear', [x, scale, zeroPoint], 'float32', x.shape, axis === undefined ? {} : { axis: attr.int(normAxis('DequantizeLinear', axis, x.rank)) });
}

function checkQuantParams(op: string, x: Tensor, scale: Tensor, zeroPoint: Tensor, axis: number | undefined): void {
  if (scale.dtype !== 'float32') throw new GraphError(`${op}: scale must be float32, got ${scale.dtype}`);
  const want = axis === undefined ? [] : [x.shape[normAxis(op, axis, x.rank)]!];
  for (const t of [scale, zeroPoint]) {
    if (t.rank !== want.length || (want.length === 1 && t.shape[0] !== want[0])) {
      throw new GraphError(`${op}: ${axis === undefined ? 'per-tensor scale and zero point must be scalars' : `per-channel scale and zero point must be [${want[0]}]`}, got ${fmt(t.shape)}`);
    }
  }
}
