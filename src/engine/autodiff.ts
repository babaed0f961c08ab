/**
 * Reverse-mode automatic differentiation over the graph. `grad(loss, params)` appends the
 * backward pass to the same graph as ordinary ONNX operators (no vendor training ops), so a
 * training graph runs wherever ONNX Runtime runs. One rule per operator lives in RULES.
 */
import { type DType, type Graph, GraphError, type Node, type Shape, type Tensor, isFloat, shapeSize } from './graph.js';
import * as op from './ops.js';

/**
 * A gradient rule: given the node and the gradients of its outputs (null where an output does
 * not reach the loss), returns one gradient per input (null for inputs that need none).
 * `needs[i]` tells whether input i needs a gradient, so rules can skip costly work.
 */
type Rule = (node: Node, dys: readonly (Tensor | null)[], needs: readonly boolean[]) => (Tensor | null)[];

/** Sums `g` down to `shape`, undoing numpy broadcasting. */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (g.rank === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  const reduced = axes.length > 0 ? op.reduceSum(g, axes, true) : g;
  return op.reshape(reduced, [...shape]);
}

function input(node: Node, i: number): Tensor {
  const t = node.inputs[i];
  if (!t) throw new GraphError(`${node.opType}: missing input ${i}`);
  return t;
}

function output(node: Node, i = 0): Tensor {
  return node.outputs[i]!;
}

function intsAttr(node: Node, name: string): number[] {
  const a = node.attrs[name];
  if (!a || a.type !== 'ints') throw new GraphError(`${node.opType}: missing attribute ${name}`);
  return [...a.value];
}

function intAttr(node: Node, name: string, dflt: number): number {
  const a = node.attrs[name];
  return a && a.type === 'int' ? a.value : dflt;
}

function stringAttr(node: Node, name: string, dflt: string): string {
  const a = node.attrs[name];
  return a && a.type === 'string' ? a.value : dflt;
}

/** Values of a constant int64 input (axes, shapes, starts, ...). */
function constInts(node: Node, i: number): number[] {
  const t = input(node, i);
  const c = t.graph.constants.get(t.name);
  if (!c || !(c.data instanceof BigInt64Array)) throw new GraphError(`${node.opType}: input ${i} must be a constant int64 tensor to differentiate`);
  return Array.from(c.data, (v) => Number(v));
}

function zerosLike(t: Tensor): Tensor {
  return op.fill(t, [...t.shape], 0);
}

function maskOf(cond: Tensor, like: Tensor): Tensor {
  return op.cast(cond, like.dtype);
}

// ---------------------------------------------------------------------------------------------
// Convolution gradients

/** The geometry of a conv node: ops' ConvGeometry plus the kernel size its weight implies. */
type ConvGeo = op.ConvGeometry & { kernel: [number, number] };

function convGeo(node: Node): ConvGeo {
  const s = intsAttr(node, 'strides');
  const p = intsAttr(node, 'pads');
  const d = intsAttr(node, 'dilations');
  const k = intsAttr(node, 'kernel_shape');
  return { strides: [s[0]!, s[1]!], pads: [p[0]!, p[1]!, p[2]!, p[3]!], dilations: [d[0]!, d[1]!], group: intAttr(node, 'group', 1), kernel: [k[0]!, k[1]!] };
}

/** [C_out, C_in/g, kH, kW] -> [C_in, C_out/g, kH, kW] within each group. */
function swapGroupedChannels(w: Tensor, group: number): Tensor {
  const [co, cig, kh, kw] = w.shape as [number, number, number, number];
  if (group === 1) return op.transpose(w, [1, 0, 2, 3]);
  const r = op.reshape(w, [group, co / group, cig, kh, kw]);
  return op.reshape(op.transpose(r, [0, 2, 1, 3, 4]), [cig * group, co / group, kh, kw]);
}

/**
 * Reverses both spatial axes of a kernel [A, B, kH, kW]. A MatMul with the kH*kW anti-identity
 * is exact (one product by 1 per output) and several times faster in ONNX Runtime than a Slice
 * with negative steps.
 */
