/**
 * What `retinanet bench paper` runs: the paper's tables (Lin et al. 2017, Table 1a-1d and the
 * prior check of sections 3.3 / 5.1) as rows, the presets, and the plan of runs
 * (row x learning rate x seed). Pure data and functions: no training here (paper_worker.ts
 * trains, paper_report.ts writes the tables), so the plan is testable without a model.
 */
import { createHash } from 'node:crypto';
import { InputError } from '../src/core/errors.js';
import { type DeepPartial, type RetinaNetConfig, mergeConfig } from '../src/model/config.js';
import { demoConfig } from '../src/train/demo_config.js';

/** A row's numbers in the paper (COCO minival; ResNet-50-FPN at 600 px unless the table says otherwise). */
export interface PaperNumbers {
  AP: number;
  AP50: number;
  AP75: number;
}

/** How a row handles the classification loss's imbalance. */
export type RowLoss = 'ce' | 'fl' | 'ohem' | 'ohem 1:3';

/** One training configuration: what differs from the FL gamma 2 default. */
export interface RowSpec {
  id: string;
  label: string;
  loss: RowLoss;
  gamma: number;
  /** alpha of the alpha-balanced loss (< 0: none). */
  alpha: number;
  /** Anchors per location as the paper's #sc x #ar (default 3 x 3). */
  scales: number;
  ratios: number;
  /** Prior probability of the classifier's bias init (default 0.01; 0.5 is bias 0). */
  prior: number;
  /** Gradient norm clipping at the preset's value (default true). */
  clip: boolean;
  /**
   * OHEM: examples per image, NMS threshold, the boxes the NMS compares (default the anchors,
   * OHEM's RoIs; 'predicted' is our diagnostic row); `loss` says whether with the 1:3 ratio.
   */
  ohem?: { batch: number; nms: number; boxes?: 'anchors' | 'predicted' };
}

/** A table: its rows with the paper's numbers. */
export interface TableSpec {
  id: string;
  title: string;
  /** The paper's setting for the table. */
  paperSetting: string;
  rows: { row: string; paper?: PaperNumbers; paperNote?: string }[];
}

function row(id: string, label: string, over: Partial<RowSpec>): RowSpec {
  return { id, label, loss: 'fl', gamma: 2, alpha: 0.25, scales: 3, ratios: 3, prior: 0.01, clip: true, ...over };
}

/**
 * Every row, in the order runs are scheduled (the CE baseline and FL gamma 2 first: the fixed
 * learning rate comes from the first, Figure 4 from the second).
 */
