/**
 * Convolutions with run-time weights in ONNX Runtime's blocked NCHWc layout.
 *
 * ONNX Runtime's fastest CPU convolution (MLAS's NCHWc kernels: activations as
 * [N, C/B, H, W, B], weights as [O/B, I/B, kH, kW, Bi, Bo], B = 16 with AVX-512, 8 with AVX2) is
 * chosen by its NchwcTransformer only for convolutions whose weights are constant initializers:
 * it reorders them once, when the session is built. A training graph feeds its weights every
 * step (and its input-gradient convolutions compute theirs), so its convolutions ran the plain
 * im2col + GEMM path, ~10-15% slower at the sizes of a RetinaNet (docs/performance.md). This
 * rewrite, applied to the serialized nodes, gives such a convolution the same kernel: the weight
 * is reordered in the graph (two transposes, once per weight tensor), the input by a `ReorderInput` (once per tensor; none after another rewritten convolution), and the output comes back by a
 * `ReorderOutput`; a ReLU that is the output's only reader is fused into the kernel, as ONNX
 * Runtime fuses Conv + ReLU on the plain path. These `com.microsoft.nchwc` operators exist in
 * onnxruntime-node's CPU provider only, and the block size depends on the CPU, so graphs are
 * only rewritten for a block size probed on the running machine (runtime.ts), never for export.
 */
import type onnxProto from 'onnx-proto';
import type { Node, Tensor } from './graph.js';

/** The operator domain of ONNX Runtime's NCHWc kernels. */
export const NCHWC_DOMAIN = 'com.microsoft.nchwc';

type NodeProto = onnxProto.onnx.INodeProto;
type TensorProto = onnxProto.onnx.ITensorProto;

function int64Initializer(name: string, values: readonly number[]): TensorProto {
  const data = BigInt64Array.from(values.map(BigInt));
  return { name, dataType: 7, dims: [values.length], rawData: new Uint8Array(data.buffer) };
}

/**
 * Output positions (N * H_out * W_out, summed over a weight's uses) below which a weight's
 * convolutions stay plain: reordering the weight costs ~2 ns per value and the kernel gains ~15%
 * of the arithmetic, so the reorder pays from ~3000 positions (measured on ResNet-50's training
 * step: layer4 at 16x16 got slower, the heads at 64x64 faster).
 */
export const MIN_POSITIONS = 4096;

/**
 * A convolution the NCHWc kernels take and win on: float32, 2-D, ungrouped, spatial (a 1x1 is
 * already a plain GEMM), channels in whole blocks, weights computed or fed.
 */
function eligible(n: Node, block: number, isInitializer: (name: string) => boolean): boolean {
  if (n.opType !== 'Conv') return false;
  const [x, w] = n.inputs;
  if (!x || !w || x.dynamic || x.rank !== 4 || w.rank !== 4 || x.dtype !== 'float32') return false;
  const group = n.attrs['group'];
  if (group && group.type === 'int' && group.value !== 1) return false;
  const autoPad = n.attrs['auto_pad'];
  if (autoPad && !(autoPad.type === 'string' && autoPad.value === 'NOTSET')) return false;
  const [cOut, cIn, kh, kw] = w.shape as [number, number, number, number];
  return kh * kw > 1 && cIn % block === 0 && cOut % block === 0 && !isInitializer(w.name);
}

/** The eligible convolutions whose weight's uses together produce enough output positions to repay its reorder. */
function convsToRewrite(nodes: readonly Node[], block: number, isInitializer: (name: string) => boolean): Set<Node> {
  const convs = nodes.filter((n) => eligible(n, block, isInitializer));
  const positions = new Map<Tensor, number>();
  for (const n of convs) {
    const w = n.inputs[1]!;
    const [b, , h, wd] = n.outputs[0]!.shape as [number, number, number, number];
    positions.set(w, (positions.get(w) ?? 0) + b * h * wd);
  }
  return new Set(convs.filter((n) => positions.get(n.inputs[1]!)! >= MIN_POSITIONS));
}

/**
 * Rewrites the eligible convolutions among `nodes` (whose protos are `protos`, same order) for
 * NCHWc blocks of `block` channels. Returns the new node list (still topologically ordered);
 * shape constants it needs are appended to `initializers`. `graphOutputs`: names the model
 * returns (their producers keep a plain output).
 */