function flipKernel(w: Tensor): Tensor {
  const [a, b, kh, kw] = w.shape as [number, number, number, number];
  const k = kh * kw;
  if (k === 1) return w;
  const perm = w.dtype === 'float64' ? new Float64Array(k * k) : new Float32Array(k * k);
  for (let i = 0; i < k; i++) perm[i * k + (k - 1 - i)] = 1;
  const p = w.graph.constant(perm, [k, k], w.dtype);
  return op.reshape(op.matmul(op.reshape(w, [a * b, k]), p), [a, b, kh, kw]);
}

/** Gradient of conv's input: Conv over flipped weights when stride is 1, else ConvTranspose. */
function convInputGrad(dy: Tensor, w: Tensor, xShape: Shape, geo: ConvGeo): Tensor {
  const [, , h, wd] = xShape as [number, number, number, number];
  const [kh, kw] = geo.kernel;
  const effH = geo.dilations[0] * (kh - 1);
  const effW = geo.dilations[1] * (kw - 1);
  const pads = [effH - geo.pads[0], effW - geo.pads[1], effH - geo.pads[2], effW - geo.pads[3]] as const;
  if (geo.strides[0] === 1 && geo.strides[1] === 1 && pads.every((p) => p >= 0)) {
    // A stride-1 conv's adjoint is a conv with the spatially flipped, channel-swapped kernel,
    // which runs on ONNX Runtime's fast conv path.
    const flipped = flipKernel(swapGroupedChannels(w, geo.group));
    return op.conv(dy, flipped, null, { pads, dilations: geo.dilations, group: geo.group });
  }
  const [, , oh, ow] = dy.shape as [number, number, number, number];
  const baseH = geo.strides[0] * (oh - 1) + effH + 1 - geo.pads[0] - geo.pads[2];
  const baseW = geo.strides[1] * (ow - 1) + effW + 1 - geo.pads[1] - geo.pads[3];
  return op.convTranspose(dy, w, null, {
    strides: geo.strides,
    pads: geo.pads,
    dilations: geo.dilations,
    group: geo.group,
    outputPadding: [h - baseH, wd - baseW],
  });
}

/**
 * Sum over the leading axis as a MatMul with a row of ones: ONNX Runtime's ReduceSum over a
 * leading axis measured ~18x slower than this on [2, 256, 2304] (docs/performance.md).
 */
function sumOverBatch(t: Tensor): Tensor {
  const [n, ...rest] = t.shape;
  if (n === 1) return op.reshape(t, rest);
  const size = shapeSize(rest);
  const ones = t.graph.constant(t.dtype === 'float64' ? new Float64Array(n!).fill(1) : new Float32Array(n!).fill(1), [1, n!], t.dtype);
  return op.reshape(op.matmul(ones, op.reshape(t, [n!, size])), rest);
}

const im2colKernels = new WeakMap<Graph, Map<string, Tensor>>();

/**
 * One-hot kernels [c*kh*kw, 1, kh, kw] (one per channel and tap): a depthwise conv with them,
 * at the forward conv's strides, pads and dilations, is the im2col of its input. Shared by every
 * conv of the graph with the same channel count and kernel size.
 */
function im2colKernel(g: Graph, c: number, kh: number, kw: number, dtype: DType): Tensor {
  let cache = im2colKernels.get(g);
  if (!cache) im2colKernels.set(g, (cache = new Map()));
  const key = `${c}x${kh}x${kw}:${dtype}`;
  let k = cache.get(key);
  if (!k) {
    const taps = kh * kw;
    const v = dtype === 'float64' ? new Float64Array(c * taps * taps) : new Float32Array(c * taps * taps);
    for (let ch = 0; ch < c; ch++) for (let t = 0; t < taps; t++) v[(ch * taps + t) * taps + t] = 1;
    k = g.constant(v, [c * taps, 1, kh, kw], dtype);
    cache.set(key, k);
  }
  return k;
}

/**
 * Gradient of conv's weight for one group: the im2col of the input [N, C*kH*kW, Ho*Wo] (one
 * depthwise conv; a plain or strided view for 1x1 kernels), then one batched MatMul with dY and
 * a sum over the batch. One GEMM with N = C*kH*kW runs faster in ONNX Runtime than a GEMM per
 * tap (measured in docs/performance.md), and the im2col conv replaces nine Slice copies.
 */
