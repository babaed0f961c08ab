/**
 * RetinaNet's class and box subnets (torchvision's RetinaNetClassificationHead /
 * RetinaNetRegressionHead): `convs` x (3x3 conv [+ GroupNorm] + ReLU), then a 3x3 conv to
 * A*K logits or A*4 deltas. The same weights run on every pyramid level.
 */
import type { Tensor } from '../engine/graph.js';
import * as op from '../engine/ops.js';
import { type Scope, conv2d, groupNorm } from '../nn/layers.js';

export interface HeadOptions {
  convs: number;
  groupNorm: boolean;
  priorProbability: number;
}

const headInit = { weightInit: { kind: 'normal', std: 0.01 }, biasInit: { kind: 'constant', value: 0 } } as const;

function tower(s: Scope, name: string, x: Tensor, opts: HeadOptions): Tensor {
  const channels = x.shape[1]!;
  let h = x;
  for (let i = 0; i < opts.convs; i++) {
    // torchvision's Conv2dNormActivation: conv (bias only without norm) [+ GroupNorm(32)] + ReLU.
    h = conv2d(s, `${name}.conv.${i}.0`, h, channels, 3, { ...headInit, padding: 1, bias: !opts.groupNorm });
    if (opts.groupNorm) h = groupNorm(s, `${name}.conv.${i}.1`, h, 32);
    h = op.relu(h);
  }
  return h;
}

/**
 * [N, A*C, H, W] -> [N, H*W*A, C]: torchvision's location-major, then anchor, then channel order.
 * torchvision's view(N, A, C, H, W).permute(0, 3, 4, 1, 2) keeps (A, C) and (H, W) adjacent, so
 * it is the matrix transpose [N, A*C, H*W] -> [N, H*W, A*C], which ONNX Runtime runs with its
 * blocked 2-D kernel (the 5-D permutation took its generic path, ~4x slower).
 * For a dynamic input (an exported graph of any size), H*W is left to ONNX's -1.
 */
function flattenLevel(x: Tensor, perAnchor: number): Tensor {
  const [n, ac, h, w] = x.shape as [number, number, number, number];
  if (x.dynamic) {
    const r = op.reshapeSymbolic(x, [0, ac, -1]);
    return op.reshapeSymbolic(op.transpose(r, [0, 2, 1]), [0, -1, perAnchor]);
  }
  const r = op.reshape(x, [n, ac, h * w]);
  return op.reshape(op.transpose(r, [0, 2, 1]), [n, (h * w * ac) / perAnchor, perAnchor]);
}

/**
 * Runs both subnets on every level; returns class logits [N, sum_l H_l W_l A, K] and box deltas
 * [N, sum_l H_l W_l A, 4], levels concatenated in order, and the same per level.
 */
export function retinanetHead(
  s: Scope,
  features: readonly Tensor[],
  numAnchors: number,
  numClasses: number,
  opts: HeadOptions,
  prefix = 'head.',
): { clsLogits: Tensor; boxDeltas: Tensor; levels: { clsLogits: Tensor; boxDeltas: Tensor }[] } {
  const prior = opts.priorProbability;
  const cls: Tensor[] = [];
  const box: Tensor[] = [];
  for (const f of features) {
    const ct = tower(s, `${prefix}classification_head`, f, opts);
    const logits = conv2d(s, `${prefix}classification_head.cls_logits`, ct, numAnchors * numClasses, 3, {
      padding: 1,
      weightInit: { kind: 'normal', std: 0.01 },
      biasInit: { kind: 'constant', value: -Math.log((1 - prior) / prior) },
    });
    cls.push(flattenLevel(logits, numClasses));
    const bt = tower(s, `${prefix}regression_head`, f, opts);
    const deltas = conv2d(s, `${prefix}regression_head.bbox_reg`, bt, numAnchors * 4, 3, { ...headInit, padding: 1 });
    box.push(flattenLevel(deltas, 4));
  }
  return { clsLogits: op.concat(cls, 1), boxDeltas: op.concat(box, 1), levels: cls.map((c, l) => ({ clsLogits: c, boxDeltas: box[l]! })) };
}
