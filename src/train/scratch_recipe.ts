/**
 * The automatic recipe for training from scratch on a CPU within a time budget: from the
 * training set's statistics (image sizes, box sizes per class, counts) and the budget, it picks
 * the model (GroupNorm ResNet-18 of width 32 or 64, FPN width), the input size, the anchors,
 * the batch, the learning rate, clipping and augmentation, and says why for each choice.
 *
 * Every rule is a small, stated one; the numbers behind them (step costs, the epochs a width
 * needs) are measurements of this project (docs/results.md, "From scratch: the automatic
 * recipe"). Explicit choices of the caller override any of them (the CLI maps its flags on).
 */
import { RETINANET_ANCHOR_CONFIG } from '../detection/anchors.js';
import { datasetStats } from '../data/stats.js';
import type { DetectionDataset } from '../data/types.js';
import { type RetinaNetConfig, STRIDES, configFor } from '../model/config.js';
import type { TrainRecipe } from './recipe.js';

/** What the automatic recipe needs to know about a training set. */
export interface ScratchDataStats {
  images: number;
  boxes: number;
  classNames: readonly string[];
  boxesPerClass: number[];
  /** Median short and long side (pixels) of the images whose size is known; undefined when none is. */
  shortSide?: number;
  longSide?: number;
  /** Every image has the same size (then padding to 32 gives one batch shape). */
  sameSize: boolean;
  /**
   * Per class: the 10th percentile and the median of box side (sqrt of area) divided by the
   * image's short side; undefined for a class without boxes (or images of unknown size).
   */
  relativeSize: ({ p10: number; p50: number } | undefined)[];
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.floor(q * sorted.length)))]!;
}

function median(xs: readonly number[]): number {
  return quantile([...xs].sort((a, b) => a - b), 0.5);
}

/** The statistics of {@link ScratchDataStats} for a dataset (crowd boxes left out, as training does). */
export function scratchStats(ds: DetectionDataset): ScratchDataStats {
  const C = ds.classNames.length;
  const rel: number[][] = Array.from({ length: C }, () => []);
  const shorts: number[] = [];
  const longs: number[] = [];
  const sizes = new Set<string>();
  const boxesPerClass = new Array<number>(C).fill(0);
  let boxes = 0;
  for (const im of ds.images) {
    const known = im.width !== undefined && im.height !== undefined;
    if (known) {
      shorts.push(Math.min(im.width!, im.height!));
      longs.push(Math.max(im.width!, im.height!));
      sizes.add(`${im.width}x${im.height}`);
    }
    for (let i = 0; i < im.labels.length; i++) {
      if (im.crowd[i]) continue;
      const label = im.labels[i]!;
      if (label < 0 || label >= C) continue;
      boxes++;
      boxesPerClass[label]!++;
      const side = Math.sqrt(Math.max(0, im.boxes[4 * i + 2]! - im.boxes[4 * i]!) * Math.max(0, im.boxes[4 * i + 3]! - im.boxes[4 * i + 1]!));
      if (known && side > 0) rel[label]!.push(side / Math.min(im.width!, im.height!));
    }
  }
  return {
    images: ds.images.length,
    boxes,
    classNames: ds.classNames,
    boxesPerClass,
    shortSide: shorts.length ? median(shorts) : undefined,
    longSide: longs.length ? median(longs) : undefined,
    sameSize: sizes.size === 1 && shorts.length === ds.images.length,
    relativeSize: rel.map((r) => {
      if (r.length === 0) return undefined;
      const s = [...r].sort((a, b) => a - b);
      return { p10: quantile(s, 0.1), p50: quantile(s, 0.5) };
    }),
  };
}

/** Options of {@link scratchRecipe}. */
export interface ScratchRecipeOptions {
  /** Seconds of training the run has (its --time-budget); default 900 (15 minutes). */
  timeBudget?: number;
  /** CPU cores (ONNX Runtime threads) the run uses; default 2. */
  cores?: number;
  /** The input short side, when the caller has chosen it (the rest of the choices follow it). */
  minSize?: number;
  /** The input long-side limit, when the caller has chosen it. */
  maxSize?: number;
}

/** One choice and why it was made. */
export interface ScratchReason {
  /** What was chosen, e.g. 'input: short side 256 px (long side at most 352)'. */
  choice: string;
  /** Why, in one or two sentences. */
  because: string;
}

