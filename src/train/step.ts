/**
 * One training step on a prepared batch: the compiled training graph gives both losses and the
 * gradient of every trainable parameter, the gradients are scaled down to the clipping norm when
 * asked, and SGD updates the parameters in place. The Trainer and the browser's trainer
 * (src/web/trainer.ts) both step through this function.
 */
import type { RetinaNet } from '../model/model.js';
import type { PreparedBatch } from './batches.js';
import type { Sgd } from './sgd.js';
import { type TrainExecutable, globalNorm, trainFeeds } from './train_graph.js';

/** Classification and box loss of one step (scalars, before the update). */
export interface StepLosses {
  classification: number;
  box: number;
}

/**
 * Runs the training graph on `batch`, calls `afterLoss` with the losses (it may throw to stop
 * before the update), then applies SGD at rate `lr` with the gradients clipped to
 * `clipGradNorm` (global L2 norm) when given. Returns the losses.
 */
export async function trainStep(
  model: RetinaNet,
  train: TrainExecutable,
  batch: PreparedBatch,
  sgd: Sgd,
  lr: number,
  clipGradNorm: number | undefined,
  afterLoss?: (losses: StepLosses) => void,
): Promise<StepLosses> {
  const out = (await train.exe.run(trainFeeds(model, batch))) as Float32Array[];
  const losses: StepLosses = { classification: out[0]![0]!, box: out[1]![0]! };
  afterLoss?.(losses);
  const grads = out.slice(2);
  let gradScale = 1;
  if (clipGradNorm !== undefined) {
    const norm = globalNorm(grads);
    if (norm > clipGradNorm) gradScale = clipGradNorm / norm;
  }
  sgd.step(model.store.values, new Map(train.names.map((nm, i) => [nm, grads[i]!])), lr, gradScale);
  return losses;
}
