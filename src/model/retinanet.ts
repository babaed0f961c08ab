/**
 * The RetinaNet network as a graph: ResNet -> FPN (P3-P7) -> shared class/box subnets.
 * Parameter names are torchvision's state_dict names.
 */
import { GraphError, type Graph, type Tensor } from '../engine/graph.js';
import { gridSizesFor } from '../detection/anchors.js';
import type { ParameterStore } from '../nn/params.js';
import { resnet } from '../nn/resnet.js';
import { type RetinaNetConfig, STRIDES, anchorsPerLocationOf } from './config.js';
import { fpn } from './fpn.js';
import { retinanetHead } from './head.js';

export interface RetinaNetOutputs {
  /** [N, A_total, K] class logits over all levels. */
  clsLogits: Tensor;
  /** [N, A_total, 4] box deltas. */
  boxDeltas: Tensor;
  /** Anchors per level for one image (location-major), count = 4 * H_l * W_l * A. */
  levelAnchorCounts: number[];
  /** The same outputs per level P3..P7 before concatenation: [N, H_l W_l A, K] and [N, H_l W_l A, 4]. */
  levels: { clsLogits: Tensor; boxDeltas: Tensor }[];
  /** The pyramid P3..P7, [N, C, H_l, W_l] (their run-time sizes give the anchor grids of an exported graph). */
  features: Tensor[];
}

/** Builds the network on `images` [N, 3, H, W] (H, W multiples of 32). */
export function buildRetinaNet(graph: Graph, store: ParameterStore, images: Tensor, cfg: RetinaNetConfig): RetinaNetOutputs {
  const [, c, h, w] = images.shape as [number, number, number, number];
  if (c !== 3) throw new GraphError(`RetinaNet: images must have 3 channels, got ${c}`);
  if (h % 32 !== 0 || w % 32 !== 0) throw new GraphError(`RetinaNet: image size ${h}x${w} must be a multiple of 32 (pad the batch)`);
  const s = { graph, store };
  const [, c3, c4, c5] = resnet(s, images, cfg.backbone.depth, 'backbone.body.', cfg.backbone.baseWidth, cfg.backbone.bnEps, cfg.backbone.norm);
  const features = fpn(s, [c3, c4, c5], cfg.fpn.channels, cfg.fpn.p6From, 'backbone.fpn.', cfg.fpn.norm);
  const a = anchorsPerLocationOf(cfg);
  const grids = gridSizesFor(h, w, STRIDES);
  features.forEach((f, l) => {
    if (f.shape[2] !== grids[l]![0] || f.shape[3] !== grids[l]![1]) throw new GraphError(`RetinaNet: P${l + 3} is ${f.shape[2]}x${f.shape[3]}, anchors expect ${grids[l]!.join('x')}`);
  });
  const { clsLogits, boxDeltas, levels } = retinanetHead(s, features, a, cfg.numClasses, cfg.head);
  return { clsLogits, boxDeltas, levelAnchorCounts: grids.map(([gh, gw]) => gh * gw * a), levels, features };
}

/**
 * torchvision's trainable_backbone_layers: parameters of the last `trainableLayers` backbone
 * stages (layer4, layer3, ..., conv1+bn1) train; FPN and heads always train; frozen BatchNorm
 * never does. A GroupNorm backbone's norm affine (`bn*`, `downsample.1`) trains with its stage,
 * as torchvision's `_resnet_fpn_extractor` leaves it (it freezes whole stages only).
 */
export function applyTrainableLayers(store: ParameterStore, cfg: RetinaNetConfig): void {
  const stages = ['layer4', 'layer3', 'layer2', 'layer1', 'conv1'].slice(0, cfg.backbone.trainableLayers);
  // torchvision trains the stem's norm with all five stages (`layers_to_train.append("bn1")`).
  if (cfg.backbone.trainableLayers === 5) stages.push('bn1');
  store.setTrainable((name) => {
    if (/\.(running_mean|running_var)$/.test(name)) return false;
    if (!name.startsWith('backbone.body.')) return true;
    const rest = name.slice('backbone.body.'.length);
    if (cfg.backbone.norm === 'frozen_bn' && /(^|\.)(bn\d|downsample\.1)\./.test(rest)) return false; // frozen BatchNorm affine
    return stages.some((st) => rest.startsWith(`${st}.`));
  });
}
