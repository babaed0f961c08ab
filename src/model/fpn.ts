/**
 * Feature Pyramid Network P3-P7 over C3-C5, as torchvision's FeaturePyramidNetwork with
 * LastLevelP6P7 (names `backbone.fpn.inner_blocks.{i}.0`, `layer_blocks.{i}.0`,
 * `extra_blocks.p6` / `p7`). With `norm` 'group_norm' each inner and layer block is
 * torchvision's `Conv2dNormActivation(..., norm_layer=GroupNorm, activation_layer=None)`, as
 * `FeaturePyramidNetwork(norm_layer=...)` builds it: a bias-free conv `{i}.0` then GroupNorm
 * `{i}.1` (detectron2's FPN.NORM "GN"); P6 and P7 stay plain convs, as in both.
 */
import type { Tensor } from '../engine/graph.js';
import { GraphError } from '../engine/graph.js';
import * as op from '../engine/ops.js';
import { type Scope, conv2d, groupNorm, groupNormGroups } from '../nn/layers.js';

/** Normalisation in the FPN's inner (lateral) and layer (output) blocks. */
export type FpnNorm = 'none' | 'group_norm';

const fpnInit = { weightInit: { kind: 'kaimingUniform', a: 1 }, biasInit: { kind: 'constant', value: 0 } } as const;

/**
 * P3..P7 ([N, channels, H/8, W/8] ... [N, channels, H/128, W/128]) from C3..C5.
 * `p6From` picks P6's input: P5 (torchvision v1) or C5 (paper, torchvision v2).
 */
export function fpn(s: Scope, c: readonly [Tensor, Tensor, Tensor], channels: number, p6From: 'p5' | 'c5', prefix = 'backbone.fpn.', norm: FpnNorm = 'none'): Tensor[] {
  const block = (name: string, x: Tensor, k: number): Tensor => {
    if (norm === 'none') return conv2d(s, `${name}.0`, x, channels, k, { ...fpnInit, padding: (k - 1) / 2 });
    const h = conv2d(s, `${name}.0`, x, channels, k, { ...fpnInit, padding: (k - 1) / 2, bias: false });
    return groupNorm(s, `${name}.1`, h, groupNormGroups(channels));
  };
  const inner = (i: number, x: Tensor): Tensor => block(`${prefix}inner_blocks.${i}`, x, 1);
  const layer = (i: number, x: Tensor): Tensor => block(`${prefix}layer_blocks.${i}`, x, 3);
  let last = inner(2, c[2]);
  const results: Tensor[] = [layer(2, last)];
  for (let i = 1; i >= 0; i--) {
    const lateral = inner(i, c[i]!);
    const [, , h, w] = lateral.shape as [number, number, number, number];
    const [, , lh, lw] = last.shape as [number, number, number, number];
    if (h !== 2 * lh || w !== 2 * lw) {
      throw new GraphError(`FPN: level sizes ${lh}x${lw} -> ${h}x${w} are not an exact 2x; pad images to a multiple of 32`);
    }
    last = op.add(lateral, op.upsampleNearest(last, 2));
    results.unshift(layer(i, last));
  }
  const p6Input = p6From === 'p5' ? results[2]! : c[2];
  const p6 = conv2d(s, `${prefix}extra_blocks.p6`, p6Input, channels, 3, { ...fpnInit, stride: 2, padding: 1 });
  const p7 = conv2d(s, `${prefix}extra_blocks.p7`, op.relu(p6), channels, 3, { ...fpnInit, stride: 2, padding: 1 });
  return [...results, p6, p7];
}
