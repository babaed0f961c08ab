/**
 * One run of `retinanet bench paper`: a row of the paper's tables (bench/paper_spec.ts) trained
 * at one learning rate and seed on the written synthetic set, then scored (COCO AP) on its val
 * and test splits; for Figure 4's row, also the loss distributions of the converged model.
 * Runs in the bench's process (`--jobs 1`) or in a child process each (`--jobs J`).
 */
import { loadDataset } from '../src/data/datasets/index.js';
import { type SampleSource, datasetSource } from '../src/data/source.js';
import { transformBatch } from '../src/data/transform.js';
import { assignTargets } from '../src/detection/targets.js';
import type { CocoStats } from '../src/eval/coco.js';
import { anchorsFor } from '../src/model/anchors.js';
import { evaluateModel } from '../src/model/evaluate.js';
import { RetinaNet } from '../src/model/model.js';
import { demoTrainOptions } from '../src/train/demo_config.js';
import { OhemHook, focalLossHost } from '../src/train/ohem.js';
import { Trainer } from '../src/train/trainer.js';
import { annotationsFile } from './paper_data.js';
import { FIGURE4_GAMMAS, FIGURE4_ROW, type Preset, type RunSpec, rowById, rowConfig } from './paper_spec.js';

/** COCO numbers of a split (the six the paper's tables report). */
export type ApStats = Pick<CocoStats, 'AP' | 'AP50' | 'AP75' | 'APs' | 'APm' | 'APl'>;

/**
 * Figure 4's data: for each gamma, the cumulative normalised loss at fractions 0, 1/P, ..., 1
 * of the anchors sorted by increasing loss (P = `points` - 1), over foreground and background.
 */
export interface LossCdf {
  gammas: number[];
  points: number;
  positive: number[][];
  negative: number[][];
  /** Anchors counted: foreground and background (ignored anchors take no part). */
  counts: { positive: number; negative: number };
  images: number;
}

/** What one run leaves (written as JSON under the bench's output folder). */
export interface RunResult extends RunSpec {
  stopped: 'done' | 'interrupted' | 'nan';
  message?: string;
  iterations: number;
  /** Seconds of the whole run (training, evaluation, Figure 4) and of the training alone. */
  wall_s: number;
  train_s: number;
  threads: number;
  /** Mean classification loss over the first and the last 10% of steps (prior check). */
  lossFirst: number;
  lossLast: number;
  val?: ApStats;
  test?: ApStats;
  /** OHEM runs: examples chosen per image and step, on average. */
  ohem?: { positives: number; negatives: number };
  figure4?: LossCdf;
}

function pick(s: CocoStats): ApStats {
  return { AP: s.AP, AP50: s.AP50, AP75: s.AP75, APs: s.APs, APm: s.APm, APl: s.APl };
}

export async function openSplit(dataDir: string, split: 'train' | 'val' | 'test'): Promise<SampleSource> {
  const { dataset } = await loadDataset(annotationsFile(dataDir, split), { checkImages: 'none' });
  return datasetSource(dataset);
}

function meanOf(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

/** Cumulative normalised loss at `points` evenly spaced fractions of `losses` sorted ascending. */
export function lossCdf(losses: Float64Array, points: number): number[] {
  const sorted = Float64Array.from(losses).sort();
  const n = sorted.length;
  const cum = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) cum[i + 1] = cum[i]! + sorted[i]!;
  const total = cum[n]!;
  return Array.from({ length: points }, (_, p) => {
    if (n === 0 || !(total > 0)) return NaN;
    const k = Math.round((p / (points - 1)) * n);
    return cum[k]! / total;
  });
}

/**
 * Figure 4: the model's losses over the anchors of `images` test images, for each gamma (no
 * alpha: the normalisation would cancel it). A foreground anchor's loss is the focal loss of its
 * gt class's logit (target 1); a background anchor's, the sum over classes (all targets 0).
 */
