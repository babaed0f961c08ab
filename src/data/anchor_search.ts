/**
 * Anchors that fit a dataset: a search over the paper's anchor grid — the P3 base size (the
 * levels double from it), scales per octave and an aspect-ratio set — for the configuration that
 * leaves the fewest boxes without an anchor at IoU >= 0.5 after the resize (ties: higher mean
 * best IoU, then fewer anchors per location). Ratio sets are the paper's and sets fitted to the
 * dataset by k-means on log(h / w) (the one-dimensional IoU-free counterpart of mmdetection's
 * k-means anchor optimiser, since RetinaNet shares its ratios across sizes and levels).
 */
import { Rng } from '../core/random.js';
import { type AnchorConfig, makeAnchorConfig, RETINANET_ANCHOR_CONFIG } from '../detection/anchors.js';
import { type AnchorCoverage, type ImageBoxes, anchorCoverageOf } from './stats.js';

export interface AnchorCandidate {
  /** Anchor size of P3; level l has baseSize * 2^l. */
  baseSize: number;
  /** Size multipliers within a level (2^(i/n)). */
  scales: number[];
  aspectRatios: number[];
  config: AnchorConfig;
  coverage: AnchorCoverage;
}

export interface AnchorSearchOptions {
  minSize?: number;
  maxSize?: number;
  /** The configuration to compare with (default RetinaNet's). */
  current?: AnchorConfig;
  /** Most anchors per location a candidate may have (default 9, the paper's). */
  maxAnchorsPerLocation?: number;
  /** Boxes used for the search (a seeded sample beyond; default 20,000). The final coverage uses every box. */
  maxBoxes?: number;
  numClasses?: number;
}

export interface AnchorSearchResult {
  before: AnchorCoverage;
  best: AnchorCandidate;
  /** Every candidate tried, best first. */
  tried: AnchorCandidate[];
}

/** k-means in one dimension (values sorted, initialised at quantiles); returns k sorted centres. */
export function kmeans1d(values: readonly number[], k: number, iters = 50): number[] {
  const v = [...values].sort((a, b) => a - b);
  if (v.length === 0) return [];
  let c = Array.from({ length: k }, (_, i) => v[Math.min(v.length - 1, Math.floor(((i + 0.5) / k) * v.length))]!);
  for (let it = 0; it < iters; it++) {
    const sum = new Array<number>(k).fill(0), n = new Array<number>(k).fill(0);
    for (const x of v) {
      let best = 0;
      for (let j = 1; j < k; j++) if (Math.abs(x - c[j]!) < Math.abs(x - c[best]!)) best = j;
      sum[best]! += x;
      n[best]!++;
    }
    const next = c.map((old, j) => (n[j]! > 0 ? sum[j]! / n[j]! : old));
    if (next.every((x, j) => Math.abs(x - c[j]!) < 1e-9)) break;
    c = next;
  }
  return c.sort((a, b) => a - b);
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

/** Candidate ratio sets: the paper's, its extremes widened, and k-means fits of the boxes' log(h/w) with k = 1..5. */
function ratioSets(images: readonly ImageBoxes[]): number[][] {
  const logs: number[] = [];
  for (const im of images) {
    for (let i = 0; i < im.labels.length; i++) {
      const w = im.boxes[4 * i + 2]! - im.boxes[4 * i]!, h = im.boxes[4 * i + 3]! - im.boxes[4 * i + 1]!;
      if (w > 0 && h > 0 && !im.crowd?.[i]) logs.push(Math.log2(h / w));
    }
  }
  const sets: number[][] = [[1], [0.5, 1, 2], [1 / 3, 1, 3], [0.25, 0.5, 1, 2, 4]];
  for (let k = 1; k <= 5; k++) sets.push(kmeans1d(logs, k).map((l) => round2(2 ** l)));
  const seen = new Set<string>();
  return sets.map((s) => [...new Set(s)].sort((a, b) => a - b)).filter((s) => {
    const key = s.join(',');
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function better(a: AnchorCoverage, b: AnchorCoverage): number {
  const ua = a.uncovered / Math.max(1, a.checked), ub = b.uncovered / Math.max(1, b.checked);
  if (ua !== ub) return ua - ub;
  return b.meanBestIou - a.meanBestIou;
}

/** Samples images until about `maxBoxes` boxes are kept (seeded, so runs repeat). */
function sampleImages(images: readonly ImageBoxes[], maxBoxes: number): ImageBoxes[] {
  const total = images.reduce((s, im) => s + im.labels.length, 0);
  if (total <= maxBoxes) return [...images];
  const rng = new Rng(0);
  const keep = maxBoxes / total;
  return images.filter(() => rng.next() < keep);
}

/** Searches the anchor grid for `images` (boxes in original pixels; see the module comment). */
export function optimizeAnchors(images: readonly ImageBoxes[], opts: AnchorSearchOptions = {}): AnchorSearchResult {
  const numClasses = opts.numClasses ?? 1 + images.reduce((m, im) => Math.max(m, ...im.labels), 0);
  const stats = { minSize: opts.minSize, maxSize: opts.maxSize };
  const current = opts.current ?? RETINANET_ANCHOR_CONFIG;
  const maxA = opts.maxAnchorsPerLocation ?? 9;
  const sample = sampleImages(images, opts.maxBoxes ?? 20_000);
  const tried: AnchorCandidate[] = [];
  for (const baseSize of [8, 12, 16, 20, 24, 28, 32, 40, 48, 64]) {
    for (const n of [1, 2, 3, 4]) {
      const scales = Array.from({ length: n }, (_, i) => 2 ** (i / n));
      for (const aspectRatios of ratioSets(sample)) {
        if (scales.length * aspectRatios.length > maxA) continue;
        const config = makeAnchorConfig({ baseSizes: [0, 1, 2, 3, 4].map((l) => baseSize * 2 ** l), scales, aspectRatios });
        tried.push({ baseSize, scales, aspectRatios, config, coverage: anchorCoverageOf(sample, numClasses, { ...stats, anchorConfig: config }) });
      }
    }
  }
  tried.sort((a, b) => better(a.coverage, b.coverage) || a.scales.length * a.aspectRatios.length - b.scales.length * b.aspectRatios.length);
  const best = tried[0]!;
  // The numbers shown are over every box, not the sample.
  best.coverage = anchorCoverageOf(images, numClasses, { ...stats, anchorConfig: best.config });
  return { before: anchorCoverageOf(images, numClasses, { ...stats, anchorConfig: current }), best, tried };
}

/** The `anchors` entry of a `--config` JSON for a configuration. */
export function anchorConfigJson(c: AnchorConfig): { anchors: { sizes: number[][]; aspectRatios: number[][] } } {
  return { anchors: { sizes: c.sizes.map((s) => [...s]), aspectRatios: c.aspectRatios.map((r) => [...r]) } };
}
