/**
 * RetinaNet configurations: named architectures (following torchvision's builders of the same
 * name) and JSON config files that override any option.
 */
import { fs } from '../platform/files.js';
import { InputError } from '../core/errors.js';
import { type AnchorConfig, RETINANET_ANCHOR_CONFIG } from '../detection/anchors.js';
import type { BoxLoss, ClassificationLoss } from '../detection/losses.js';
import type { BackboneNorm, ResNetDepth } from '../nn/resnet.js';
import type { FpnNorm } from './fpn.js';

export interface RetinaNetConfig {
  /** Architecture name, recorded in checkpoints. */
  name: string;
  /** Number of classes K (torchvision's COCO models use 91, index 0 unused). */
  numClasses: number;
  backbone: {
    depth: ResNetDepth;
    /** Trainable stages counted from the last (torchvision's trainable_backbone_layers, 0-5). */
    trainableLayers: number;
    /** Stem / first-stage width; 64 in torchvision (other values change tensor shapes). */
    baseWidth: number;
    /**
     * FrozenBatchNorm2d's eps: 1e-5 (torchvision's default); 0 for torchvision's COCO_V1
     * `retinanet_resnet50_fpn` weights, which torchvision loads with `overwrite_eps(model, 0.0)`.
     */
    bnEps: number;
    /**
     * Normalisation after each conv: 'frozen_bn' (torchvision's detection default, for
     * pretrained weights) or 'group_norm' (trainable GroupNorm, for training from scratch; same
     * parameter names, no running statistics). See src/nn/resnet.ts.
     */
    norm: BackboneNorm;
  };
  fpn: {
    channels: number;
    /** Input of P6: 'p5' (torchvision v1) or 'c5' (paper, detectron2, torchvision v2). */
    p6From: 'p5' | 'c5';
    /** 'none' (torchvision's default) or 'group_norm' after each inner and layer block conv. */
    norm: FpnNorm;
  };
  head: {
    /** Conv layers per subnet (4 in the paper). */
    convs: number;
    /** GroupNorm(32) after each head conv, as torchvision v2. */
    groupNorm: boolean;
    /** Prior probability for the class bias init. */
    priorProbability: number;
  };
  anchors: {
    /** Anchor sizes (sqrt of area, pixels) per level P3..P7. */
    sizes: number[][];
    /** Aspect ratios (height / width) per level P3..P7. */
    aspectRatios: number[][];
  };
  loss: {
    classification: ClassificationLoss;
    alpha: number;
    gamma: number;
    box: BoxLoss;
    /** Matcher thresholds. */
    fgIouThresh: number;
    bgIouThresh: number;
  };
  transform: {
    minSize: number;
    maxSize: number;
    mean: [number, number, number];
    std: [number, number, number];
  };
  inference: {
    scoreThresh: number;
    nmsThresh: number;
    topkCandidates: number;
    detectionsPerImg: number;
  };
  /** Class names (index = label); optional. */
  classNames?: string[];
}

/** Level strides P3..P7. */
export const STRIDES = [8, 16, 32, 64, 128] as const;

/** The anchor layout of a config, in the form the anchor generator takes. */
export function anchorConfig(c: RetinaNetConfig): AnchorConfig {
  return { sizes: c.anchors.sizes, aspectRatios: c.anchors.aspectRatios, strides: [...STRIDES] };
}

/** Anchors per feature-map location (9 by default). */
export function anchorsPerLocationOf(c: RetinaNetConfig): number {
  return c.anchors.sizes[0]!.length * c.anchors.aspectRatios[0]!.length;
}