function convWeightGradGroup(x: Tensor, dy: Tensor, geo: ConvGeo): Tensor {
  const [n, c] = x.shape as [number, number];
  const [, co, oh, ow] = dy.shape as [number, number, number, number];
  const [kh, kw] = geo.kernel;
  const [sh, sw] = geo.strides;
  let cols: Tensor;
  if (kh === 1 && kw === 1 && geo.pads.every((p) => p === 0)) {
    const xs = sh === 1 && sw === 1 ? x : op.slice(x, [0, 0], [sh * (oh - 1) + 1, sw * (ow - 1) + 1], [2, 3], [sh, sw]);
    cols = op.reshape(xs, [n, c, oh * ow]);
  } else {
    const k = im2colKernel(x.graph, c, kh, kw, x.dtype);
    cols = op.reshape(op.conv(x, k, null, { strides: geo.strides, pads: geo.pads, dilations: geo.dilations, group: c }), [n, c * kh * kw, oh * ow]);
  }
  const perImage = op.matmul(op.reshape(dy, [n, co, oh * ow]), op.transpose(cols, [0, 2, 1]));
  return op.reshape(sumOverBatch(perImage), [co, c, kh, kw]);
}

/** dW of a (possibly grouped) conv with input x and output gradient dy. */
function convWeightGrad(x: Tensor, dy: Tensor, geo: ConvGeo): Tensor {
  if (geo.group === 1) return convWeightGradGroup(x, dy, geo);
  const cg = x.shape[1]! / geo.group;
  const og = dy.shape[1]! / geo.group;
  const parts: Tensor[] = [];
  for (let g = 0; g < geo.group; g++) {
    const xg = op.slice(x, [g * cg], [(g + 1) * cg], [1]);
    const dyg = op.slice(dy, [g * og], [(g + 1) * og], [1]);
    parts.push(convWeightGradGroup(xg, dyg, geo));
  }
  return op.concat(parts, 0);
}

// ---------------------------------------------------------------------------------------------
// Rules

function unaryRule(f: (x: Tensor, y: Tensor, dy: Tensor) => Tensor): Rule {
  return (node, [dy], needs) => [needs[0] && dy ? f(input(node, 0), output(node), dy) : null];
}

function minMaxRule(isMax: boolean): Rule {
  return (node, [dy], needs) => {
    const a = input(node, 0);
    const b = input(node, 1);
    if (!dy) return [null, null];
    // Ties share the gradient equally, as torch.maximum/minimum do.
    const wins = maskOf(isMax ? op.greater(a, b) : op.less(a, b), dy);
    const ties = op.mul(maskOf(op.equal(a, b), dy), 0.5);
    const ma = op.add(wins, ties);
    const mb = op.sub(1, ma);
    return [needs[0] ? sumTo(op.mul(dy, ma), a.shape) : null, needs[1] ? sumTo(op.mul(dy, mb), b.shape) : null];
  };
}