export async function figure4(model: RetinaNet, source: SampleSource, images: number, threads: number, points = 101): Promise<LossCdf> {
  const cfg = model.config;
  const k = cfg.numClasses;
  const t = cfg.transform;
  const logitsPos: number[] = [];
  const logitsNeg: Float32Array[] = [];
  const count = Math.min(images, source.length);
  for (let i = 0; i < count; i++) {
    const s = await source.get(i);
    const batch = transformBatch([s.image], [s.boxes], { minSize: t.minSize, maxSize: t.maxSize, mean: t.mean, std: t.std });
    const [, , h, w] = batch.shape;
    const { clsLogits } = await model.forward(batch.data, batch.shape, threads, true);
    const set = anchorsFor(cfg, h, w);
    const a = assignTargets(set.all, batch.boxes![0]!, s.labels, { imageSize: batch.imageSizes[0], index: set.index(), onWarning: () => undefined });
    a.foreground.forEach((idx, f) => logitsPos.push(clsLogits[idx * k + a.labels[f]!]!));
    for (let j = 0; j < a.matchedIdxs.length; j++) if (a.matchedIdxs[j] === -1) logitsNeg.push(clsLogits.subarray(j * k, (j + 1) * k));
  }
  const positive: number[][] = [];
  const negative: number[][] = [];
  for (const g of FIGURE4_GAMMAS) {
    const lp = Float64Array.from(logitsPos, (x) => focalLossHost(x, 1, -1, g));
    const ln = Float64Array.from(logitsNeg, (row) => {
      let sum = 0;
      for (const x of row) sum += focalLossHost(x, 0, -1, g);
      return sum;
    });
    positive.push(lossCdf(lp, points));
    negative.push(lossCdf(ln, points));
  }
  return { gammas: [...FIGURE4_GAMMAS], points, positive, negative, counts: { positive: logitsPos.length, negative: logitsNeg.length }, images: count };
}

/** Trains and scores one run. Prints nothing. */
export async function runOne(preset: Preset, dataDir: string, run: RunSpec, threads: number): Promise<RunResult> {
  const t0 = performance.now();
  const r = rowById(run.row);
  const model = new RetinaNet(rowConfig(preset, r), run.seed);
  const train = await openSplit(dataDir, 'train');
  const ohem = r.ohem ? new OhemHook({ batchSize: r.ohem.batch, nmsThresh: r.ohem.nms, ratio: r.loss === 'ohem 1:3', nmsBoxes: r.ohem.boxes, alpha: r.alpha, gamma: r.gamma }) : undefined;
  const opts = demoTrainOptions({ iters: preset.iters, batch: preset.batch, lr: run.lr, seed: run.seed, threads, hooks: ohem ? [ohem] : [] });
  opts.clipGradNorm = r.clip ? preset.clip : undefined;
  opts.checkpointEvery = preset.iters + 1;
  const trainer = new Trainer(model, train, opts);
  let result;
  try {
    result = await trainer.run();
  } catch (err) {
    await model.dispose();
    throw err;
  }
  const trainS = (performance.now() - t0) / 1000;
  const cls = result.records.map((x) => x.loss_cls);
  const tenth = Math.max(1, Math.floor(cls.length / 10));
  const out: RunResult = {
    ...run,
    stopped: result.stopped,
    ...(result.message ? { message: result.message } : {}),
    iterations: result.iterations,
    wall_s: 0,
    train_s: trainS,
    threads,
    lossFirst: meanOf(cls.slice(0, tenth)),
    lossLast: meanOf(cls.slice(-tenth)),
  };
  if (ohem && ohem.totals.steps > 0) {
    const perImage = ohem.totals.steps * preset.batch;
    out.ohem = { positives: ohem.totals.positives / perImage, negatives: ohem.totals.negatives / perImage };
  }
  try {
    if (result.stopped === 'done') {
      const val = await openSplit(dataDir, 'val');
      const test = await openSplit(dataDir, 'test');
      // Parameters are fed (not baked into a fresh session per evaluation).
      out.val = pick((await evaluateModel(model, val, { threads, feedParams: true })).result.stats);
      out.test = pick((await evaluateModel(model, test, { threads, feedParams: true })).result.stats);
      if (run.row === FIGURE4_ROW) out.figure4 = await figure4(model, test, preset.distImages, threads);
    }
  } finally {
    await model.dispose();
  }
  out.wall_s = (performance.now() - t0) / 1000;
  return out;
}
