/**
 * Learning-rate schedule of the paper / torchvision references: linear warmup from
 * `base * warmupFactor`, then x`gamma` at each step (paper: x0.1 at 2/3 and 8/9 of training).
 */
export interface LrSchedule {
  base: number;
  warmupIters: number;
  warmupFactor: number;
  /** Iterations (0-based) at which the rate is multiplied by `gamma`. */
  steps: readonly number[];
  gamma: number;
}

/** The paper's schedule for a run of `iters` iterations. */
export function paperSchedule(base: number, iters: number, warmupIters = Math.min(500, Math.floor(iters / 10))): LrSchedule {
  return { base, warmupIters, warmupFactor: 0.001, steps: [Math.floor((iters * 2) / 3), Math.floor((iters * 8) / 9)], gamma: 0.1 };
}

/** Learning rate at iteration `iter` (0-based). */
export function learningRate(s: LrSchedule, iter: number): number {
  let lr = s.base;
  for (const step of s.steps) if (iter >= step) lr *= s.gamma;
  if (iter < s.warmupIters) {
    const alpha = iter / s.warmupIters;
    lr *= s.warmupFactor * (1 - alpha) + alpha;
  }
  return lr;
}
