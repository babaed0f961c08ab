/**
 * Figure 4 of the focal loss paper as a diagnostic: the cumulative distribution of the focal
 * loss over positive and negative anchors of a trained model, for several gammas. Computed on
 * the host from the model's raw class logits and the training target assignment (matcher 0.5 /
 * 0.4, ignored anchors left out); the loss of an anchor is the sum over classes of
 * -(1 - p_t)^gamma log(p_t), without alpha, as in the paper.
 */
import { Rng } from '../core/random.js';
import type { SampleSource } from '../data/source.js';
import { transformBatch } from '../data/transform.js';
import { concatLevels } from '../detection/anchors.js';
import { assignTargets } from '../detection/targets.js';
import { gridOf, lineChart, type Series } from '../plot/charts.js';
import type { TopLevelSpec } from '../plot/render.js';
import type { RetinaNet } from './model.js';

/** One cumulative curve: the normalised cumulative loss at evenly spaced fractions of the anchors (sorted by loss, ascending). */
export interface LossCdfCurve {
  gamma: number;
  fraction: Float64Array;
  cumulative: Float64Array;
}

export interface LossCdf {
  gammas: number[];
  positive: LossCdfCurve[];
  negative: LossCdfCurve[];
  /** Images used, positive anchors, and negative anchors (seen; at most `maxNegatives` of them kept). */
  counts: { images: number; positives: number; negatives: number; negativesKept: number };
}

export interface LossCdfOptions {
  /** Sample indices (default all). */
  indices?: readonly number[];
  /** Default [0, 0.5, 1, 2], as the paper. */
  gammas?: readonly number[];
  /** Negative anchors kept (a uniform random sample of them beyond; default 2,000,000). */
  maxNegatives?: number;
  threads?: number;
  /** Points per curve (default 500). */
  points?: number;
  onProgress?: (done: number, total: number) => void;
}

/** log(sigmoid(x)), stable for any x. */
function logSigmoid(x: number): number {
  return x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x));
}

/** The focal-loss distribution of `model`'s anchors on `source`'s images. */
export async function anchorLossCdf(model: RetinaNet, source: SampleSource, opts: LossCdfOptions = {}): Promise<LossCdf> {
  const gammas = [...(opts.gammas ?? [0, 0.5, 1, 2])];
  const G = gammas.length;
  const maxNeg = opts.maxNegatives ?? 2_000_000;
  const indices = opts.indices ?? [...Array(source.length).keys()];
  const cfg = model.config;
  const K = cfg.numClasses;
  const pos: number[][] = gammas.map(() => []);
  const neg: Float32Array[] = gammas.map(() => new Float32Array(Math.min(maxNeg, 1 << 16)));
  let negSeen = 0, negKept = 0;
  const rng = new Rng(0);
  const lossOf = new Float64Array(G);
  let done = 0;
  for (const i of indices) {
    const s = await source.get(i);
    const t = transformBatch([s.image], [s.boxes], { minSize: cfg.transform.minSize, maxSize: cfg.transform.maxSize, mean: cfg.transform.mean, std: cfg.transform.std });
    const { clsLogits, anchors } = await model.forward(t.data, t.shape, opts.threads);
    const all = concatLevels(anchors);
    const assigned = assignTargets(all, t.boxes![0]!, s.labels, { imageSize: t.imageSizes[0], highThreshold: cfg.loss.fgIouThresh, lowThreshold: cfg.loss.bgIouThresh, onWarning: () => {} });
    const labelOfAnchor = new Map<number, number>();
    assigned.foreground.forEach((a, k) => labelOfAnchor.set(a, assigned.labels[k]!));
    const A = all.length / 4;
    for (let a = 0; a < A; a++) {
      const m = assigned.matchedIdxs[a]!;
      if (m === -2) continue; // between the thresholds: ignored by the loss
      const label = m >= 0 ? labelOfAnchor.get(a)! : -1;
      lossOf.fill(0);
      for (let k = 0; k < K; k++) {
        const x = clsLogits[a * K + k]!;
        // log p_t and log(1 - p_t) for target 1 (the anchor's class) or 0.
        const lpt = k === label ? logSigmoid(x) : logSigmoid(-x);
        const l1mpt = k === label ? logSigmoid(-x) : logSigmoid(x);
        for (let g = 0; g < G; g++) lossOf[g]! += -Math.exp(gammas[g]! * l1mpt) * lpt;
      }
      if (label >= 0) {
        for (let g = 0; g < G; g++) pos[g]!.push(lossOf[g]!);
        continue;
      }
      // Reservoir sampling keeps a uniform sample of the negatives.
      let slot = negKept;
      if (negKept >= maxNeg) {
        slot = Math.floor(rng.next() * (negSeen + 1));
        if (slot >= maxNeg) slot = -1;
      } else {
        if (negKept >= neg[0]!.length) for (let g = 0; g < G; g++) neg[g] = growTo(neg[g]!, Math.min(maxNeg, neg[g]!.length * 2));
        negKept++;
      }
      negSeen++;
      if (slot >= 0) for (let g = 0; g < G; g++) neg[g]![slot] = lossOf[g]!;
    }
    opts.onProgress?.(++done, indices.length);
  }
  const points = opts.points ?? 500;
  return {
    gammas,
    positive: gammas.map((gamma, g) => ({ gamma, ...cumulative(Float64Array.from(pos[g]!), points) })),
    negative: gammas.map((gamma, g) => ({ gamma, ...cumulative(Float64Array.from(neg[g]!.subarray(0, negKept)), points) })),
    counts: { images: done, positives: pos[0]!.length, negatives: negSeen, negativesKept: negKept },
  };
}

function growTo(a: Float32Array, n: number): Float32Array {
  const b = new Float32Array(n);
  b.set(a);
  return b;
}

/** Sorted ascending, cumulated and normalised to end at 1, sampled at `points` + 1 fractions 0..1. */
function cumulative(losses: Float64Array, points: number): { fraction: Float64Array; cumulative: Float64Array } {
  losses.sort();
  const n = losses.length;
  const cum = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) cum[i + 1] = cum[i]! + losses[i]!;
  const total = cum[n]! || 1;
  const fraction = Float64Array.from({ length: points + 1 }, (_, j) => j / points);
  return { fraction, cumulative: Float64Array.from(fraction, (f) => (n === 0 ? NaN : cum[Math.round(f * n)]! / total)) };
}

/** The two panels of Figure 4: positive and negative anchors, one line per gamma. */
export function lossCdfSpec(cdf: LossCdf, title = 'Cumulative normalised focal loss (Figure 4 of the paper)'): TopLevelSpec {
  const panel = (curves: LossCdfCurve[], what: string, n: number): TopLevelSpec =>
    lineChart(
      curves.map((c): Series => ({ name: `γ = ${c.gamma}`, x: c.fraction, y: c.cumulative })),
      { title: `${what} (${n.toLocaleString('en-US')} anchors)`, x: { title: `fraction of ${what.toLowerCase()}`, domain: [0, 1] }, y: { title: 'cumulative normalised loss', domain: [0, 1] }, legendTitle: 'gamma', width: 320, height: 260 },
    );
  return gridOf([[panel(cdf.positive, 'Positive anchors', cdf.counts.positives), panel(cdf.negative, 'Negative anchors', cdf.counts.negativesKept)]], title);
}