const RULES: Record<string, Rule> = {
  Add: (node, [dy], needs) => [needs[0] && dy ? sumTo(dy, input(node, 0).shape) : null, needs[1] && dy ? sumTo(dy, input(node, 1).shape) : null],
  Sub: (node, [dy], needs) => [needs[0] && dy ? sumTo(dy, input(node, 0).shape) : null, needs[1] && dy ? sumTo(op.neg(dy), input(node, 1).shape) : null],
  Mul: (node, [dy], needs) => {
    const a = input(node, 0);
    const b = input(node, 1);
    if (!dy) return [null, null];
    return [needs[0] ? sumTo(op.mul(dy, b), a.shape) : null, needs[1] ? sumTo(op.mul(dy, a), b.shape) : null];
  },
  Div: (node, [dy], needs) => {
    const a = input(node, 0);
    const b = input(node, 1);
    if (!dy) return [null, null];
    const da = op.div(dy, b);
    return [needs[0] ? sumTo(da, a.shape) : null, needs[1] ? sumTo(op.neg(op.mul(da, output(node))), b.shape) : null];
  },
  Pow: (node, [dy], needs) => {
    const a = input(node, 0);
    const b = input(node, 1);
    if (!dy) return [null, null];
    const y = output(node);
    const da = needs[0] ? sumTo(op.mul(dy, op.mul(b, op.pow(a, op.sub(b, 1)))), a.shape) : null;
    const db = needs[1] ? sumTo(op.mul(dy, op.mul(y, op.log(a))), b.shape) : null;
    return [da, db];
  },
  Min: minMaxRule(false),
  Max: minMaxRule(true),
  Neg: unaryRule((_x, _y, dy) => op.neg(dy)),
  Identity: unaryRule((_x, _y, dy) => dy),
  Sqrt: unaryRule((_x, y, dy) => op.div(dy, op.mul(y, 2))),
  Exp: unaryRule((_x, y, dy) => op.mul(dy, y)),
  Log: unaryRule((x, _y, dy) => op.div(dy, x)),
  Abs: unaryRule((x, _y, dy) => op.mul(dy, op.sign(x))),
  // The mask reads the output, not the input: then the input has no other consumer and ONNX
  // Runtime can fuse the producing conv with the ReLU (and free the pre-activation early). A
  // multiply by the cast mask runs ~2x faster in ONNX Runtime than Where with a scalar zero.
  Relu: unaryRule((_x, y, dy) => op.mul(dy, maskOf(op.greater(y, 0), dy))),
  Sigmoid: unaryRule((_x, y, dy) => op.mul(dy, op.mul(y, op.sub(1, y)))),
  Softplus: unaryRule((x, _y, dy) => op.mul(dy, op.sigmoid(x))),
  Tanh: unaryRule((_x, y, dy) => op.mul(dy, op.sub(1, op.mul(y, y)))),
  Reciprocal: unaryRule((_x, y, dy) => op.neg(op.mul(dy, op.mul(y, y)))),
  Sign: () => [null],
  Clip: (node, [dy], needs) => {
    if (!needs[0] || !dy) return [null, null, null];
    const x = input(node, 0);
    let mask: Tensor | null = null;
    const lo = node.inputs[1];
    const hi = node.inputs[2];
    // Inclusive bounds, as torch.clamp's gradient.
    if (lo) mask = op.greaterOrEqual(x, lo);
    if (hi) mask = mask ? op.and(mask, op.lessOrEqual(x, hi)) : op.lessOrEqual(x, hi);
    return [mask ? op.where(mask, dy, op.scalarLike(dy, 0)) : dy, null, null];
  },
  Where: (node, [dy], needs) => {
    const c = input(node, 0);
    if (!dy) return [null, null, null];
    const zero = op.scalarLike(dy, 0);
    return [
      null,
      needs[1] ? sumTo(op.where(c, dy, zero), input(node, 1).shape) : null,
      needs[2] ? sumTo(op.where(c, zero, dy), input(node, 2).shape) : null,
    ];
  },
  Cast: (node, [dy], needs) => [needs[0] && dy ? op.cast(dy, input(node, 0).dtype) : null],
  Sum: (node, [dy], needs) => node.inputs.map((t, i) => (needs[i] && dy && t ? sumTo(dy, t.shape) : null)),
  MatMul: (node, [dy], needs) => {
    const a = input(node, 0);
    const b = input(node, 1);
    if (!dy) return [null, null];
    const tr = (t: Tensor): Tensor => op.transpose(t, [...t.shape.map((_, i) => i).slice(0, -2), t.rank - 1, t.rank - 2]);
    return [needs[0] ? sumTo(op.matmul(dy, tr(b)), a.shape) : null, needs[1] ? sumTo(op.matmul(tr(a), dy), b.shape) : null];
  },
  Gemm: (node, [dy], needs) => {
    const a = input(node, 0);
    const b = input(node, 1);
    const c = node.inputs[2] ?? null;
    if (!dy) return [null, null, null];
    const alphaAttr = node.attrs['alpha'];
    const betaAttr = node.attrs['beta'];
    const alpha = alphaAttr && alphaAttr.type === 'float' ? alphaAttr.value : 1;
    const beta = betaAttr && betaAttr.type === 'float' ? betaAttr.value : 1;
    const tA = intAttr(node, 'transA', 0) === 1;
    const tB = intAttr(node, 'transB', 0) === 1;
    const da = needs[0] ? (tA ? op.gemm(b, dy, undefined, { alpha, transA: tB, transB: true }) : op.gemm(dy, b, undefined, { alpha, transB: !tB })) : null;
    const db = needs[1] ? (tB ? op.gemm(dy, a, undefined, { alpha, transA: true, transB: tA }) : op.gemm(a, dy, undefined, { alpha, transA: !tA })) : null;
    const dc = c && needs[2] ? sumTo(beta === 1 ? dy : op.mul(dy, beta), c.shape) : null;
    return [da, db, dc];
  },
  Conv: (node, [dy], needs) => {
    if (!dy) return [null, null, null];
    const x = input(node, 0);
    const w = input(node, 1);
    const geo = convGeo(node);
    return [
      needs[0] ? convInputGrad(dy, w, x.shape, geo) : null,
      needs[1] ? convWeightGrad(x, dy, geo) : null,
      node.inputs[2] && needs[2] ? op.reduceSum(dy, [0, 2, 3]) : null,
    ];
  },
  ConvTranspose: (node, [dy], needs) => {
    if (!dy) return [null, null, null];
    const x = input(node, 0);
    const w = input(node, 1);
    const geo = convGeo(node);
    // ConvTranspose is the adjoint of Conv with the same weight and geometry.
    return [
      needs[0] ? op.conv(dy, w, null, { strides: geo.strides, pads: geo.pads, dilations: geo.dilations, group: geo.group }) : null,
      needs[1] ? convWeightGrad(dy, x, geo) : null,
      node.inputs[2] && needs[2] ? op.reduceSum(dy, [0, 2, 3]) : null,
    ];
  },
  MaxPool: (node, dys, needs) => {
    const dy = dys[0];
    if (!needs[0] || !dy) return [null];
    const x = input(node, 0);
    // A values-only MaxPool (op.maxPool) gets its argmax from a second MaxPool with indices, the
    // same kernel the forward would otherwise run: the forward and inference stay on the fast one.
    const indices = node.outputs[1] ?? x.graph.addNode('MaxPool', [x], [{ dtype: x.dtype, shape: dy.shape }, { dtype: 'int64', shape: dy.shape }], node.attrs)[1]!;
    const flatZeros = op.fill(dy, [x.size], 0);
    const scattered = op.scatterElements(flatZeros, op.reshape(indices, [indices.size]), op.reshape(dy, [dy.size]), 0, 'add');
    return [op.reshape(scattered, [...x.shape])];
  },
  AveragePool: (node, [dy], needs) => {
    if (!needs[0] || !dy) return [null];
    const x = input(node, 0);
    const k = intsAttr(node, 'kernel_shape');
    const s = intsAttr(node, 'strides');
    const p = intsAttr(node, 'pads');
    if (intAttr(node, 'ceil_mode', 0) === 1) throw new GraphError('AveragePool: gradient with ceil_mode is not supported');
    if (intAttr(node, 'count_include_pad', 0) === 0 && p.some((v) => v !== 0)) {
      throw new GraphError('AveragePool: gradient needs count_include_pad=1 when padding is used');
    }
    const c = x.shape[1]!;
    const kk = k[0]! * k[1]!;
    const weight = x.graph.constant(
      x.dtype === 'float64' ? new Float64Array(c * kk).fill(1 / kk) : new Float32Array(c * kk).fill(1 / kk),
      [c, 1, k[0]!, k[1]!],
      x.dtype,
    );
    const geo: ConvGeo = { strides: [s[0]!, s[1]!], pads: [p[0]!, p[1]!, p[2]!, p[3]!], dilations: [1, 1], group: c, kernel: [k[0]!, k[1]!] };
    // Reuse the conv input-gradient path: average pooling is a depthwise conv with a constant kernel.
    return [convInputGrad(dy, weight, x.shape, geo)];
  },
  Resize: (node, [dy], needs) => {
    if (!needs[0] || !dy) return [null, null, null];
    const x = input(node, 0);
    if (stringAttr(node, 'mode', 'nearest') !== 'nearest') throw new GraphError('Resize: only nearest upsampling is differentiable');
    const [n, c, h, w] = x.shape as [number, number, number, number];
    const fh = dy.shape[2]! / h;
    const fw = dy.shape[3]! / w;
    return [op.reduceSum(op.reshape(dy, [n, c, h, fh, w, fw]), [3, 5]), null, null];
  },
  Reshape: (node, [dy], needs) => [needs[0] && dy ? op.reshape(dy, [...input(node, 0).shape]) : null, null],
  Transpose: (node, [dy], needs) => {
    if (!needs[0] || !dy) return [null];
    const perm = intsAttr(node, 'perm');
    const inv = new Array<number>(perm.length);
    perm.forEach((p, i) => (inv[p] = i));
    return [op.transpose(dy, inv)];
  },
  Expand: (node, [dy], needs) => [needs[0] && dy ? sumTo(dy, input(node, 0).shape) : null, null],
  Concat: (node, [dy], needs) => {
    if (!dy) return node.inputs.map(() => null);
    const axis = intAttr(node, 'axis', 0);
    let offset = 0;
    return node.inputs.map((t, i) => {
      const len = t!.shape[axis]!;
      const g = needs[i] ? op.slice(dy, [offset], [offset + len], [axis]) : null;
      offset += len;
      return g;
    });
  },
  Slice: (node, [dy], needs) => {
    if (!needs[0] || !dy) return [null, null, null, null, null];
    const x = input(node, 0);
    const spec = op.resolveSlice('Slice', x.shape, constInts(node, 1), constInts(node, 2), constInts(node, 3), constInts(node, 4));
    return [sliceGrad(x, dy, spec), null, null, null, null];
  },
  Pad: (node, [dy], needs) => {
    if (!needs[0] || !dy) return [null, null, null];
    const x = input(node, 0);
    const pads = constInts(node, 1);
    if (pads.some((p) => p < 0)) return [op.pad(dy, pads.map((p) => -p)), null, null];
    return [op.slice(dy, pads.slice(0, x.rank), x.shape.map((d, i) => pads[i]! + d)), null, null];
  },
  Gather: (node, [dy], needs) => {
    if (!needs[0] || !dy) return [null, null];
    const x = input(node, 0);
    const idx = input(node, 1);
    const axis = intAttr(node, 'axis', 0);
    const pre = shapeSize(x.shape.slice(0, axis));
    const post = shapeSize(x.shape.slice(axis + 1));
    const d = x.shape[axis]!;
    const ni = idx.size;
    let i64 = op.cast(op.reshape(idx, [ni, 1]), 'int64');
    // Negative indices count from the end, as Gather allows.
    i64 = op.where(op.less(i64, op.scalar(x.graph, 0, 'int64')), op.add(i64, op.scalar(x.graph, d, 'int64')), i64);
    const upd = op.transpose(op.reshape(dy, [pre, ni, post]), [1, 0, 2]);
    const acc = op.scatterND(op.fill(dy, [d, pre, post], 0), i64, upd, 'add');
    return [op.reshape(op.transpose(acc, [1, 0, 2]), [...x.shape]), null];
  },
  GatherElements: (node, [dy], needs) => {
    if (!needs[0] || !dy) return [null, null];
    const x = input(node, 0);
    return [op.scatterElements(zerosLike(x), input(node, 1), dy, intAttr(node, 'axis', 0), 'add'), null];
  },
  ScatterElements: (node, [dy], needs) => {
    if (!dy) return [null, null, null];
    const idx = input(node, 1);
    const upd = input(node, 2);
    const axis = intAttr(node, 'axis', 0);
    const reduction = stringAttr(node, 'reduction', 'none');
    if (reduction !== 'none' && reduction !== 'add') throw new GraphError(`ScatterElements: no gradient for reduction '${reduction}'`);
    const dData = needs[0] ? (reduction === 'add' ? dy : op.scatterElements(dy, idx, zerosLike(upd), axis, 'none')) : null;
    return [dData, null, needs[2] ? op.gatherElements(dy, idx, axis) : null];
  },
  ScatterND: (node, [dy], needs) => {
    if (!dy) return [null, null, null];
    const idx = input(node, 1);
    const upd = input(node, 2);
    const reduction = stringAttr(node, 'reduction', 'none');
    if (reduction !== 'none' && reduction !== 'add') throw new GraphError(`ScatterND: no gradient for reduction '${reduction}'`);
    const dData = needs[0] ? (reduction === 'add' ? dy : op.scatterND(dy, idx, zerosLike(upd), 'none')) : null;
    return [dData, null, needs[2] ? op.gatherND(dy, idx) : null];
  },
  GatherND: (node, [dy], needs) => {
    if (!needs[0] || !dy) return [null, null];
    const x = input(node, 0);
    return [op.scatterND(zerosLike(x), input(node, 1), dy, 'add'), null];
  },
  ReduceSum: (node, [dy], needs) => {
    if (!needs[0] || !dy) return [null, null];
    const x = input(node, 0);
    return [broadcastReduced(dy, x, constInts(node, 1)), null];
  },
  ReduceMean: (node, [dy], needs) => {
    if (!needs[0] || !dy) return [null];
    const x = input(node, 0);
    const axes = intsAttr(node, 'axes');
    const count = axes.reduce((acc, a) => acc * x.shape[a]!, 1);
    return [op.div(broadcastReduced(dy, x, axes), count)];
  },
  LayerNormalization: (node, [dy], needs) => {
    // Only the form layerNormLastAxis emits: last axis, unit scale, no bias. With x^ = Y and
    // s = InvStdDev, dx = s * (dy - mean(dy) - x^ * mean(dy * x^)) over the normalised axis.
    if (!needs[0] || !dy) return node.inputs.map(() => null);
    const x = input(node, 0);
    const axis = intAttr(node, 'axis', -1);
    if (axis !== -1 && axis !== x.rank - 1) throw new GraphError(`LayerNormalization: gradient only over the last axis, got axis ${axis}`);
    const scale = node.inputs[1] ? x.graph.constants.get(node.inputs[1].name) : undefined;
    if (!scale || !Array.prototype.every.call(scale.data, (v: number) => v === 1) || node.inputs[2] || needs[1]) {
      throw new GraphError('LayerNormalization: gradient only with a constant unit scale and no bias (layerNormLastAxis)');
    }
    const last = [x.rank - 1];
    const xhat = output(node, 0);
    const invStd = output(node, 2);
    const centred = op.sub(dy, op.reduceMean(dy, last, true));
    const dx = op.mul(op.sub(centred, op.mul(xhat, op.reduceMean(op.mul(dy, xhat), last, true))), invStd);
    return [dx, null, null];
  },
  ReduceMax: (node, [dy], needs) => {
    if (!needs[0] || !dy) return [null];
    const x = input(node, 0);
    const axes = intsAttr(node, 'axes');
    const keptShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
    const y = op.reshape(output(node), keptShape);
    // Ties share the gradient equally, as torch.amax does.
    const mask = maskOf(op.equal(x, y), x);
    const count = op.reduceSum(mask, axes, true);
    return [op.div(op.mul(mask, op.reshape(dy, keptShape)), count)];
  },
};

