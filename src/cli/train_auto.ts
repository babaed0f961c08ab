/**
 * `retinanet train` without weights, config or architecture: the automatic from-scratch recipe
 * (src/train/scratch_recipe.ts) picks the model and the recipe from the training set and the
 * time budget; every explicit flag overrides the choice it stands for. The choice is printed,
 * each line with its reason, and saved as the flags it stands for (the model as a config file in
 * the run folder), so `--resume` rebuilds exactly the same run.
 */
import path from 'node:path';
import { writeFileSync, mkdirSync } from 'node:fs';
import { UserError } from './command.js';
import { intListFlag, numberFlag, stringFlag } from './common.js';
import type { FlagValues } from '../core/flags.js';
import type { DetectionDataset } from '../data/types.js';
import type { RetinaNetConfig } from '../model/config.js';
import { scratchRecipe } from '../train/scratch_recipe.js';

type Values = FlagValues;

/** parseArgs definition of the flag choosing between the automatic recipe and the paper's. */
export const RECIPE_FLAG = { recipe: { type: 'string' } } as const;

/** Flags that say what model to train; any of them turns the automatic recipe off. */
const MODEL_CHOICE_FLAGS = ['weights', 'backbone-weights', 'config', 'arch'] as const;

/**
 * Whether the run uses the automatic recipe: `--recipe auto`, or no `--recipe` and none of
 * --weights, --backbone-weights, --config, --arch. `--recipe paper` keeps the paper's recipe on
 * the default architecture (retinanet_resnet50_fpn), as before the automatic recipe existed.
 */
export function autoRecipeWanted(v: Values): boolean {
  const recipe = stringFlag(v, 'recipe');
  if (recipe !== undefined && recipe !== 'auto' && recipe !== 'paper') throw new UserError(`--recipe must be auto or paper, got '${recipe}'`);
  if (recipe === 'paper') return false;
  const given = MODEL_CHOICE_FLAGS.filter((f) => v[f] !== undefined);
  if (given.length > 0) {
    if (recipe === 'auto') throw new UserError(`--recipe auto chooses the model itself from scratch; it cannot be combined with ${given.map((f) => `--${f}`).join(', ')}`);
    return false;
  }
  return true;
}

/** The automatic recipe with the flags applied. */
export interface AutoTrain {
  config: RetinaNetConfig;
  batch: number;
  lr: number;
  clipGradNorm: number | undefined;
  flip: boolean;
  minSizes: number[] | undefined;
  padTo: number;
  /** What to print: the choices with their reasons. */
  text: string;
  /**
   * The choices as the flags they stand for, to save with the run for --resume (`config` names
   * the config file `saveAutoConfig` writes).
   */
  flags: Values;
}

/** The file in the run folder that holds the model the automatic recipe chose. */
export function autoConfigFile(outDir: string): string {
  return path.join(outDir, 'auto_config.json');
}

/**
 * The automatic recipe for `dataset`, `timeBudget` seconds (undefined: sized as for 15
 * minutes) and `cores`, with the explicit flags of `v` overriding their choices.
 */
export function autoTrain(dataset: DetectionDataset, v: Values, o: { timeBudget?: number; cores: number; outDir: string }): AutoTrain {
  const minSizeFlag = numberFlag(v, 'min-size', { integer: true, min: 32 });
  const maxSizeFlag = numberFlag(v, 'max-size', { integer: true, min: 32 });
  const choice = scratchRecipe(dataset, { timeBudget: o.timeBudget, cores: o.cores, minSize: minSizeFlag, maxSize: maxSizeFlag });
  const r = choice.recipe;
  const batch = numberFlag(v, 'batch', { integer: true, min: 1 }) ?? r.batchSize;
  const lr = numberFlag(v, 'lr', { min: 0 }) ?? r.lr;
  const clipGradNorm = numberFlag(v, 'clip-grad', { min: 0 }) ?? r.clipGradNorm;
  const noAugment = v['no-augment'] === true;
  const jitterFlag = intListFlag(v, 'scale-jitter');
  const minSizes = jitterFlag ?? (noAugment ? undefined : r.minSizes);
  const padTo = numberFlag(v, 'size-divisible', { integer: true, min: 32 }) ?? r.padTo;

  const given = (flags: string[]): string[] => flags.filter((f) => v[f] !== undefined).map((f) => `--${f}`);
  const lines = [
    `no weights given: training from scratch with the automatic recipe, for ${o.timeBudget !== undefined ? `a ${(o.timeBudget / 60).toFixed(1)}-minute budget` : 'a 15-minute run (no --time-budget)'} on ${o.cores} core${o.cores > 1 ? 's' : ''} (--recipe paper for the paper's recipe; any flag overrides its choice):`,
  ];
  for (const reason of choice.reasons) {
    let chosen = reason.choice;
    let because = reason.because;
    if (chosen.startsWith('batch ')) {
      const over = given(['batch', 'lr', 'clip-grad']);
      chosen = `batch ${batch}, learning rate ${lr}, ${clipGradNorm !== undefined ? `gradient norm clipped at ${clipGradNorm}` : 'no gradient clipping'}, warmup a tenth of the run, x0.1 at 2/3 and 8/9`;
      if (over.length > 0) because = `${over.join(', ')} given; otherwise: ${because}`;
    } else if (chosen.startsWith('augmentation')) {
      const over = given(['no-augment', 'scale-jitter', 'size-divisible']);
      chosen = `augmentation: ${noAugment ? 'no flips' : 'horizontal flips'}${minSizes ? `, short side drawn from ${minSizes.join('/')} px` : ', no scale jitter'}; batches padded to multiples of ${padTo}`;
      if (over.length > 0) because = `${over.join(', ')} given; otherwise: ${because}`;
    } else if (chosen.startsWith('input') && because === 'given') {
      because = `${given(['min-size', 'max-size']).join(', ')} given`;
    }
    lines.push(`  ${chosen}`, `      because ${because}`);
  }
  lines.push(`  estimate: ~${choice.estimate.imagesPerSecond.toFixed(1)} training images/s, ~${choice.estimate.epochs.toFixed(0)} passes over the ${dataset.images.length} images in the budget`);

  const flags: Values = {
    config: autoConfigFile(o.outDir),
    batch: String(batch),
    lr: String(lr),
    'size-divisible': String(padTo),
    ...(clipGradNorm !== undefined ? { 'clip-grad': String(clipGradNorm) } : {}),
    ...(minSizes ? { 'scale-jitter': minSizes.join(',') } : {}),
  };
  return { config: choice.config, batch, lr, clipGradNorm, flip: !noAugment, minSizes, padTo, text: lines.join('\n'), flags };
}

/**
 * Writes the chosen model's config where `flags.config` says (a complete config, read back by
 * `--config` on --resume), and the printed choices with their reasons as `auto_recipe.txt`.
 */
export function saveAutoConfig(outDir: string, config: RetinaNetConfig, text: string): void {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(path.join(outDir, 'auto_recipe.txt'), `${text}\n`);
  const { classNames: _names, ...rest } = config;
  writeFileSync(autoConfigFile(outDir), JSON.stringify({ arch: 'retinanet_resnet18_fpn_gn', ...rest }, null, 2) + '\n');
}
