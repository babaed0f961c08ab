/**
 * Training recipes: every choice of a run that is not the model or the data. `paperRecipe` is
 * the paper's (section 4.1 / 5.1), scaled to the batch: SGD with momentum 0.9 and weight decay
 * 1e-4, learning rate 0.01 for 16 images per batch (linear scaling), a linear warmup, x0.1 at 2/3
 * and 8/9 of the run, horizontal flips. The CLI, the demo and library callers all start from it.
 */

export interface TrainRecipe {
  /** Images per step. */
  batchSize: number;
  /** Base learning rate. */
  lr: number;
  momentum: number;
  weightDecay: number;
  /** Linear warmup length in iterations; default min(500, iters / 10). */
  warmupIters?: number;
  /** Iterations where the rate drops x0.1; default 2/3 and 8/9 of the run. */
  steps?: number[];
  /** Clip the global gradient norm to this value. */
  clipGradNorm?: number;
  /** Horizontal flip augmentation (p = 0.5). */
  flip: boolean;
  /** Scale jitter: short sides to choose from per batch (default: the config's minSize). */
  minSizes?: number[];
  /** Training batches are padded to multiples of this (bounds the number of compiled graph shapes). */
  padTo: number;
}

/** The paper's minibatch and learning rate, the reference of the linear scaling rule. */
export const PAPER_BATCH = 16;
export const PAPER_LR = 0.01;

/**
 * The paper's recipe for a batch of `batch` images (default 2, a CPU-sized batch), with any
 * field overridden. Padding to multiples of 128 keeps the number of distinct batch shapes, and
 * so of compiled training graphs, small; torchvision pads to 32.
 */
export function paperRecipe(o: Partial<TrainRecipe> & { batch?: number } = {}): TrainRecipe {
  const { batch, ...over } = o;
  const batchSize = over.batchSize ?? batch ?? 2;
  const defined = Object.fromEntries(Object.entries(over).filter(([, v]) => v !== undefined)) as Partial<TrainRecipe>;
  return {
    batchSize,
    lr: PAPER_LR * (batchSize / PAPER_BATCH),
    momentum: 0.9,
    weightDecay: 1e-4,
    flip: true,
    padTo: 128,
    ...defined,
  };
}
