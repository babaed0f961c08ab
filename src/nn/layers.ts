/**
 * Layers as functions that declare their parameters (torchvision names) in a ParameterStore and
 * add their ops to a graph. Shapes: NCHW activations, [C_out, C_in/g, kH, kW] conv weights.
 */
import type { Graph, Tensor } from '../engine/graph.js';
import * as op from '../engine/ops.js';
import type { Init, ParameterStore } from './params.js';

/** What a layer needs to declare parameters: the graph being built and the parameter store. */
export interface Scope {
  readonly graph: Graph;
  readonly store: ParameterStore;
}

export interface Conv2dOptions {
  stride?: number;
  padding?: number;
  dilation?: number;
  groups?: number;
  bias?: boolean;
  weightInit?: Init;
  biasInit?: Init;
}

/** torch.nn.Conv2d: `${name}.weight` [out, in/groups, k, k] and optional `${name}.bias` [out]. */
export function conv2d(s: Scope, name: string, x: Tensor, outChannels: number, kernel: number, opts: Conv2dOptions = {}): Tensor {
  const inChannels = x.shape[1]!;
  const groups = opts.groups ?? 1;
  const w = s.store.bind(s.graph, `${name}.weight`, [outChannels, inChannels / groups, kernel, kernel], opts.weightInit ?? { kind: 'kaimingUniform', a: Math.sqrt(5) });
  let b: Tensor | null = null;
  if (opts.bias ?? true) {
    const bound = 1 / Math.sqrt((inChannels / groups) * kernel * kernel);
    b = s.store.bind(s.graph, `${name}.bias`, [outChannels], opts.biasInit ?? { kind: 'uniform', low: -bound, high: bound });
  }
  return op.conv(x, w, b, { strides: opts.stride ?? 1, pads: opts.padding ?? 0, dilations: opts.dilation ?? 1, group: groups });
}

/** FrozenBatchNorm2d's per-channel scale and shift [C] from its four frozen tensors. */
function frozenBnAffine(s: Scope, name: string, c: number, eps: number): { scale: Tensor; shift: Tensor } {
  const w = s.store.bind(s.graph, `${name}.weight`, [c], { kind: 'constant', value: 1 }, false);
  const b = s.store.bind(s.graph, `${name}.bias`, [c], { kind: 'constant', value: 0 }, false);
  const mean = s.store.bind(s.graph, `${name}.running_mean`, [c], { kind: 'constant', value: 0 }, false);
  const variance = s.store.bind(s.graph, `${name}.running_var`, [c], { kind: 'constant', value: 1 }, false);
  const scale = op.mul(w, op.reciprocal(op.sqrt(op.add(variance, eps))));
  return { scale, shift: op.sub(b, op.mul(mean, scale)) };
}

/**
 * torchvision's FrozenBatchNorm2d: a per-channel affine from `weight`, `bias`, `running_mean`,
 * `running_var` (all frozen), y = x * w / sqrt(var + eps) + (b - mean * w / sqrt(var + eps)).
 */
export function frozenBatchNorm(s: Scope, name: string, x: Tensor, eps = 1e-5): Tensor {
  const { scale, shift } = frozenBnAffine(s, name, x.shape[1]!, eps);
  return op.channelAffine(x, scale, shift);
}

export interface ConvFrozenBnOptions {
  stride?: number;
  padding?: number;
  weightInit?: Init;
  eps?: number;
}

/**
 * A bias-free conv (`${convName}.weight`) followed by FrozenBatchNorm2d (`${bnName}.*`), computed
 * as one conv whose weight is scaled per output channel and whose bias is the BN shift. The
 * function is the same as conv then BN; folding it moves the affine from the activations onto
 * the (much smaller) weight, in the forward pass and in the backward pass, and lets ONNX Runtime
 * fuse the bias and a following ReLU into the conv.
 */
export function convFrozenBn(s: Scope, convName: string, bnName: string, x: Tensor, outChannels: number, kernel: number, opts: ConvFrozenBnOptions = {}): Tensor {
  const w = s.store.bind(s.graph, `${convName}.weight`, [outChannels, x.shape[1]!, kernel, kernel], opts.weightInit ?? { kind: 'kaimingUniform', a: Math.sqrt(5) });
  const { scale, shift } = frozenBnAffine(s, bnName, outChannels, opts.eps ?? 1e-5);
  const folded = op.mul(w, op.reshape(scale, [outChannels, 1, 1, 1]));
  return op.conv(x, folded, shift, { strides: opts.stride ?? 1, pads: opts.padding ?? 0 });
}

/**
 * Groups of the GroupNorm over `channels` channels: 32, as torchvision's GroupNorm(32, c) and
 * the GroupNorm paper's default, but never fewer than 2 channels per group. At torchvision's
 * widths (64 and up) this is always 32 (its narrowest layer, 64 channels, has 2 per group);
 * narrower CPU-sized models (base width 32: 32-channel stem) get 16 groups of 2 there rather
 * than 32 of 1, which would be instance normalisation, clearly worse in Wu and He's
 * "Group Normalization" (2018), Table 3. Group counts change no parameter shape.
 */
export function groupNormGroups(channels: number): number {
  let g = Math.min(32, Math.max(1, Math.floor(channels / 2)));
  while (channels % g !== 0) g--;
  return g;
}

/** torch.nn.GroupNorm with affine `${name}.weight` / `${name}.bias` [C]. */
export function groupNorm(s: Scope, name: string, x: Tensor, groups: number, eps = 1e-5): Tensor {
  const c = x.shape[1]!;
  const w = s.store.bind(s.graph, `${name}.weight`, [c], { kind: 'constant', value: 1 });
  const b = s.store.bind(s.graph, `${name}.bias`, [c], { kind: 'constant', value: 0 });
  return op.groupNorm(x, groups, w, b, eps);
}

/** torch.nn.Linear on [N, in]: `${name}.weight` [out, in], `${name}.bias` [out]. */
export function linear(s: Scope, name: string, x: Tensor, outFeatures: number, bias = true): Tensor {
  const inFeatures = x.shape[1]!;
  const w = s.store.bind(s.graph, `${name}.weight`, [outFeatures, inFeatures], { kind: 'kaimingUniform', a: Math.sqrt(5) });
  const bound = 1 / Math.sqrt(inFeatures);
  const b = bias ? s.store.bind(s.graph, `${name}.bias`, [outFeatures], { kind: 'uniform', low: -bound, high: bound }) : undefined;
  return op.gemm(x, w, b, { transB: true });
}
