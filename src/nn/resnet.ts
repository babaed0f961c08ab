/**
 * ResNet backbones (18/34/50/101) with torchvision's layer names, returning the C2-C5 feature
 * maps that FPN consumes. Mirrors torchvision.models.resnet (v1.5: the stride of a bottleneck
 * sits on its 3x3 conv).
 *
 * Normalisation after each conv (`norm`):
 * - 'frozen_bn': torchvision's FrozenBatchNorm2d (detection's default: a fixed per-channel
 *   affine from a pretrained checkpoint's statistics; folded into the conv). From scratch its
 *   initial statistics make it an identity, so a deep network trains with no normalisation.
 * - 'group_norm': GroupNorm with a trainable affine, as torchvision's ResNet built with
 *   `norm_layer=lambda c: nn.GroupNorm(32, c)` and as detectron2's from-scratch configs
 *   (configs/Misc/scratch_mask_rcnn_R_50_FPN_{3x,9x}_gn.yaml: RESNETS.NORM "GN", FPN.NORM "GN",
 *   FREEZE_AT 0) following He, Girshick and Dollár, "Rethinking ImageNet Pre-training" (2018):
 *   GroupNorm in the backbone, FPN and heads is what lets detectors train from random init.
 *   The parameter names are those BatchNorm had (`bn1.weight`, `bn1.bias`,
 *   `downsample.1.weight`, ...) with no running statistics, exactly torchvision's GN-ResNet
 *   state_dict; the conv weights keep their names and shapes, so a BatchNorm checkpoint's
 *   convs still fit.
 */
import type { Tensor } from '../engine/graph.js';
import * as op from '../engine/ops.js';
import { type Scope, conv2d, convFrozenBn, groupNorm, groupNormGroups } from './layers.js';

export type ResNetDepth = 18 | 34 | 50 | 101;

/** The normalisation after each backbone conv. */
export type BackboneNorm = 'frozen_bn' | 'group_norm';

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

/** The normalisation after each conv; `eps` is FrozenBatchNorm2d's (GroupNorm keeps torch's 1e-5). */
export interface ResNetNorm {
  norm: BackboneNorm;
  eps: number;
}

const FROZEN_BN: ResNetNorm = { norm: 'frozen_bn', eps: 1e-5 };

/**
 * `${conv}` (no bias) then the normalisation `${bn}`: FrozenBatchNorm folded into one conv, or
 * GroupNorm (torchvision initialises its affine to 1 / 0, as `groupNorm` does).
 */
function convNorm(s: Scope, n: ResNetNorm, conv: string, bn: string, x: Tensor, out: number, k: number, stride = 1, padding = 0): Tensor {
  if (n.norm === 'frozen_bn') return convFrozenBn(s, conv, bn, x, out, k, { stride, padding, weightInit: convInit, eps: n.eps });
  const h = conv2d(s, conv, x, out, k, { stride, padding, bias: false, weightInit: convInit });
  return groupNorm(s, bn, h, groupNormGroups(out));
}

/** torchvision BasicBlock (expansion 1); `n` is the normalisation (default frozen BatchNorm, eps 1e-5). */
export function basicBlock(s: Scope, name: string, x: Tensor, planes: number, stride: number, n: ResNetNorm = FROZEN_BN): Tensor {
  let out = op.relu(convNorm(s, n, `${name}.conv1`, `${name}.bn1`, x, planes, 3, stride, 1));
  out = convNorm(s, n, `${name}.conv2`, `${name}.bn2`, out, planes, 3, 1, 1);
  const identity = stride !== 1 || x.shape[1] !== planes ? downsample(s, n, name, x, planes, stride) : x;
  return op.relu(op.add(out, identity));
}

/** torchvision Bottleneck (expansion 4, stride on the 3x3 conv); `n` as for basicBlock. */
export function bottleneck(s: Scope, name: string, x: Tensor, planes: number, stride: number, n: ResNetNorm = FROZEN_BN): Tensor {
  let out = op.relu(convNorm(s, n, `${name}.conv1`, `${name}.bn1`, x, planes, 1));
  out = op.relu(convNorm(s, n, `${name}.conv2`, `${name}.bn2`, out, planes, 3, stride, 1));
  out = convNorm(s, n, `${name}.conv3`, `${name}.bn3`, out, planes * 4, 1);
  const identity = stride !== 1 || x.shape[1] !== planes * 4 ? downsample(s, n, name, x, planes * 4, stride) : x;
  return op.relu(op.add(out, identity));
}

function downsample(s: Scope, n: ResNetNorm, name: string, x: Tensor, out: number, stride: number): Tensor {
  return convNorm(s, n, `${name}.downsample.0`, `${name}.downsample.1`, x, out, 1, stride);
}

/**
 * Runs a ResNet on x [N, 3, H, W]; returns C2..C5 ([N, C, H/4, W/4] ... [N, C, H/32, W/32]).
 * `prefix` is prepended to every parameter name (e.g. `backbone.body.`). `baseWidth` is the
 * stem / first-stage width (64 in torchvision; narrower widths make CPU-sized backbones).
 * `eps` is FrozenBatchNorm2d's: 1e-5, torchvision's default; 0 for torchvision's COCO_V1
 * RetinaNet weights, which torchvision loads with `overwrite_eps(model, 0.0)`. `norm` is the
 * normalisation after each conv (see the top of this file).
 */
export function resnet(s: Scope, x: Tensor, depth: ResNetDepth, prefix = '', baseWidth = 64, eps = 1e-5, norm: BackboneNorm = 'frozen_bn'): [Tensor, Tensor, Tensor, Tensor] {
  const n: ResNetNorm = { norm, eps };
  const spec = SPECS[depth];
  if (!spec) throw new Error(`unsupported ResNet depth ${depth} (expected 18, 34, 50 or 101)`);
  const block = spec.block === 'bottleneck' ? bottleneck : basicBlock;
  let h = op.relu(convNorm(s, n, `${prefix}conv1`, `${prefix}bn1`, x, baseWidth, 7, 2, 3));
  h = op.maxPool(h, { kernel: 3, strides: 2, pads: 1 });
  const outs: Tensor[] = [];
  const planes = [baseWidth, 2 * baseWidth, 4 * baseWidth, 8 * baseWidth];
  for (let l = 0; l < 4; l++) {
    for (let b = 0; b < spec.layers[l]!; b++) {
      h = block(s, `${prefix}layer${l + 1}.${b}`, h, planes[l]!, b === 0 && l > 0 ? 2 : 1, n);
    }
    outs.push(h);
  }
  return outs as [Tensor, Tensor, Tensor, Tensor];
}