/** What {@link scratchRecipe} picked. */
export interface ScratchChoice {
  /** The complete model config (classes and names from the data). */
  config: RetinaNetConfig;
  /** The training recipe's fields it sets (the rest are `paperRecipe`'s). */
  recipe: Pick<TrainRecipe, 'batchSize' | 'lr' | 'clipGradNorm' | 'flip' | 'minSizes' | 'padTo'>;
  /** The choices in order, each with its reason. */
  reasons: ScratchReason[];
  /** The estimate behind the choices: training images per second and passes over the data. */
  estimate: { imagesPerSecond: number; epochs: number };
}

/** The candidate models, smallest first: ResNet-18 width, FPN channels. */
export const SCRATCH_MODELS = [
  { name: 'width 32', baseWidth: 32, fpnChannels: 64 },
  { name: 'width 64', baseWidth: 64, fpnChannels: 128 },
] as const;

/**
 * Seconds per training image per megapixel of padded input on 2 cores, per model (index of
 * SCRATCH_MODELS): the BCCD training step of docs/results.md (ResNet-18 width 64, 480x640,
 * 0.95-1.0 s for 2 images on the 2-core EPYC VM of 2026-12-04: 1.6 s/image/MP), times the cost
 * of GroupNorm and of width 32 relative to it measured side by side on one machine (width 64
 * with GroupNorm 1.0-1.2x frozen BatchNorm; width 32 0.4-0.45x width 64). A step costs about
 * the same per pixel from 256 to 640 px. Slower machines (a 2-core VM of 2026-12-03 was 4x
 * slower) get proportionally fewer passes; the choice of width only needs the ratio.
 */
export const SCRATCH_STEP_COST = [0.7, 1.7] as const;

/** The smallest box (10th percentile of the class with the smallest boxes) is brought to at least this many pixels. */
export const SMALL_BOX_PIXELS = 32;
/** Input short sides considered, smallest first (multiples of 32). */
export const SCRATCH_MIN_SIZE = 256;
export const SCRATCH_MAX_SIZE = 640;
/** The wider model is chosen only when it still sees each training image at least this often. */
export const WIDE_MODEL_EPOCHS = 60;
export const SCRATCH_BATCH = 4;
export const SCRATCH_LR = 0.01;
export const SCRATCH_CLIP = 5;

const fmt = (x: number, d = 0): string => x.toFixed(d);
const pct = (x: number): string => `${(100 * x).toFixed(x < 0.1 ? 1 : 0)}%`;

/** The default anchor sizes (torchvision's 32..512 per level, 3 octave scales) times 2^shift. */
export function anchorSizes(shift: number): number[][] {
  return [32, 64, 128, 256, 512].map((x) => {
    const b = x * 2 ** shift;
    return [b, Math.trunc(b * 2 ** (1 / 3)), Math.trunc(b * 2 ** (2 / 3))];
  });
}

/**
 * The from-scratch model: ResNet-18 of `model`'s width with GroupNorm in the backbone, FPN and
 * two-conv heads, anchors 2^anchorShift times the defaults, images resized to minSize/maxSize.
 */
export function scratchConfig(
  model: { baseWidth: number; fpnChannels: number },
  classNames: readonly string[],
  size: { minSize: number; maxSize: number; anchorShift?: number },
): RetinaNetConfig {
  return configFor('retinanet_resnet18_fpn_gn', {
    name: 'retinanet_resnet18_fpn_scratch',
    numClasses: Math.max(1, classNames.length),
    classNames: [...classNames],
    backbone: { depth: 18, baseWidth: model.baseWidth, norm: 'group_norm', trainableLayers: 5 },
    fpn: { channels: model.fpnChannels, p6From: 'c5', norm: 'group_norm' },
    head: { convs: 2, groupNorm: true },
    anchors: { sizes: anchorSizes(size.anchorShift ?? 0) },
    transform: { minSize: size.minSize, maxSize: size.maxSize },
  });
}

/**
 * Picks a from-scratch recipe for `ds` within `opts.timeBudget` seconds on `opts.cores` cores.
 * Deterministic: the same data and options give the same choice.
 */