function base(): RetinaNetConfig {
  return {
    name: 'retinanet_resnet50_fpn',
    numClasses: 91,
    backbone: { depth: 50, trainableLayers: 3, baseWidth: 64, bnEps: 1e-5, norm: 'frozen_bn' },
    fpn: { channels: 256, p6From: 'p5', norm: 'none' },
    head: { convs: 4, groupNorm: false, priorProbability: 0.01 },
    anchors: {
      sizes: RETINANET_ANCHOR_CONFIG.sizes.map((s) => [...s]),
      aspectRatios: RETINANET_ANCHOR_CONFIG.aspectRatios.map((r) => [...r]),
    },
    loss: { classification: 'focal', alpha: 0.25, gamma: 2, box: 'l1', fgIouThresh: 0.5, bgIouThresh: 0.4 },
    transform: { minSize: 800, maxSize: 1333, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
    inference: { scoreThresh: 0.05, nmsThresh: 0.5, topkCandidates: 1000, detectionsPerImg: 100 },
  };
}

/** Named architectures. Defaults follow torchvision's builders; detections per image follow the paper (100). */
export const ARCHITECTURES: Record<string, () => RetinaNetConfig> = {
  retinanet_resnet50_fpn: base,
  retinanet_resnet50_fpn_v2: () => {
    const c = base();
    c.name = 'retinanet_resnet50_fpn_v2';
    c.fpn.p6From = 'c5';
    c.head.groupNorm = true;
    c.loss.box = 'giou';
    return c;
  },
  retinanet_resnet101_fpn: () => {
    const c = base();
    c.name = 'retinanet_resnet101_fpn';
    c.backbone.depth = 101;
    return c;
  },
  /** A small RetinaNet for CPU training: ResNet-18, 128-channel FPN, two convs per subnet. */
  retinanet_resnet18_fpn_small: () => {
    const c = base();
    c.name = 'retinanet_resnet18_fpn_small';
    c.backbone = { depth: 18, trainableLayers: 5, baseWidth: 64, bnEps: 1e-5, norm: 'frozen_bn' };
    c.fpn = { channels: 128, p6From: 'c5', norm: 'none' };
    c.head.convs = 2;
    c.transform.minSize = 512;
    c.transform.maxSize = 683;
    return c;
  },
  /**
   * retinanet_resnet18_fpn_small for training from scratch: GroupNorm in the backbone, FPN and
   * heads (He et al., Rethinking ImageNet Pre-training; detectron2's scratch configs).
   */
  retinanet_resnet18_fpn_gn: () => {
    const c = ARCHITECTURES['retinanet_resnet18_fpn_small']!();
    c.name = 'retinanet_resnet18_fpn_gn';
    c.backbone.norm = 'group_norm';
    c.fpn.norm = 'group_norm';
    c.head.groupNorm = true;
    return c;
  },
};

export function architectureNames(): string[] {
  return Object.keys(ARCHITECTURES);
}

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends (infer U)[] ? U[] : T[K] extends object ? DeepPartial<T[K]> : T[K] };

/** Overrides `cfg` with the fields of `patch`, recursively (arrays replace). */
export function mergeConfig(cfg: RetinaNetConfig, patch: DeepPartial<RetinaNetConfig>): RetinaNetConfig {
  const merge = (a: Record<string, unknown>, b: Record<string, unknown>, where: string): Record<string, unknown> => {
    const out: Record<string, unknown> = { ...a };
    for (const [k, v] of Object.entries(b)) {
      if (!Object.hasOwn(a, k)) throw new InputError(`config: unknown option '${where}${k}'`);
      const cur = a[k];
      if (cur !== null && typeof cur === 'object' && !Array.isArray(cur) && v !== null && typeof v === 'object' && !Array.isArray(v)) {
        out[k] = merge(cur as Record<string, unknown>, v as Record<string, unknown>, `${where}${k}.`);
      } else {
        if (cur !== undefined && typeof cur !== typeof v) throw new InputError(`config: option '${where}${k}' must be ${Array.isArray(cur) ? 'an array' : `a ${typeof cur}`}`);
        out[k] = v;
      }
    }
    return out;
  };
  if (!isRecord(patch)) throw new InputError(`config: expected an object of options, got ${show(patch)}`);
  const withOptional = { ...cfg, classNames: cfg.classNames ?? [] } as unknown as Record<string, unknown>;
  const merged = merge(withOptional, patch as Record<string, unknown>, '') as unknown as RetinaNetConfig;
  if (merged.classNames && merged.classNames.length === 0) delete merged.classNames;
  return validateConfig(merged);
}

// Far beyond any real RetinaNet: they only stop a config (or a sidecar, or a checkpoint's state)
// from asking for a model of terabytes.
const LIMITS = { numClasses: 100_000, baseWidth: 1024, channels: 4096, convs: 32, anchorsPerLocation: 64, imageSide: 16_384, detections: 1_000_000 };

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isInt = (v: unknown, min: number, max: number): boolean => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;
const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const show = (v: unknown): string => (typeof v === 'number' || typeof v === 'boolean' || v === null ? String(v) : typeof v === 'string' ? `'${v.slice(0, 40)}'` : Array.isArray(v) ? 'an array' : `a ${typeof v}`);