export function rewriteNchwc(
  nodes: readonly Node[],
  protos: readonly NodeProto[],
  initializers: TensorProto[],
  isInitializer: (name: string) => boolean,
  graphOutputs: ReadonlySet<string>,
  block: number,
): NodeProto[] {
  const readers = new Map<Tensor, Node[]>();
  for (const n of nodes) {
    for (const t of n.inputs) {
      if (!t) continue;
      const list = readers.get(t);
      if (list) list.push(n);
      else readers.set(t, [n]);
    }
  }
  const fusedRelus = new Set<Node>();
  /** Plain tensor name -> the name of the same values in blocks. */
  const blocked = new Map<string, string>();
  const reorderedWeights = new Set<string>();
  const shapeConstants = new Set<string>();
  const shapeConstant = (dims: readonly number[]): string => {
    const name = `nchwc_shape_${dims.join('x')}`;
    if (!shapeConstants.has(name)) {
      shapeConstants.add(name);
      initializers.push(int64Initializer(name, dims));
    }
    return name;
  };
  const rewrite = convsToRewrite(nodes, block, isInitializer);
  const out: NodeProto[] = [];
  nodes.forEach((n, i) => {
    if (fusedRelus.has(n)) return;
    if (!rewrite.has(n)) {
      out.push(protos[i]!);
      return;
    }
    const [x, w, b] = n.inputs as [Tensor, Tensor, Tensor | null | undefined];
    const [cOut, cIn, kh, kw] = w.shape as [number, number, number, number];
    // The input in blocks: a rewritten convolution's blocked output as it is, else one reorder per tensor.
    let xb = blocked.get(x.name);
    if (xb === undefined) {
      xb = `${x.name}__nchwc_in`;
      blocked.set(x.name, xb);
      out.push({ name: `${xb}_reorder`, opType: 'ReorderInput', domain: NCHWC_DOMAIN, input: [x.name], output: [xb], attribute: [{ name: 'channels_last', type: 2, i: 0 }] });
    }
    // [O, I, kH, kW] -> MLAS's OIHWBiBo, [O/B, I/B, kH, kW, Bi, Bo], in two transposes that
    // ONNX Runtime runs as single-axis moves (one 6-D permutation took its generic path, 4x
    // slower): [O/B, Bo, I*kH*kW] -> [O/B, I*kH*kW, Bo], seen as [O/B * I/B, Bi, kH*kW, Bo] ->
    // [O/B * I/B, kH*kW, Bi, Bo].
    const wb = `${w.name}__nchwc`;
    if (!reorderedWeights.has(wb)) {
      reorderedWeights.add(wb);
      const k = kh * kw;
      out.push(
        { name: `${wb}_split`, opType: 'Reshape', input: [w.name, shapeConstant([cOut / block, block, cIn * k])], output: [`${wb}_3d`] },
        { name: `${wb}_bo`, opType: 'Transpose', input: [`${wb}_3d`], output: [`${wb}_bo_last`], attribute: [{ name: 'perm', type: 7, ints: [0, 2, 1] }] },
        { name: `${wb}_view`, opType: 'Reshape', input: [`${wb}_bo_last`, shapeConstant([(cOut / block) * (cIn / block), block, k, block])], output: [`${wb}_4d`] },
        { name: `${wb}_bi`, opType: 'Transpose', input: [`${wb}_4d`], output: [`${wb}_blocked`], attribute: [{ name: 'perm', type: 7, ints: [0, 2, 1, 3] }] },
        { name: `${wb}_merge`, opType: 'Reshape', input: [`${wb}_blocked`, shapeConstant([cOut, cIn, kh, kw])], output: [wb] },
      );
    }
    let y = n.outputs[0]!;
    const attribute = [...(protos[i]!.attribute ?? [])].filter((a) => a.name !== 'group');
    const only = readers.get(y);
    const relu = only?.length === 1 && only[0]!.opType === 'Relu' && !graphOutputs.has(y.name) ? only[0]! : undefined;
    if (relu) {
      fusedRelus.add(relu);
      attribute.push({ name: 'activation', type: 3, s: new TextEncoder().encode('Relu') });
      y = relu.outputs[0]!;
    }
    const yb = `${y.name}__nchwc_out`;
    blocked.set(y.name, yb);
    out.push(
      { name: `${protos[i]!.name}_nchwc`, opType: 'Conv', domain: NCHWC_DOMAIN, input: b ? [xb, wb, b.name] : [xb, wb], output: [yb], attribute },
      { name: `${yb}_reorder`, opType: 'ReorderOutput', domain: NCHWC_DOMAIN, input: [yb], output: [y.name], attribute: [{ name: 'channels', type: 2, i: cOut }, { name: 'channels_last', type: 2, i: 0 }] },
    );
  });
  return out;
}
