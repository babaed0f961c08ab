/**
 * Memory of a training run, estimated before it starts and bounded while it runs. A training
 * step's memory is dominated by the activations the backward pass keeps; it is estimated from
 * the training graph (engine/memory.ts: graph-order liveness) times a factor measured against
 * ONNX Runtime's actual use (its kernels' workspaces, fused copies and arena rounding). The
 * compiled sessions the trainer keeps, one per padded batch shape, are evicted by these
 * estimates so that together they stay within the budget.
 */
import { InputError } from '../core/errors.js';
import { Graph, type Tensor } from '../engine/graph.js';
import { grad } from '../engine/autodiff.js';
import { estimateMemory, sessionBytes } from '../engine/memory.js';
import { lossTargetInputs, retinanetLoss } from '../detection/losses.js';
import type { RetinaNet } from '../model/model.js';
import { anchorsFor } from '../model/anchors.js';
import { buildRetinaNet } from '../model/retinanet.js';

export { defaultMaxMemory } from '../model/model.js';

const estimates = new WeakMap<RetinaNet, Map<string, number>>();

/** Estimated bytes a compiled training session for a batch of n images of h x w pixels holds. */
export function trainSessionBytes(model: RetinaNet, n: number, h: number, w: number): number {
  let byShape = estimates.get(model);
  if (!byShape) estimates.set(model, (byShape = new Map()));
  const key = `${n}x${h}x${w}`;
  const known = byShape.get(key);
  if (known !== undefined) return known;
  const cfg = model.config;
  const g = new Graph();
  const out = buildRetinaNet(g, model.store, g.input('images', 'float32', [n, 3, h, w]), cfg);
  const targets = lossTargetInputs(g, n, anchorsFor(cfg, h, w).all.length / 4, cfg.loss.box);
  const loss = retinanetLoss(out.clsLogits, out.boxDeltas, targets, { classification: cfg.loss.classification, alpha: cfg.loss.alpha, gamma: cfg.loss.gamma, box: cfg.loss.box });
  const names = model.store.trainableNames();
  const grads = grad(loss.total, names.map((nm) => g.inputs.get(nm)!) as Tensor[]);
  const e = estimateMemory(g, [loss.classification, loss.box, ...grads], new Set(model.store.frozenValues().keys()));
  const bytes = sessionBytes(e);
  byShape.set(key, bytes);
  return bytes;
}

/** The largest padded batch a recipe can produce: short side at the largest min size, long side at the max size. */
export function largestBatchShape(model: RetinaNet, batch: number, padTo: number, minSizes?: readonly number[]): [number, number, number] {
  const t = model.config.transform;
  const short = Math.min(Math.max(t.minSize, ...(minSizes ?? [])), t.maxSize);
  const up = (x: number): number => Math.ceil(x / padTo) * padTo;
  return [batch, up(short), up(t.maxSize)];
}

/** A run whose step cannot fit the memory budget; the numbers say by how much. */
export class MemoryBudgetError extends InputError {
  override name = 'MemoryBudgetError';
  constructor(
    readonly needBytes: number,
    readonly budgetBytes: number,
    readonly shape: readonly [number, number, number],
  ) {
    super(
      `a training step on ${shape[0]} image(s) of ${shape[1]}x${shape[2]} needs about ${gib(needBytes)} GiB, over the ${gib(budgetBytes)} GiB memory budget: use a smaller batch, smaller images (minSize/maxSize), or a larger budget`,
    );
  }
}

export function gib(bytes: number): string {
  return (bytes / 2 ** 30).toFixed(1);
}

/**
 * Bytes left for compiled training sessions under `maxMemory`, after what the process already
 * holds and what the run adds besides sessions (momentum and gradients: two copies of the
 * trainable parameters); throws MemoryBudgetError when the largest step cannot fit.
 */
export function sessionBudget(model: RetinaNet, maxMemory: number, largest: [number, number, number]): number {
  const trainable = 4 * model.store.count(true);
  const fixed = process.memoryUsage().rss + 2 * trainable;
  const need = trainSessionBytes(model, ...largest);
  if (fixed + need > maxMemory) throw new MemoryBudgetError(fixed + need, maxMemory, largest);
  return maxMemory - fixed;
}