for (const name of ['Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'And', 'Or', 'Not']) {
  RULES[name] = (node) => node.inputs.map(() => null);
}

function broadcastReduced(dy: Tensor, x: Tensor, axes: readonly number[]): Tensor {
  const keptShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  return op.expand(op.reshape(dy, keptShape), [...x.shape]);
}

function sliceGrad(x: Tensor, dy: Tensor, spec: op.SliceSpec): Tensor {
  if (spec.steps.every((s) => s === 1)) {
    const pads = new Array<number>(2 * x.rank).fill(0);
    spec.axes.forEach((a, i) => {
      pads[a] = spec.starts[i]!;
      pads[a + x.rank] = x.shape[a]! - Math.max(spec.ends[i]!, spec.starts[i]!);
    });
    return op.pad(dy, pads);
  }
  // General steps: scatter dy into zeros at the positions the slice read (static shapes let us
  // compute those positions once, here).
  const strides = x.shape.map((_, i) => shapeSize(x.shape.slice(i + 1)));
  const positions = new BigInt64Array(dy.size);
  const coord = new Array<number>(dy.rank).fill(0);
  for (let k = 0; k < dy.size; k++) {
    let flat = 0;
    for (let ax = 0; ax < x.rank; ax++) {
      const j = spec.axes.indexOf(ax);
      const src = j < 0 ? coord[ax]! : spec.starts[j]! + coord[ax]! * spec.steps[j]!;
      flat += src * strides[ax]!;
    }
    positions[k] = BigInt(flat);
    for (let ax = dy.rank - 1; ax >= 0; ax--) {
      if (++coord[ax]! < dy.shape[ax]!) break;
      coord[ax] = 0;
    }
  }
  const g = x.graph;
  const idx = g.constant(positions, [dy.size], 'int64');
  const flat = op.scatterElements(op.fill(dy, [x.size], 0), idx, op.reshape(dy, [dy.size]), 0, 'none');
  return op.reshape(flat, [...x.shape]);
}

/** Operators with a gradient rule. */
export function differentiableOps(): string[] {
  return Object.keys(RULES).sort();
}

/**
 * Builds the gradients of the scalar `loss` with respect to each tensor of `wrt`, appending the
 * backward nodes to the loss's graph. Tensors the loss does not depend on get a zero gradient.
 * Only the nodes between `wrt` and `loss` are differentiated, and only gradients that some
 * `wrt` needs are built.
 */
export function grad(loss: Tensor, wrt: readonly Tensor[]): Tensor[] {
  const g: Graph = loss.graph;
  if (loss.size !== 1) throw new GraphError(`grad: loss must have one element, got shape [${loss.shape.join(', ')}]`);
  if (!isFloat(loss.dtype)) throw new GraphError(`grad: loss must be a float tensor, got ${loss.dtype}`);
  for (const t of wrt) if (t.graph !== g) throw new GraphError(`grad: ${t.name} belongs to another graph`);

  // Forward: which tensors depend on some wrt (only those need gradients).
  const active = new Set<Tensor>(wrt.filter((t) => isFloat(t.dtype)));
  const lossIndex = loss.producer ? g.nodes.indexOf(loss.producer) : -1;
  const nodes = g.nodes.slice(0, lossIndex + 1);
  for (const n of nodes) {
    if (n.inputs.some((t) => t && active.has(t))) for (const o of n.outputs) if (isFloat(o.dtype)) active.add(o);
  }
  // Backward: which nodes the loss depends on.
  const needed = new Set<Node>();
  const stack: Tensor[] = [loss];
  const seen = new Set<Tensor>();
  while (stack.length) {
    const t = stack.pop()!;
    if (seen.has(t)) continue;
    seen.add(t);
    if (t.producer && !needed.has(t.producer)) {
      needed.add(t.producer);
      for (const i of t.producer.inputs) if (i) stack.push(i);
    }
  }

  const partials = new Map<Tensor, Tensor[]>();
  const collect = (t: Tensor): Tensor | null => {
    const ps = partials.get(t);
    if (!ps || ps.length === 0) return null;
    const total = op.sum(ps);
    partials.set(t, [total]);
    return total;
  };
  partials.set(loss, [op.fill(loss, [...loss.shape], 1)]);

  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i]!;
    if (!needed.has(n) || !n.outputs.some((o) => active.has(o))) continue;
    const dys = n.outputs.map((o) => collect(o));
    if (dys.every((d) => d === null)) continue;
    const rule = RULES[n.opType];
    if (!rule) throw new GraphError(`grad: no gradient rule for operator ${n.opType}`);
    const needs = n.inputs.map((t) => !!t && active.has(t));
    const dxs = rule(n, dys, needs);
    n.inputs.forEach((t, k) => {
      const d = dxs[k];
      if (!t || !d || !needs[k]) return;
      if (d.dtype !== t.dtype || d.size !== t.size) {
        throw new GraphError(`grad: rule for ${n.opType} produced ${d.toString()} for input ${t.toString()}`);
      }
      const list = partials.get(t) ?? [];
      list.push(d.rank === t.rank && d.shape.every((s, j) => s === t.shape[j]) ? d : op.reshape(d, [...t.shape]));
      partials.set(t, list);
    });
  }
  return wrt.map((t) => collect(t) ?? zerosLike(t));
}
