/**
 * Training batches: which images go together (aspect-ratio grouping, a seeded order per epoch),
 * and turning them into network feeds (augmentation, torchvision's transform, padding to a
 * bounded set of shapes, target assignment).
 */
import { augment } from '../data/augment.js';
import { Rng } from '../core/random.js';
import { transformBatch } from '../data/transform.js';
import { type LossTargetFeeds, packLossTargets } from '../detection/loss_targets.js';
import type { BoxLoss } from '../detection/losses.js';
import { assignTargets } from '../detection/targets.js';
import type { RetinaNetConfig } from '../model/config.js';
import { anchorsFor } from '../model/anchors.js';
import type { Sample, SampleSource } from '../data/source.js';
import { InputError } from '../core/errors.js';

/**
 * Deterministic batch order: epoch 0 visits images in dataset order (so a run's first step is
 * reproducible by hand), later epochs in a permutation seeded by (seed, epoch). Within an epoch,
 * landscape and portrait images are batched separately (torchvision's aspect-ratio grouping) so
 * padding stays small; leftovers are batched together at the end of the epoch.
 */
export class BatchSampler {
  private epoch = -1;
  private batches: number[][] = [];
  readonly perEpoch: number;

  constructor(
    private readonly source: SampleSource,
    readonly batchSize: number,
    private readonly seed: number,
  ) {
    if (source.length === 0) throw new RangeError('no training images');
    this.perEpoch = Math.max(1, Math.floor(source.length / batchSize));
  }

  private plan(epoch: number): number[][] {
    const n = this.source.length;
    const order = [...Array(n).keys()];
    if (epoch > 0) new Rng((this.seed * 7919 + epoch) >>> 0).shuffle(order);
    const groups: number[][] = [[], []];
    const batches: number[][] = [];
    for (const i of order) {
      const g = groups[(this.source.aspect(i) ?? 1) >= 1 ? 0 : 1]!;
      g.push(i);
      if (g.length === this.batchSize) batches.push(g.splice(0));
    }
    const rest = [...groups[0]!, ...groups[1]!];
    while (batches.length < this.perEpoch) {
      const b = rest.splice(0, this.batchSize);
      // Fewer images than one batch: repeat them so the batch shape stays fixed.
      for (let k = 0; b.length < this.batchSize; k++) b.push(b[k % Math.max(1, b.length)] ?? order[k % n]!);
      batches.push(b);
    }
    return batches.slice(0, this.perEpoch);
  }

  /** Image indices of the batch used at iteration `iter`. */
  batchAt(iter: number): number[] {
    const epoch = Math.floor(iter / this.perEpoch);
    if (epoch !== this.epoch) {
      this.batches = this.plan(epoch);
      this.epoch = epoch;
    }
    return this.batches[iter % this.perEpoch]!;
  }
}

export interface BatchOptions {
  config: RetinaNetConfig;
  /** Horizontal flips (p = 0.5). */
  flip: boolean;
  /** Short sides to choose from per batch (scale jitter); default the config's minSize. */
  minSizes?: readonly number[];
  /** Padded sizes are multiples of this (bounds the number of compiled graphs). */
  padTo: number;
  seed: number;
  boxLoss: BoxLoss;
  /** An unreadable image is an error instead of being replaced by the next readable one. */
  strict?: boolean;
}

/** A batch ready to feed: NCHW images and the loss targets. */
export interface PreparedBatch {
  iter: number;
  indices: number[];
  images: Float32Array;
  shape: [number, number, number, number];
  targets: LossTargetFeeds;
  /** All anchors of one image [A, 4] (fed for the GIoU loss). */
  anchors: Float32Array;
  warnings: string[];
  /** Images of the planned batch that could not be read and were replaced. */
  skipped: number;
}

/** Images found unreadable, per source, so a later epoch does not try them again. */
const unreadable = new WeakMap<SampleSource, Set<number>>();

/**
 * The samples of a batch. An image that cannot be read (truncated, corrupt, vanished, an
 * unsupported format: any InputError) is replaced by the next readable image in dataset order
 * that is not already in the batch, with a warning naming it; with `strict` it is an error.
 * Deterministic: which images are unreadable does not depend on timing.
 */
async function loadSamples(source: SampleSource, indices: readonly number[], strict: boolean, warnings: string[]): Promise<{ samples: Sample[]; used: number[]; skipped: number }> {
  let bad = unreadable.get(source);
  if (!bad) unreadable.set(source, (bad = new Set()));
  const known = bad;
  const tryGet = async (i: number): Promise<Sample | undefined> => {
    if (known.has(i)) return undefined;
    try {
      return await source.get(i);
    } catch (err) {
      if (strict || !(err instanceof InputError)) throw err;
      known.add(i);
      warnings.push(`${err.message}; skipped`);
      return undefined;
    }
  };
  const first = await Promise.all(indices.map(tryGet));
  const used = [...indices];
  const samples: Sample[] = [];
  let skipped = 0;
  for (let k = 0; k < first.length; k++) {
    let s = first[k];
    if (!s) {
      skipped++;
      // The next readable image after the unreadable one, wrapping around the dataset.
      for (let step = 1; !s && step < source.length; step++) {
        const j = (indices[k]! + step) % source.length;
        if (used.includes(j)) continue;
        s = await tryGet(j);
        if (s) used[k] = j;
      }
      if (!s) throw new InputError(`no readable image left to fill a batch: all ${source.length} images of the training set failed to decode`);
    }
    samples.push(s);
  }
  return { samples, used, skipped };
}

/** Loads, augments, transforms and assigns targets for the images of one batch. */
export async function prepareBatch(source: SampleSource, iter: number, indices: readonly number[], opts: BatchOptions): Promise<PreparedBatch> {
  const cfg = opts.config;
  // Randomness depends only on (seed, iteration): a resumed run draws the same augmentations.
  const rng = new Rng((Math.imul(opts.seed + 1, 0x9e3779b1) ^ Math.imul(iter + 1, 0x85ebca6b)) >>> 0);
  const warnings: string[] = [];
  const { samples, used, skipped } = await loadSamples(source, indices, opts.strict === true, warnings);
  const images = [];
  const boxes = [];
  for (const s of samples) {
    const a = opts.flip ? augment(s.image, s.boxes, rng) : { image: s.image, boxes: s.boxes };
    images.push(a.image);
    boxes.push(a.boxes);
  }
  const minSize = opts.minSizes && opts.minSizes.length > 0 ? rng.choice(opts.minSizes) : cfg.transform.minSize;
  const t = transformBatch(images, boxes, { minSize, maxSize: cfg.transform.maxSize, mean: cfg.transform.mean, std: cfg.transform.std, sizeDivisible: opts.padTo });
  const [, , h, w] = t.shape;
  const anchorSet = anchorsFor(cfg, h, w);
  const anchors = anchorSet.all;
  const index = anchorSet.index();
  const assigned = samples.map((s, k) =>
    assignTargets(anchors, t.boxes![k]!, s.labels, {
      imageSize: t.imageSizes[k],
      index,
      highThreshold: cfg.loss.fgIouThresh,
      lowThreshold: cfg.loss.bgIouThresh,
      onWarning: (m) => warnings.push(`${source.describe(used[k]!)}: ${m}`),
    }),
  );
  return { iter, indices: used, images: t.data, shape: t.shape, targets: packLossTargets(assigned, anchors.length / 4, opts.boxLoss), anchors, warnings, skipped };
}
