/**
 * The built-in synthetic dataset as training and validation sources: disjoint, seeded sets of
 * generated images (validation images come from another seed, so they are held out).
 */
import { SYNTHETIC_CLASSES, type SyntheticOptions, generateSynthetic } from './synthetic.js';
import { type SampleSource, memorySource } from './source.js';

export interface SyntheticSplits {
  train: SampleSource;
  val: SampleSource;
}

/** Defaults of the embedded dataset used by `retinanet demo` and `train --data synthetic`. */
export const SYNTHETIC_DEFAULTS = { trainCount: 512, valCount: 100, imageSize: 192, minObjectSize: 8, maxObjectSize: 112 } as const;

export function syntheticSources(opts: { seed?: number; trainCount?: number; valCount?: number; imageSize?: number } & SyntheticOptions = {}): SyntheticSplits {
  const seed = opts.seed ?? 0;
  const common: SyntheticOptions = {
    imageSize: opts.imageSize ?? SYNTHETIC_DEFAULTS.imageSize,
    minObjectSize: opts.minObjectSize ?? SYNTHETIC_DEFAULTS.minObjectSize,
    maxObjectSize: opts.maxObjectSize ?? SYNTHETIC_DEFAULTS.maxObjectSize,
    minObjects: opts.minObjects,
    maxObjects: opts.maxObjects,
  };
  const train = generateSynthetic({ ...common, count: opts.trainCount ?? SYNTHETIC_DEFAULTS.trainCount, seed: seed * 2 + 1 });
  const val = generateSynthetic({ ...common, count: opts.valCount ?? SYNTHETIC_DEFAULTS.valCount, seed: seed * 2 + 2 });
  return { train: memorySource(train, SYNTHETIC_CLASSES), val: memorySource(val, SYNTHETIC_CLASSES) };
}