export const ROWS: readonly RowSpec[] = [
  row('ce-a0.5', 'CE, alpha .5', { loss: 'ce', gamma: 0, alpha: 0.5 }),
  row('fl-g2-a0.25', 'FL, gamma 2, alpha .25', {}),
  row('ce-a0.75', 'CE, alpha .75', { loss: 'ce', gamma: 0, alpha: 0.75 }),
  row('ce-a0.9', 'CE, alpha .9', { loss: 'ce', gamma: 0, alpha: 0.9 }),
  row('ce-a0.99', 'CE, alpha .99', { loss: 'ce', gamma: 0, alpha: 0.99 }),
  row('ce-a0.999', 'CE, alpha .999', { loss: 'ce', gamma: 0, alpha: 0.999 }),
  row('fl-g0.1-a0.75', 'FL, gamma .1, alpha .75', { gamma: 0.1, alpha: 0.75 }),
  row('fl-g0.2-a0.75', 'FL, gamma .2, alpha .75', { gamma: 0.2, alpha: 0.75 }),
  row('fl-g0.5-a0.5', 'FL, gamma .5, alpha .5', { gamma: 0.5, alpha: 0.5 }),
  row('fl-g1-a0.25', 'FL, gamma 1, alpha .25', { gamma: 1, alpha: 0.25 }),
  row('fl-g5-a0.25', 'FL, gamma 5, alpha .25', { gamma: 5, alpha: 0.25 }),
  // OHEM trains with CE (alpha .5, as the CE baseline: the selection is the only change).
  row('ohem-b128-nms0.7', 'OHEM, B 128, nms .7', { loss: 'ohem', gamma: 0, alpha: 0.5, ohem: { batch: 128, nms: 0.7 } }),
  row('ohem-b512-nms0.7', 'OHEM, B 512, nms .7', { loss: 'ohem', gamma: 0, alpha: 0.5, ohem: { batch: 512, nms: 0.7 } }),
  // Not the paper's: NMS over the predicted boxes instead of the anchors (see src/train/ohem.ts).
  row('ohem-b128-nms0.7-pred', 'OHEM, B 128, nms .7 over predicted boxes', { loss: 'ohem', gamma: 0, alpha: 0.5, ohem: { batch: 128, nms: 0.7, boxes: 'predicted' } }),
  row('ohem13-b128-nms0.5', 'OHEM 1:3, B 128, nms .5', { loss: 'ohem 1:3', gamma: 0, alpha: 0.5, ohem: { batch: 128, nms: 0.5 } }),
  row('ohem13-b512-nms0.5', 'OHEM 1:3, B 512, nms .5', { loss: 'ohem 1:3', gamma: 0, alpha: 0.5, ohem: { batch: 512, nms: 0.5 } }),
  row('anchors-1x1', 'FL, 1 scale x 1 ratio', { scales: 1, ratios: 1 }),
  row('anchors-2x1', 'FL, 2 scales x 1 ratio', { scales: 2, ratios: 1 }),
  row('anchors-1x3', 'FL, 1 scale x 3 ratios', { scales: 1, ratios: 3 }),
  row('prior-ce-pi0.5', 'CE, alpha .5, no prior (pi .5)', { loss: 'ce', gamma: 0, alpha: 0.5, prior: 0.5 }),
  row('prior-ce-pi0.5-noclip', 'CE, alpha .5, no prior, no clipping', { loss: 'ce', gamma: 0, alpha: 0.5, prior: 0.5, clip: false }),
  row('prior-ce-noclip', 'CE, alpha .5, prior .01, no clipping', { loss: 'ce', gamma: 0, alpha: 0.5, clip: false }),
  row('prior-fl-pi0.5', 'FL, gamma 2, alpha .25, no prior (pi .5)', { prior: 0.5 }),
];

/** The CE baseline whose best learning rate is the "one rate for all rows". */
export const BASELINE_ROW = 'ce-a0.5';
/** The converged model of Figure 4 (the paper's: trained with gamma 2). */
export const FIGURE4_ROW = 'fl-g2-a0.25';
/** Figure 4's gammas. */
export const FIGURE4_GAMMAS = [0, 0.5, 1, 2] as const;

const P = (AP: number, AP50: number, AP75: number): PaperNumbers => ({ AP, AP50, AP75 });

