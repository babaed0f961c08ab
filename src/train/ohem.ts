/**
 * OHEM as a training hook: before each step a forward pass scores every anchor of the batch by
 * its classification loss, `selectHardExamples` (detection/ohem.ts) picks each image's hard
 * examples, and the batch's `valid` weights are set to the selection, so the step's
 * classification loss sums over the chosen anchors only. The box loss, the normalisation (per
 * image by its foreground anchors) and the graph are those of every other run.
 */
import { BoxCoder } from '../detection/box_coder.js';
import { type HardExampleOptions, selectHardExamples } from '../detection/ohem.js';
import type { PreparedBatch } from './batches.js';
import type { TrainHook, Trainer } from './trainer.js';

export interface OhemOptions extends HardExampleOptions {
  /** The classification loss that scores the examples: alpha (< 0: none) and gamma, as the run trains with. */
  alpha: number;
  gamma: number;
  /**
   * Boxes the NMS compares: the anchors themselves (default) or each anchor's predicted box.
   * Anchors are a one-stage detector's RoIs, and OHEM (Shrivastava et al.) runs its NMS over
   * the RoIs. Predicted boxes fail in a way worth knowing: the box subnet regresses the
   * *negatives* near an object onto the object too, so a hard negative beside it suppresses
   * every positive of the object, and the step teaches the object's surroundings, object
   * included, to be background (docs/paper.md, Table 1d).
   */
  nmsBoxes?: 'predicted' | 'anchors';
}

/** log(1 + exp(x)) without overflow. */
function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

/**
 * The sigmoid focal loss of one binary example, in float64 (alpha < 0: no weighting; gamma 0:
 * cross-entropy), written as the graph writes it: softplus(-s) * exp(-gamma softplus(s)).
 */
export function focalLossHost(logit: number, target: 0 | 1, alpha: number, gamma: number): number {
  const s = target === 1 ? logit : -logit;
  let loss = softplus(-s);
  if (gamma !== 0) loss *= Math.exp(-gamma * softplus(s));
  if (alpha >= 0) loss *= target === 1 ? alpha : 1 - alpha;
  return loss;
}

/**
 * Per-anchor classification loss of one image: the sum over the K classes of the focal loss of
 * logits [A, K] against the one-hot targets of `labels` (class per anchor, -1 background).
 */
export function anchorLosses(logits: Float32Array, labels: BigInt64Array, k: number, alpha: number, gamma: number): Float64Array {
  const a = labels.length;
  const out = new Float64Array(a);
  for (let i = 0; i < a; i++) {
    const label = Number(labels[i]!);
    let sum = 0;
    for (let c = 0; c < k; c++) sum += focalLossHost(logits[i * k + c]!, c === label ? 1 : 0, alpha, gamma);
    out[i] = sum;
  }
  return out;
}

export class OhemHook implements TrainHook {
  /** Examples chosen over the run so far, positives and negatives, and steps. */
  readonly totals = { positives: 0, negatives: 0, steps: 0 };
  private readonly coder = new BoxCoder();

  constructor(readonly opts: OhemOptions) {}

  async beforeForward(t: Trainer, batch: PreparedBatch): Promise<void> {
    const [n] = batch.shape;
    const numAnchors = batch.anchors.length / 4;
    const k = t.model.config.numClasses;
    // Parameters fed, not baked: they change every step.
    const { clsLogits, boxDeltas } = await t.model.forward(batch.images, batch.shape, t.opts.threads, true);
    const { labels, valid, foreground } = batch.targets;
    for (let b = 0; b < n; b++) {
      const lo = b * numAnchors;
      const hi = lo + numAnchors;
      const losses = anchorLosses(clsLogits.subarray(lo * k, hi * k), labels.subarray(lo, hi), k, this.opts.alpha, this.opts.gamma);
      const boxes = (this.opts.nmsBoxes ?? 'anchors') === 'anchors' ? batch.anchors : this.coder.decode(boxDeltas.subarray(lo * 4, hi * 4), batch.anchors);
      const v = valid.subarray(lo, hi);
      const fg = foreground.subarray(lo, hi);
      const chosen = selectHardExamples(losses, boxes, v, fg, this.opts);
      v.fill(0);
      for (const i of chosen) {
        v[i] = 1;
        if (fg[i]! > 0) this.totals.positives++;
        else this.totals.negatives++;
      }
    }
    this.totals.steps++;
  }
}
