/**
 * The small RetinaNet the demo trains from scratch on CPU: ResNet-18 backbone, a narrow FPN
 * and two-conv subnets, anchors scaled down one octave (16-256 px) for the synthetic data's
 * small objects, images kept at their 192 px size.
 */
import { SYNTHETIC_CLASSES } from '../data/synthetic.js';
import { type RetinaNetConfig, configFor } from '../model/config.js';
import type { TrainOptions } from './trainer.js';

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

/** The demo's training recipe for `iters` iterations (shared by `retinanet demo` and the ablation). */
export function demoTrainOptions(o: { iters: number; batch?: number; lr?: number; seed: number; threads?: number; outDir: string; quiet?: boolean }): TrainOptions {
  return {
    iters: o.iters,
    batchSize: o.batch ?? DEMO_DEFAULTS.batch,
    lr: o.lr ?? DEMO_DEFAULTS.lr,
    momentum: 0.9,
    weightDecay: 1e-4,
    warmupIters: Math.min(100, Math.floor(o.iters / 10)),
    // From scratch without normalisation in the backbone, an occasional huge gradient would
    // otherwise blow the run up.
    clipGradNorm: DEMO_DEFAULTS.clipGradNorm,
    flip: true,
    padTo: 32,
    seed: o.seed,
    threads: o.threads,
    outDir: o.outDir,
    checkpointEvery: Math.max(100, Math.floor(o.iters / 4)),
    valEvery: o.iters,
    quiet: o.quiet,
  };
}
