/**
 * The small RetinaNet the demo trains from scratch on CPU: ResNet-18 backbone, a narrow FPN
 * and two-conv subnets, anchors scaled down one octave (16-256 px) for the synthetic data's
 * small objects, images kept at their 192 px size.
 */
import { SYNTHETIC_CLASSES } from '../data/synthetic.js';
import { type RetinaNetConfig, configFor } from '../model/config.js';
import { paperRecipe } from './recipe.js';
import type { TrainHook, TrainOptions } from './trainer.js';

export const DEMO_DEFAULTS = { iters: 1000, batch: 8, lr: 0.02, clipGradNorm: 5 } as const;

export function demoConfig(imageSize = 192): RetinaNetConfig {
  const octaves = [16, 32, 64, 128, 256];
  return configFor('retinanet_resnet18_fpn_small', {
    name: 'retinanet_resnet18_fpn_demo',
    numClasses: SYNTHETIC_CLASSES.length,
    classNames: [...SYNTHETIC_CLASSES],
    backbone: { baseWidth: 32 },
    fpn: { channels: 64, p6From: 'c5' },
    head: { convs: 2, groupNorm: true },
    anchors: { sizes: octaves.map((x) => [x, Math.trunc(x * 2 ** (1 / 3)), Math.trunc(x * 2 ** (2 / 3))]) },
    transform: { minSize: imageSize, maxSize: imageSize },
  });
}

/**
 * The demo's run of `iters` iterations (shared by `retinanet demo` and the ablation): the
 * paper's recipe at batch 8 with a higher rate (0.02), a short warmup, gradient clipping and
 * torchvision's padding to 32 (the synthetic images all have one size).
 */
export function demoTrainOptions(o: { iters: number; batch?: number; lr?: number; seed?: number; threads?: number; outDir?: string; hooks?: TrainHook[] }): TrainOptions {
  return {
    ...paperRecipe({
      batch: o.batch ?? DEMO_DEFAULTS.batch,
      lr: o.lr ?? DEMO_DEFAULTS.lr,
      warmupIters: Math.min(100, Math.floor(o.iters / 10)),
      // From scratch without normalisation in the backbone, an occasional huge gradient would
      // otherwise blow the run up.
      clipGradNorm: DEMO_DEFAULTS.clipGradNorm,
      padTo: 32,
    }),
    iters: o.iters,
    seed: o.seed ?? 0,
    threads: o.threads,
    outDir: o.outDir,
    checkpointEvery: Math.max(100, Math.floor(o.iters / 4)),
    valEvery: o.iters,
    hooks: o.hooks,
  };
}