/** The paper's tables as this benchmark reproduces them (numbers: Table 1 of arXiv 1708.02002v2). */
export const TABLES: readonly TableSpec[] = [
  {
    id: '1a',
    title: 'Table 1a: varying alpha for CE loss (gamma = 0)',
    paperSetting: 'ResNet-50-FPN, 600 px; the paper also lists alpha .10 (0.0 AP) and .25 (10.8)',
    rows: [
      { row: 'ce-a0.5', paper: P(30.2, 46.7, 32.8) },
      { row: 'ce-a0.75', paper: P(31.1, 49.4, 33.0) },
      { row: 'ce-a0.9', paper: P(30.8, 49.7, 32.3) },
      { row: 'ce-a0.99', paper: P(28.7, 47.4, 29.9) },
      { row: 'ce-a0.999', paper: P(25.1, 41.7, 26.1) },
    ],
  },
  {
    id: '1b',
    title: 'Table 1b: varying gamma for FL (with the paper\'s best alpha for each gamma)',
    paperSetting: 'ResNet-50-FPN, 600 px',
    rows: [
      { row: 'ce-a0.75', paper: P(31.1, 49.4, 33.0), paperNote: 'gamma 0' },
      { row: 'fl-g0.1-a0.75', paper: P(31.4, 49.9, 33.1) },
      { row: 'fl-g0.2-a0.75', paper: P(31.9, 50.7, 33.4) },
      { row: 'fl-g0.5-a0.5', paper: P(32.9, 51.7, 35.2) },
      { row: 'fl-g1-a0.25', paper: P(33.7, 52.0, 36.2) },
      { row: 'fl-g2-a0.25', paper: P(34.0, 52.5, 36.5) },
      { row: 'fl-g5-a0.25', paper: P(32.2, 49.6, 34.8) },
    ],
  },
  {
    id: '1c',
    title: 'Table 1c (in part): anchor scales x aspect ratios',
    paperSetting: 'ResNet-50-FPN, 600 px, FL gamma 2; the paper also lists 3x1 (31.8), 2x3 (34.2), 4x3 (33.8)',
    rows: [
      { row: 'anchors-1x1', paper: P(30.3, 49.0, 31.8) },
      { row: 'anchors-2x1', paper: P(31.9, 50.0, 34.0) },
      { row: 'anchors-1x3', paper: P(32.4, 52.3, 33.9) },
      { row: 'fl-g2-a0.25', paper: P(34.0, 52.5, 36.5), paperNote: '3 scales x 3 ratios' },
    ],
  },
  {
    id: '1d',
    title: 'Table 1d: FL vs. OHEM',
    paperSetting: 'ResNet-101-FPN, 600 px; the paper also lists B 256 and OHEM nms .5 (best: B 128, 32.8 AP)',
    rows: [
      { row: 'ohem-b128-nms0.7', paper: P(31.1, 47.2, 33.2) },
      { row: 'ohem-b512-nms0.7', paper: P(30.6, 47.0, 32.6) },
      { row: 'ohem-b128-nms0.7-pred', paperNote: 'ours only: NMS over predicted boxes' },
      { row: 'ohem13-b128-nms0.5', paper: P(31.1, 47.2, 33.2) },
      { row: 'ohem13-b512-nms0.5', paper: P(24.0, 35.5, 25.8) },
      { row: 'fl-g2-a0.25', paper: P(36.0, 54.9, 38.7) },
    ],
  },
  {
    id: 'prior',
    title: 'Prior initialisation (sections 3.3, 4.1, 5.1)',
    paperSetting: 'CE without the prior "fails quickly, with the network diverging"; with pi = .01, 30.2 AP',
    rows: [
      { row: 'ce-a0.5', paper: P(30.2, 46.7, 32.8) },
      { row: 'prior-ce-pi0.5', paperNote: 'diverges' },
      { row: 'prior-ce-noclip' },
      { row: 'prior-ce-pi0.5-noclip', paperNote: 'diverges (the paper does not clip)' },
      { row: 'fl-g2-a0.25', paper: P(34.0, 52.5, 36.5) },
      { row: 'prior-fl-pi0.5' },
    ],
  },
];

export const TABLE_IDS = TABLES.map((t) => t.id);

/** The synthetic set of a preset (src/data/synthetic.ts options; see docs/paper.md). */
export interface DataSpec {
  imageSize: number;
  train: number;
  val: number;
  test: number;
  minObjects: number;
  maxObjects: number;
  minObjectSize: number;
  maxObjectSize: number;
  minDistractors: number;
  maxDistractors: number;
  /** Seed of the data (fixed across the runs' seeds: a seed changes the init and the batch order). */
  seed: number;
}

export interface Preset {
  name: string;
  /** What the preset is for and how long it takes (shown by --list and in the report). */
  about: string;
  data: DataSpec;
  /** Backbone base width and FPN / head channels of the demo RetinaNet (ResNet-18, GroupNorm heads). */
  width: number;
  channels: number;
  batch: number;
  iters: number;
  /**
   * The learning-rate grid (the rate for batch `batch`). The CE baseline runs all of it and the
   * best val AP sets the one rate of every other row; with `tunePerRow` every row runs all of it.
   */
  lrs: number[];
  tunePerRow: boolean;
  seeds: number;
  /** Gradient norm clipping of the rows that clip. */
  clip: number;
  /** Rows run by default (all when undefined). */
  rows?: string[];
  /** Test images whose anchors make the loss distributions (Figure 4). */
  distImages: number;
  /**
   * CPU seconds of one run at 1 thread, for --list: `fixed` (graph compile, evaluation of val and
   * test) plus `perIter` per iteration (measured on the 2-core VM: docs/paper.md).
   */
  cpuSeconds: { fixed: number; perIter: number };
}