/**
 * Checks a config's invariants, throwing a InputError naming the bad option. Every field is
 * checked for its type and range, since configs come from files (config, sidecar, checkpoint).
 */
export function validateConfig(c: RetinaNetConfig): RetinaNetConfig {
  const bad = (option: string, want: string, got: unknown): never => {
    throw new InputError(`config: ${option} must be ${want}, got ${show(got)}`);
  };
  for (const section of ['backbone', 'fpn', 'head', 'anchors', 'loss', 'transform', 'inference'] as const) {
    if (!isRecord(c[section])) bad(section, 'an object', c[section]);
  }
  if (typeof c.name !== 'string') bad('name', 'a string', c.name);
  if (![18, 34, 50, 101].includes(c.backbone.depth)) throw new InputError(`config: backbone.depth must be 18, 34, 50 or 101, got ${show(c.backbone.depth)}`);
  if (!Number.isInteger(c.backbone.baseWidth) || c.backbone.baseWidth < 8) throw new InputError(`config: backbone.baseWidth must be an integer >= 8, got ${show(c.backbone.baseWidth)}`);
  if (!isInt(c.backbone.baseWidth, 8, LIMITS.baseWidth)) bad('backbone.baseWidth', `at most ${LIMITS.baseWidth}`, c.backbone.baseWidth);
  if (!isInt(c.backbone.trainableLayers, 0, 5)) bad('backbone.trainableLayers', 'an integer from 0 to 5', c.backbone.trainableLayers);
  if (!(isFiniteNumber(c.backbone.bnEps) && c.backbone.bnEps >= 0 && c.backbone.bnEps < 1)) bad('backbone.bnEps', '>= 0 and < 1', c.backbone.bnEps);
  if (c.backbone.norm !== 'frozen_bn' && c.backbone.norm !== 'group_norm') bad('backbone.norm', "'frozen_bn' or 'group_norm'", c.backbone.norm);
  if (!Number.isInteger(c.numClasses) || c.numClasses < 1) throw new InputError(`config: numClasses must be a positive integer, got ${show(c.numClasses)}`);
  if (c.numClasses > LIMITS.numClasses) bad('numClasses', `at most ${LIMITS.numClasses}`, c.numClasses);
  if (!isInt(c.fpn.channels, 1, LIMITS.channels)) bad('fpn.channels', `an integer from 1 to ${LIMITS.channels}`, c.fpn.channels);
  if (c.fpn.p6From !== 'p5' && c.fpn.p6From !== 'c5') bad('fpn.p6From', "'p5' or 'c5'", c.fpn.p6From);
  if (c.fpn.norm !== 'none' && c.fpn.norm !== 'group_norm') bad('fpn.norm', "'none' or 'group_norm'", c.fpn.norm);
  if (!isInt(c.head.convs, 0, LIMITS.convs)) bad('head.convs', `an integer from 0 to ${LIMITS.convs}`, c.head.convs);
  if (typeof c.head.groupNorm !== 'boolean') bad('head.groupNorm', 'true or false', c.head.groupNorm);
  if (!(isFiniteNumber(c.head.priorProbability) && c.head.priorProbability > 0 && c.head.priorProbability < 1)) bad('head.priorProbability', 'a number in (0, 1)', c.head.priorProbability);
  const levels = (v: unknown): v is number[][] =>
    Array.isArray(v) && v.every((l) => Array.isArray(l) && l.length > 0 && l.every((x) => isFiniteNumber(x) && x > 0));
  if (!levels(c.anchors.sizes)) bad('anchors.sizes', 'a list per level of positive numbers', c.anchors.sizes);
  if (!levels(c.anchors.aspectRatios)) bad('anchors.aspectRatios', 'a list per level of positive numbers', c.anchors.aspectRatios);
  if (c.anchors.sizes.length !== STRIDES.length || c.anchors.aspectRatios.length !== STRIDES.length) {
    throw new InputError(`config: anchors.sizes and anchors.aspectRatios need one list per level P3-P7 (5)`);
  }
  const perLocation = c.anchors.sizes[0]!.length * c.anchors.aspectRatios[0]!.length;
  if (c.anchors.sizes.some((s, l) => s.length * c.anchors.aspectRatios[l]!.length !== perLocation)) {
    throw new InputError('config: every level needs the same number of anchors per location (the heads are shared)');
  }
  if (perLocation > LIMITS.anchorsPerLocation) bad('anchors', `at most ${LIMITS.anchorsPerLocation} anchors per location`, perLocation);
  if (c.head.groupNorm && c.fpn.channels % 32 !== 0) throw new InputError('config: head.groupNorm needs fpn.channels divisible by 32');
  if (!['focal', 'ce', 'focal-star'].includes(c.loss.classification)) bad('loss.classification', "'focal', 'ce' or 'focal-star'", c.loss.classification);
  if (!['l1', 'smooth_l1', 'giou'].includes(c.loss.box)) bad('loss.box', "'l1', 'smooth_l1' or 'giou'", c.loss.box);
  if (!isFiniteNumber(c.loss.alpha)) bad('loss.alpha', 'a number', c.loss.alpha);
  if (!(isFiniteNumber(c.loss.gamma) && c.loss.gamma >= 0)) bad('loss.gamma', 'a number >= 0', c.loss.gamma);
  for (const k of ['fgIouThresh', 'bgIouThresh'] as const) {
    if (!(isFiniteNumber(c.loss[k]) && c.loss[k] >= 0 && c.loss[k] <= 1)) bad(`loss.${k}`, 'a number in [0, 1]', c.loss[k]);
  }
  if (!(c.loss.bgIouThresh <= c.loss.fgIouThresh)) throw new InputError('config: loss.bgIouThresh must not exceed loss.fgIouThresh');
  for (const k of ['minSize', 'maxSize'] as const) {
    if (!(isFiniteNumber(c.transform[k]) && c.transform[k] >= 1 && c.transform[k] <= LIMITS.imageSide)) bad(`transform.${k}`, `a number from 1 to ${LIMITS.imageSide}`, c.transform[k]);
  }
  const triple = (v: unknown): boolean => Array.isArray(v) && v.length === 3 && v.every(isFiniteNumber);
  if (!triple(c.transform.mean)) bad('transform.mean', 'three numbers', c.transform.mean);
  if (!triple(c.transform.std) || c.transform.std.some((x) => x <= 0)) bad('transform.std', 'three positive numbers', c.transform.std);
  if (!isFiniteNumber(c.inference.scoreThresh)) bad('inference.scoreThresh', 'a number', c.inference.scoreThresh);
  if (!isFiniteNumber(c.inference.nmsThresh)) bad('inference.nmsThresh', 'a number', c.inference.nmsThresh);
  for (const k of ['topkCandidates', 'detectionsPerImg'] as const) {
    if (!isInt(c.inference[k], 1, LIMITS.detections)) bad(`inference.${k}`, `an integer from 1 to ${LIMITS.detections}`, c.inference[k]);
  }
  if (c.classNames !== undefined && !(Array.isArray(c.classNames) && c.classNames.every((n) => typeof n === 'string'))) bad('classNames', 'a list of strings', c.classNames);
  if (c.classNames && c.classNames.length !== c.numClasses) throw new InputError(`config: ${c.classNames.length} classNames for ${c.numClasses} classes`);
  return c;
}

/** A named architecture's config, optionally overridden. */
export function configFor(arch: string, patch: DeepPartial<RetinaNetConfig> = {}): RetinaNetConfig {
  const make = Object.hasOwn(ARCHITECTURES, arch) ? ARCHITECTURES[arch] : undefined;
  if (!make) throw new InputError(`unknown architecture '${arch}'; available: ${architectureNames().join(', ')}`);
  return mergeConfig(make(), patch);
}

/** Reads a JSON config file: `{ "arch": NAME, ...overrides }` (arch defaults to retinanet_resnet50_fpn). */
export function loadConfigFile(file: string): RetinaNetConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new InputError(`cannot read config ${file}: ${(err as Error).message}`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new InputError(`config ${file}: expected a JSON object`);
  const { arch, ...rest } = raw as Record<string, unknown>;
  if (arch !== undefined && typeof arch !== 'string') throw new InputError(`config ${file}: "arch" must be an architecture name (${architectureNames().join(', ')})`);
  const name = typeof rest['name'] === 'string' ? rest['name'] : undefined;
  return configFor(arch ?? name ?? 'retinanet_resnet50_fpn', rest as DeepPartial<RetinaNetConfig>);
}
