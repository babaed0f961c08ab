/**
 * ResNet backbones (18/34/50/101) with torchvision's layer names and frozen BatchNorm, returning
 * the C2-C5 feature maps that FPN consumes. Mirrors torchvision.models.resnet (v1.5: the stride
 * of a bottleneck sits on its 3x3 conv).
 */
import type { Tensor } from '../engine/graph.js';
import * as op from '../engine/ops.js';
import { type Scope, convFrozenBn } from './layers.js';

export type ResNetDepth = 18 | 34 | 50 | 101;

interface ResNetSpec {
  block: 'basic' | 'bottleneck';
  layers: [number, number, number, number];
}

const SPECS: Record<ResNetDepth, ResNetSpec> = {
  18: { block: 'basic', layers: [2, 2, 2, 2] },
  34: { block: 'basic', layers: [3, 4, 6, 3] },
  50: { block: 'bottleneck', layers: [3, 4, 6, 3] },
  101: { block: 'bottleneck', layers: [3, 4, 23, 3] },
};

/** Output channels of C2..C5 for a depth (base x 1, 2, 4, 8 x block expansion; base 64 in torchvision). */
export function resnetChannels(depth: ResNetDepth, base = 64): [number, number, number, number] {
  const e = SPECS[depth].block === 'bottleneck' ? 4 : 1;
  return [base * e, 2 * base * e, 4 * base * e, 8 * base * e];
}

const convInit = { kind: 'kaimingNormalFanOut' } as const;

/** `${conv}` (no bias) then FrozenBatchNorm `${bn}`, folded into one conv. */
function convBn(s: Scope, conv: string, bn: string, x: Tensor, out: number, k: number, stride: number, padding: number, eps: number): Tensor {
  return convFrozenBn(s, conv, bn, x, out, k, { stride, padding, weightInit: convInit, eps });
}

/** torchvision BasicBlock (expansion 1); `eps` is FrozenBatchNorm2d's. */
export function basicBlock(s: Scope, name: string, x: Tensor, planes: number, stride: number, eps = 1e-5): Tensor {
  let out = op.relu(convBn(s, `${name}.conv1`, `${name}.bn1`, x, planes, 3, stride, 1, eps));
  out = convBn(s, `${name}.conv2`, `${name}.bn2`, out, planes, 3, 1, 1, eps);
  const identity = stride !== 1 || x.shape[1] !== planes ? downsample(s, name, x, planes, stride, eps) : x;
  return op.relu(op.add(out, identity));
}

/** torchvision Bottleneck (expansion 4, stride on the 3x3 conv); `eps` is FrozenBatchNorm2d's. */
export function bottleneck(s: Scope, name: string, x: Tensor, planes: number, stride: number, eps = 1e-5): Tensor {
  let out = op.relu(convBn(s, `${name}.conv1`, `${name}.bn1`, x, planes, 1, 1, 0, eps));
  out = op.relu(convBn(s, `${name}.conv2`, `${name}.bn2`, out, planes, 3, stride, 1, eps));
  out = convBn(s, `${name}.conv3`, `${name}.bn3`, out, planes * 4, 1, 1, 0, eps);
  const identity = stride !== 1 || x.shape[1] !== planes * 4 ? downsample(s, name, x, planes * 4, stride, eps) : x;
  return op.relu(op.add(out, identity));
}

function downsample(s: Scope, name: string, x: Tensor, out: number, stride: number, eps: number): Tensor {
  return convBn(s, `${name}.downsample.0`, `${name}.downsample.1`, x, out, 1, stride, 0, eps);
}

/**
 * Runs a ResNet on x [N, 3, H, W]; returns C2..C5 ([N, C, H/4, W/4] ... [N, C, H/32, W/32]).
 * `prefix` is prepended to every parameter name (e.g. `backbone.body.`). `baseWidth` is the
 * stem / first-stage width (64 in torchvision; narrower widths make CPU-sized backbones).
 * `eps` is FrozenBatchNorm2d's: 1e-5, torchvision's default; 0 for torchvision's COCO_V1
 * RetinaNet weights, which torchvision loads with `overwrite_eps(model, 0.0)`.
 */
export function resnet(s: Scope, x: Tensor, depth: ResNetDepth, prefix = '', baseWidth = 64, eps = 1e-5): [Tensor, Tensor, Tensor, Tensor] {
  const spec = SPECS[depth];
  if (!spec) throw new Error(`unsupported ResNet depth ${depth} (expected 18, 34, 50 or 101)`);
  const block = spec.block === 'bottleneck' ? bottleneck : basicBlock;
  let h = op.relu(convBn(s, `${prefix}conv1`, `${prefix}bn1`, x, baseWidth, 7, 2, 3, eps));
  h = op.maxPool(h, { kernel: 3, strides: 2, pads: 1 });
  const outs: Tensor[] = [];
  const planes = [baseWidth, 2 * baseWidth, 4 * baseWidth, 8 * baseWidth];
  for (let l = 0; l < 4; l++) {
    for (let b = 0; b < spec.layers[l]!; b++) {
      h = block(s, `${prefix}layer${l + 1}.${b}`, h, planes[l]!, b === 0 && l > 0 ? 2 : 1, eps);
    }
    outs.push(h);
  }
  return outs as [Tensor, Tensor, Tensor, Tensor];
}