const DATA: DataSpec = {
  imageSize: 384,
  train: 800,
  val: 100,
  test: 200,
  minObjects: 1,
  maxObjects: 3,
  minObjectSize: 8,
  maxObjectSize: 128,
  minDistractors: 2,
  maxDistractors: 6,
  seed: 0,
};

export const PRESETS: Record<string, Preset> = {
  smoke: {
    name: 'smoke',
    about: 'the pipeline end to end on tiny data (a few rows, 4 steps each): a test of the bench, not a result',
    data: { ...DATA, imageSize: 128, train: 8, val: 4, test: 4, maxObjectSize: 48 },
    width: 16,
    channels: 32,
    batch: 2,
    iters: 4,
    lrs: [0.01, 0.02],
    tunePerRow: false,
    seeds: 1,
    clip: 5,
    rows: ['ce-a0.5', 'fl-g2-a0.25', 'ohem13-b128-nms0.5', 'anchors-1x1', 'prior-ce-pi0.5'],
    distImages: 2,
    cpuSeconds: { fixed: 2, perIter: 0.05 },
  },
  mini: {
    name: 'mini',
    about: 'every row once, 3 learning rates, 1 seed, 1500 iterations: about 2 hours on a quiet 2-core machine with --jobs 2',
    data: DATA,
    width: 16,
    channels: 32,
    batch: 4,
    // 600 iterations (the first measured run, docs/paper.md) left most rows at the edge of
    // learning (a seed took off or stayed near 0 AP); at 1500, CE alpha .75 and FL gamma 2 reached
    // 35 and 44 AP.
    iters: 1500,
    lrs: [0.005, 0.01, 0.02],
    tunePerRow: false,
    seeds: 1,
    clip: 5,
    distImages: 50,
    // Measured 2026-12-04, quiet 2-core VM, --jobs 2 --threads 1: 0.31-0.48 s per iteration (median
    // 0.355), 11-27 s per run outside training; 24 runs of 600 iterations in 48 min.
    cpuSeconds: { fixed: 13, perIter: 0.36 },
  },
  full: {
    name: 'full',
    about: 'every row, 4 learning rates, 3 seeds, 3x longer, 2.5x the training images: for a 16-core machine (--jobs 8 --threads 2)',
    data: { ...DATA, train: 2000, val: 200, test: 500 },
    width: 16,
    channels: 32,
    batch: 4,
    iters: 1800,
    lrs: [0.005, 0.01, 0.02, 0.04],
    tunePerRow: true,
    seeds: 3,
    clip: 5,
    distImages: 100,
    cpuSeconds: { fixed: 30, perIter: 0.53 },
  },
};

export function rowById(id: string): RowSpec {
  const r = ROWS.find((x) => x.id === id);
  if (!r) throw new InputError(`unknown row '${id}'; rows: ${ROWS.map((x) => x.id).join(', ')}`);
  return r;
}

/** The octave-spaced anchor sizes of the demo model (16-256 px on P3-P7), the paper's 32-512 one octave down for small objects. */
export const BASE_ANCHOR_SIZES = [16, 32, 64, 128, 256] as const;

/**
 * Anchors of `scales` x `ratios` per location as in the paper's Table 1c: scales 2^(k / scales)
 * for k < scales (sizes truncated, as torchvision's int()), aspect ratios {1} or {1:2, 1:1, 2:1}.
 */
export function anchorLayout(scales: number, ratios: number): { sizes: number[][]; aspectRatios: number[][] } {
  if (![1, 2, 3, 4].includes(scales) || ![1, 3].includes(ratios)) throw new InputError(`anchors: ${scales} scales x ${ratios} ratios is not a layout of Table 1c`);
  const sizes = BASE_ANCHOR_SIZES.map((x) => Array.from({ length: scales }, (_, k) => Math.trunc(x * 2 ** (k / scales))));
  const ar = ratios === 1 ? [1.0] : [0.5, 1.0, 2.0];
  return { sizes, aspectRatios: BASE_ANCHOR_SIZES.map(() => [...ar]) };
}