export function scratchRecipe(ds: DetectionDataset, opts: ScratchRecipeOptions = {}): ScratchChoice {
  const budget = opts.timeBudget ?? 900;
  const cores = Math.max(1, opts.cores ?? 2);
  const st = scratchStats(ds);
  const reasons: ScratchReason[] = [];

  // 1. Normalisation.
  reasons.push({
    choice: 'GroupNorm in the backbone, FPN and heads (backbone.norm and fpn.norm group_norm)',
    because:
      'no pretrained weights are given, and frozen BatchNorm with its initial statistics is an identity, so a deep network trains without normalisation; GroupNorm everywhere is how detectors train from random initialisation (He et al., Rethinking ImageNet Pre-training; detectron2 scratch configs)',
  });

  // 2. Input size: the smallest boxes at SMALL_BOX_PIXELS, within [SCRATCH_MIN_SIZE, native].
  const native = st.shortSide;
  let smallest: { cls: number; p10: number } | undefined;
  st.relativeSize.forEach((r, cls) => {
    if (r && (!smallest || r.p10 < smallest.p10)) smallest = { cls, p10: r.p10 };
  });
  const cap = Math.min(SCRATCH_MAX_SIZE, native !== undefined ? Math.max(SCRATCH_MIN_SIZE, Math.round(native / 32) * 32) : SCRATCH_MAX_SIZE);
  let minSize: number;
  let sizeWhy: string;
  if (opts.minSize !== undefined) {
    minSize = opts.minSize;
    sizeWhy = 'given';
  } else if (!smallest) {
    minSize = Math.min(cap, 384);
    sizeWhy = 'image sizes are not in the annotations, so box sizes relative to the image are unknown; 384 px is a middle ground';
  } else {
    const wanted = Math.ceil(SMALL_BOX_PIXELS / smallest.p10 / 32) * 32;
    minSize = Math.min(cap, Math.max(SCRATCH_MIN_SIZE, wanted));
    const name = st.classNames[smallest.cls] ?? `class ${smallest.cls}`;
    const atSize = smallest.p10 * minSize;
    sizeWhy =
      `the smallest tenth of the '${name}' boxes (the class with the smallest) measure ${pct(smallest.p10)} of the image's short side, ${fmt(atSize)} px at ${minSize}` +
      (wanted <= SCRATCH_MIN_SIZE
        ? `: still at least ${SMALL_BOX_PIXELS} px, the smallest anchor, and smaller inputs train faster (cost grows with pixels); ${SCRATCH_MIN_SIZE} px is the floor (details of larger objects)`
        : wanted > cap
          ? `; bringing them to ${SMALL_BOX_PIXELS} px would need ${wanted} px, more than ${native !== undefined && cap < SCRATCH_MAX_SIZE ? 'the images have' : `${SCRATCH_MAX_SIZE}, the largest size that trains enough steps on a CPU`}`
          : `: the smallest size that brings them to ${SMALL_BOX_PIXELS} px, the smallest anchor (cost grows with pixels)`);
  }
  const aspect = st.shortSide !== undefined && st.longSide !== undefined ? st.longSide / st.shortSide : 4 / 3;
  const maxSize = opts.maxSize ?? Math.ceil((minSize * Math.min(Math.max(aspect, 1), 4 / 3)) / 32) * 32;
  reasons.push({
    choice: `input: short side ${minSize} px, long side at most ${maxSize} px`,
    because: opts.minSize !== undefined ? 'given' : `${sizeWhy}; the long side allows a ${opts.maxSize !== undefined ? 'given limit' : '4:3 image at that short side'}`,
  });

  // 3. Anchors: one octave smaller when that covers more of the boxes at this size.
  const coverage = (shift: number): { uncovered: number; checked: number } => {
    const cov = datasetStats(ds, { minSize, maxSize, anchorConfig: { ...RETINANET_ANCHOR_CONFIG, sizes: anchorSizes(shift), strides: [...STRIDES] } }).anchorCoverage;
    return { uncovered: cov?.uncovered ?? 0, checked: cov?.checked ?? 0 };
  };
  let shift = 0;
  const base = coverage(0);
  if (base.checked > 0 && base.uncovered / base.checked > 0.02) {
    const down = coverage(-1);
    if (down.uncovered < base.uncovered * 0.5) shift = -1;
    reasons.push({
      choice: shift === 0 ? 'anchors: torchvision\'s (32-512 px)' : 'anchors: one octave smaller (16-256 px)',
      because:
        `at ${minSize} px, ${pct(base.uncovered / base.checked)} of the boxes have no anchor with IoU >= 0.5 with the default anchors (they only get a low-quality match), ` +
        `${pct(down.uncovered / down.checked)} with anchors one octave smaller` +
        (shift === 0 ? ', not enough better to give up the large anchors' : ''),
    });
  } else {
    reasons.push({
      choice: 'anchors: torchvision\'s (32-512 px)',
      because: base.checked > 0 ? `at ${minSize} px they cover ${pct(1 - base.uncovered / Math.max(1, base.checked))} of the boxes with IoU >= 0.5` : 'no box sizes to check them against',
    });
  }

  // 4. Model width from the passes over the data each would get in the budget.
  const padded = (st.sameSize ? Math.ceil(minSize / 32) * 32 * Math.ceil(Math.min(maxSize, minSize * aspect) / 32) * 32 : Math.ceil(minSize / 128) * 128 * Math.ceil(Math.min(maxSize, minSize * aspect) / 128) * 128) / 1e6;
  const ips = SCRATCH_STEP_COST.map((c) => cores / 2 / (c * padded));
  const epochs = ips.map((r) => (r * budget) / Math.max(1, st.images));
  const pick = epochs[1]! >= WIDE_MODEL_EPOCHS ? 1 : 0;
  const m = SCRATCH_MODELS[pick];
  reasons.push({
    choice: `model: ResNet-18 ${m.name}, FPN ${m.fpnChannels} channels, two-conv heads`,
    because:
      `in ${fmt(budget / 60, 1)} min on ${cores} core${cores > 1 ? 's' : ''} the width-64 model would see each of the ${st.images} training images about ${fmt(epochs[1]!)} times, the width-32 model ${fmt(epochs[0]!)} times (measured step costs); ` +
      // A rule of thumb, not a tuned threshold: no recorded run compares the two widths at equal time.
      (pick === 1 ? `with ${WIDE_MODEL_EPOCHS} or more passes the wider model is taken (a rule of thumb, not tuned)` : `below ${WIDE_MODEL_EPOCHS} passes the narrower model, which sees the data more often, is taken (a rule of thumb, not tuned)`),
  });

  // 5. Optimisation.
  reasons.push({
    choice: `batch ${SCRATCH_BATCH}, learning rate ${SCRATCH_LR}, gradient norm clipped at ${SCRATCH_CLIP}, warmup a tenth of the run, x0.1 at 2/3 and 8/9`,
    because: 'GroupNorm does not depend on the batch, so a small batch loses nothing and steps often; the rate is a default that reached AP50 0.88-0.89 in 15-minute runs on two small sets (docs/results.md), not tuned per dataset, and clipping stops the rare early blow-up',
  });

  // 6. Augmentation and padding.
  const jitter = [...new Set([0.75, 0.875, 1].map((f) => Math.round((minSize * f) / 32) * 32))].filter((x) => x >= 32);
  const padTo = st.sameSize ? 32 : 128;
  const sizes = jitter.length > 1 ? jitter : undefined;
  reasons.push({
    choice: `augmentation: horizontal flips${sizes ? `, short side drawn from ${sizes.join('/')} px` : ''}; batches padded to multiples of ${padTo}`,
    because:
      'a small training set needs augmentation to generalise' +
      (sizes ? `; scale jitter only downwards (to 3/4 of ${minSize} px) adds no pixels to a step` : '') +
      (st.sameSize
        ? `; the images all have one size, so padding to 32 gives ${sizes ? 'one batch shape per size' : 'a single batch shape'}`
        : `; padding to 128 keeps the number of batch shapes (each a compiled graph) small${sizes ? ', and the smaller sizes mostly fall in the shapes of the largest' : ''}`),
  });

  const config = scratchConfig(m, ds.classNames, { minSize, maxSize, anchorShift: shift });
  return {
    config,
    recipe: { batchSize: SCRATCH_BATCH, lr: SCRATCH_LR, clipGradNorm: SCRATCH_CLIP, flip: true, minSizes: sizes, padTo },
    reasons,
    estimate: { imagesPerSecond: ips[pick]!, epochs: epochs[pick]! },
  };
}