/** The model of a row in a preset: the demo RetinaNet at the preset's width and image size. */
export function rowConfig(preset: Preset, r: RowSpec): RetinaNetConfig {
  const patch: DeepPartial<RetinaNetConfig> = {
    name: `retinanet_resnet18_fpn_paper_w${preset.width}`,
    backbone: { baseWidth: preset.width },
    fpn: { channels: preset.channels },
    head: { priorProbability: r.prior },
    anchors: anchorLayout(r.scales, r.ratios),
    loss: { classification: 'focal', gamma: r.gamma, alpha: r.alpha },
  };
  return mergeConfig(demoConfig(preset.data.imageSize), patch);
}

/** One run: a row at one learning rate and one seed. */
export interface RunSpec {
  key: string;
  row: string;
  lr: number;
  seed: number;
}

export function runKey(row: string, lr: number, seed: number): string {
  return `${row}@lr${lr}@s${seed}`;
}

/** The resolved plan: a preset with the caller's overrides, and which rows and seeds run. */
export interface Plan {
  preset: Preset;
  rows: string[];
  seeds: number[];
  /** Hash of everything that changes a run's result (not which rows, rates or seeds are chosen). */
  hash: string;
}

export interface PlanOptions {
  preset?: string;
  seeds?: number;
  seed?: number;
  tables?: string[];
  rows?: string[];
  lrs?: number[];
  iters?: number;
  tunePerRow?: boolean;
}

/** Resolves a preset and the caller's choices into a plan (InputError on unknown names). */
export function makePlan(o: PlanOptions): Plan {
  const base = PRESETS[o.preset ?? 'mini'];
  if (!base || !Object.hasOwn(PRESETS, o.preset ?? 'mini')) throw new InputError(`unknown preset '${o.preset}'; presets: ${Object.keys(PRESETS).join(', ')}`);
  const preset: Preset = { ...base, lrs: o.lrs ?? base.lrs, iters: o.iters ?? base.iters, seeds: o.seeds ?? base.seeds, tunePerRow: o.tunePerRow ?? base.tunePerRow };
  for (const t of o.tables ?? []) if (!TABLE_IDS.includes(t)) throw new InputError(`unknown table '${t}'; tables: ${TABLE_IDS.join(', ')}`);
  for (const r of o.rows ?? []) rowById(r);
  let rows = preset.rows ?? ROWS.map((r) => r.id);
  if (o.tables) {
    const wanted = new Set(TABLES.filter((t) => o.tables!.includes(t.id)).flatMap((t) => t.rows.map((x) => x.row)));
    // The CE baseline sets the fixed learning rate of every table.
    wanted.add(BASELINE_ROW);
    rows = ROWS.map((r) => r.id).filter((id) => wanted.has(id));
  }
  if (o.rows) rows = ROWS.map((r) => r.id).filter((id) => o.rows!.includes(id));
  const first = o.seed ?? 0;
  const seeds = Array.from({ length: preset.seeds }, (_, k) => first + k);
  // Which rows, rates and seeds run does not change any one run's result: a plan may grow.
  const { name: _n, about: _a, rows: _r, seeds: _s, cpuSeconds: _t, lrs: _l, tunePerRow: _p, ...affecting } = preset;
  const hash = createHash('sha256').update(JSON.stringify(affecting)).digest('hex').slice(0, 12);
  return { preset, rows, seeds, hash };
}

/** The runs of a plan, in schedule order: seed by seed, rows in ROWS order, rates in grid order. */
export function planRuns(plan: Plan): RunSpec[] {
  const out: RunSpec[] = [];
  for (const seed of plan.seeds) for (const row of plan.rows) for (const lr of plan.preset.lrs) out.push({ key: runKey(row, lr, seed), row, lr, seed });
  return out;
}
