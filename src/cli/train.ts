import { parseArgs } from 'node:util';
import path from 'node:path';
import os from 'node:os';
import { existsSync } from 'node:fs';
import { type Command, UserError } from './command.js';
import { IMAGE_FLAGS, MODEL_FLAGS, applyImageFlags, durationFlag, sizeFlag, intListFlag, loadSource, numberFlag, resolveConfig, shellQuote, stringFlag, trainStart, commandLine } from './common.js';
import { describeLoad, loadStartingWeights } from '../model/finetune.js';
import { readSidecar } from '../model/weights.js';
import { architectureNames, mergeConfig } from '../model/config.js';
import { RetinaNet } from '../model/model.js';
import { Trainer, type TrainOptions, type TrainResult } from '../train/trainer.js';
import { RunDirError, clearRun, lockRunDir, nextFreeRunDir, runFilesIn } from '../train/run_dir.js';
import { paperSchedule } from '../train/schedule.js';
import { defaultMaxMemory } from '../train/memory.js';
import { checkOutputDir } from '../core/output.js';
import { paperRecipe } from '../train/recipe.js';
import { progressHook, runInterruptible } from './train_hooks.js';
import { loadCheckpoint } from '../train/checkpoint.js';
import { syntheticSources } from '../data/synthetic_source.js';
import type { SampleSource } from '../data/source.js';
import { anchorCoverageOf, sourceBoxes } from '../data/stats.js';
import { anchorConfig, type RetinaNetConfig } from '../model/config.js';
import { ReportHook } from '../train/report_hook.js';
import { RECIPE_FLAG, type AutoTrain, autoRecipeWanted, autoTrain, saveAutoConfig } from './train_auto.js';

/** The flags of a run that `anchors optimize` takes too: the same boxes, resize and starting anchors. */
const ANCHOR_FLAGS = ['format', 'images', 'split', 'arch', 'config', 'min-size', 'max-size'] as const;

/**
 * Warns when more than 1% of the training boxes have no anchor at IoU >= 0.5 after the resize,
 * with the `anchors optimize` command (this run's data, resize and anchors) that suggests better ones.
 */
function warnUncovered(train: SampleSource, cfg: RetinaNetConfig, data: string, v: Record<string, string | boolean | undefined>): void {
  const c = anchorCoverageOf(sourceBoxes(train), train.classNames.length, { minSize: cfg.transform.minSize, maxSize: cfg.transform.maxSize, anchorConfig: anchorConfig(cfg) });
  if (c.checked === 0 || c.uncovered <= 0.01 * c.checked) return;
  const flags = ANCHOR_FLAGS.flatMap((f) => (typeof v[f] === 'string' ? [`--${f}`, v[f]] : []));
  const optimizeCommand = ['retinanet', 'anchors', 'optimize', data, ...flags].map(shellQuote).join(' ');
  const worst = c.uncoveredPerClass.map((n, k) => ({ n, name: train.classNames[k]! })).filter((x) => x.n > 0).sort((a, b) => b.n - a.n).slice(0, 3);
  process.stderr.write(
    `warning: ${c.uncovered} of ${c.checked} training boxes (${((100 * c.uncovered) / c.checked).toFixed(1)}%) have no anchor with IoU >= 0.5 after resizing to ${cfg.transform.minSize}/${cfg.transform.maxSize} ` +
      `(most in ${worst.map((w) => `${w.name} ${w.n}`).join(', ')}); they only get low-quality matches. '${optimizeCommand}' suggests anchors that cover them.\n`,
  );
}

const help = `Usage: retinanet train --data <dataset> [options]
       retinanet train --resume DIR

Trains RetinaNet with the focal loss (SGD, momentum 0.9, weight decay 1e-4, linear warmup,
x0.1 steps at 2/3 and 8/9 of the run, horizontal flips).

Without --weights, --backbone-weights, --config or --arch it trains from scratch with the
automatic recipe: from the training set's image and box sizes and the time budget (without
--time-budget: chosen as for 15 minutes) it picks a GroupNorm ResNet-18 and its width, the
input size, anchors, batch, learning rate, clipping and augmentation, and prints each choice
with its reason (also saved as auto_recipe.txt in the run folder). Any flag below overrides
the choice it stands for.

Data:
  --data PATH          training set: COCO .json, VOC folder, keras-retinanet .csv, YOLO folder,
                       or 'synthetic' for the built-in shapes dataset
  --format F           coco | voc | csv | yolo (default: detected)
  --images DIR         image folder (COCO: default is the JSON's folder)
  --split NAME         VOC ImageSets/Main/NAME.txt (or YOLO/COCO split) of --data
  --val PATH           validation set (same formats); COCO AP is logged and the best kept
  --val-split NAME     split of --val (e.g. val)
  --strict             stop at the first dataset problem, or unreadable image, instead of
                       skipping it with a warning (an unreadable image in a batch is
                       otherwise replaced by the next readable one)
  --max-pixels N       refuse images over N pixels (default 100000000)

Model:
  --recipe auto|paper  auto: the automatic from-scratch recipe (above; the default without
                       weights, --config or --arch); paper: the paper's recipe on the
                       default architecture
  --arch NAME          ${architectureNames().join(', ')}
                       (default: the automatic recipe; with --recipe paper, retinanet_resnet50_fpn)
  --config FILE        JSON config ({"arch": NAME, ...overrides})
  --weights W          start from these weights (fine-tuning): a safetensors or .pth file with
                       torchvision names, a NAME of 'retinanet weights list' (e.g.
                       retinanet_resnet50_fpn_coco) or a URL. A classification layer for
                       another class count is re-initialised (normal std 0.01, prior bias)
  --backbone-weights W start from an ImageNet ResNet (file, NAME such as resnet50, or URL):
                       loaded into the backbone, BatchNorm statistics included; FPN and heads
                       initialised
  --trainable-backbone-layers K  backbone stages that train, counted from layer4 (0-5, as
                       torchvision): default 3 (conv1 and layer1 frozen) when starting from
                       weights, 5 from scratch. Frozen stages cost no gradient computation
  --min-size N         short side of training images (default from the architecture)
  --max-size N         long side limit
  --scale-jitter LIST  short sides to sample from per batch, e.g. 640,672,704,736,768,800
  --size-divisible N   pad batches to multiples of N (default 128: few distinct shapes, so
                       few compiled graphs; 32 as torchvision for fixed-size datasets)

Loss:
  --loss focal|ce|focal-star   classification loss (default focal; ce = alpha-balanced CE)
  --gamma G            focusing parameter (default 2)
  --alpha A            positive-class weight (default 0.25; < 0 disables)

Schedule:
  --iters N | --epochs N   length of the run (default: 12 epochs)
  --time-budget T      train for T (900, 900s, 15m, 1.5h) instead: the length, warmup and
                       x0.1 points are fitted to the measured step time; --iters/--epochs
                       become a cap. Compiles, validations and checkpoints count against T
  --batch N            images per step (default 2)
  --lr X               base learning rate (default 0.01 x batch / 16)
  --warmup N           warmup iterations (default min(500, iters/10))
  --clip-grad X        clip the global gradient norm
  --no-augment         no horizontal flips (automatic recipe: no scale jitter either)
  --seed S             seed for order, augmentation and initialisation (default 0)

Run:
  --out DIR            output folder: log.jsonl, results.csv, results.png/.svg (losses, lr,
                       validation AP), checkpoint/, best.safetensors, model.safetensors (+ .json
                       sidecars); with --val also report.html: PR, F1 / P / R against the score
                       (best threshold printed), confusion matrix, COCO error analysis, grids of
                       validation images (ground truth beside predictions; the worst images).
                       Default: runs/train, or the next free runs/train2, runs/train3, ... A
                       folder holding another run is refused
  --exist-ok           replace the run in --out (its files are removed first)
  --resume DIR         continue the run in DIR exactly where its last checkpoint stopped, from
                       any folder; only --iters (longer), --threads, --quiet, --checkpoint-every
                       and --val-every may be given with it
  --checkpoint-every N iterations between checkpoints (default 500)
  --val-every N        iterations between validations (default: once per epoch)
  --threads N          threads for ONNX Runtime (default: all cores)
  --max-memory SIZE    memory budget, e.g. 12G (default: 80% of the machine's memory). The
                       run refuses to start when its largest step cannot fit, and keeps its
                       compiled graphs (one per batch shape) within it
  --no-report          with --val, skip the report written after the run
  --report-score S     score threshold of the report's confusion matrix and image grids
                       (default: the best-F1 threshold)
  --quiet              no progress bar

A warning is printed at the start when more than 1% of the training boxes have no anchor
with IoU >= 0.5 after the resize ('retinanet anchors optimize' suggests anchors that do).
Ctrl-C saves a checkpoint before exiting; --resume DIR continues from it.`;

const options = {
  data: { type: 'string' },
  format: { type: 'string' },
  images: { type: 'string' },
  split: { type: 'string' },
  val: { type: 'string' },
  'val-split': { type: 'string' },
  strict: { type: 'boolean' },
  ...IMAGE_FLAGS,
  ...MODEL_FLAGS,
  ...RECIPE_FLAG,
  weights: { type: 'string' },
  'backbone-weights': { type: 'string' },
  'trainable-backbone-layers': { type: 'string' },
  'scale-jitter': { type: 'string' },
  'size-divisible': { type: 'string' },
  loss: { type: 'string' },
  gamma: { type: 'string' },
  alpha: { type: 'string' },
  iters: { type: 'string' },
  epochs: { type: 'string' },
  'time-budget': { type: 'string' },
  batch: { type: 'string' },
  lr: { type: 'string' },
  warmup: { type: 'string' },
  'clip-grad': { type: 'string' },
  'no-augment': { type: 'boolean' },
  seed: { type: 'string' },
  out: { type: 'string' },
  'exist-ok': { type: 'boolean' },
  resume: { type: 'string' },
  'checkpoint-every': { type: 'string' },
  'val-every': { type: 'string' },
  threads: { type: 'string' },
  quiet: { type: 'boolean' },
  'no-report': { type: 'boolean' },
  'report-score': { type: 'string' },
} as const;

/** `--iters` when a time budget is given without a length: no cap in practice. */
const NO_CAP = 1_000_000_000;

function formatSeconds(s: number): string {
  return s < 120 ? `${s.toFixed(0)} s` : `${(s / 60).toFixed(1)} min`;
}

function lengthText(iters: number, timeBudget: number | undefined): string {
  if (timeBudget === undefined) return `${iters} iterations`;
  return `${formatSeconds(timeBudget)} (length fitted to the step time${iters < NO_CAP ? `, at most ${iters} iterations` : ''}), batches`;
}

async function sourceFor(spec: string, values: Record<string, string | boolean | undefined>, splitFlag: string, seed: number, role: 'train' | 'val'): Promise<SampleSource> {
  if (spec === 'synthetic') {
    const s = syntheticSources({ seed });
    return role === 'train' ? s.train : s.val;
  }
  return loadSource(spec, values, splitFlag);
}

/** Flags that may change on --resume; any other would be silently ignored, so it is refused. */
const RESUME_FLAGS = ['resume', 'threads', 'quiet', 'iters', 'checkpoint-every', 'val-every', 'max-pixels', 'max-memory', 'no-report', 'report-score'] as const;
/** Flags holding paths, stored absolute in the checkpoint so --resume works from any folder. */
const PATH_FLAGS = ['data', 'val', 'images', 'config', 'weights', 'backbone-weights', 'out'] as const;

type Values = Record<string, string | boolean | undefined>;

/** The run's flags with their paths made absolute ('synthetic' is not a path). */
function absolutePaths(v: Values): Values {
  const out: Values = { ...v };
  for (const f of PATH_FLAGS) {
    const p = out[f];
    // Weights given by NAME or URL stay as they are.
    if (typeof p === 'string' && p !== 'synthetic' && !(f.endsWith('weights') && !existsSync(p))) out[f] = path.resolve(p);
  }
  return out;
}

/** What a --resume continues: the saved flags, the flags that may change, and the checkpoint's plan. */
interface Resumed {
  dir: string;
  iteration: number;
  /** Length the schedule was placed for (its warmup and x0.1 points stay there). */
  scheduleIters: number;
  itersChanged: boolean;
}

async function resumeFlags(dir: string, given: Values): Promise<{ v: Values; resumed: Resumed }> {
  if (!existsSync(path.join(dir, 'checkpoint', 'state.json'))) throw new UserError(`--resume ${dir}: no checkpoint there (expected ${path.join(dir, 'checkpoint', 'state.json')})`);
  const refused = Object.keys(given).filter((k) => given[k] !== undefined && !(RESUME_FLAGS as readonly string[]).includes(k));
  if (refused.length > 0) {
    throw new UserError(`--resume continues the run as it was started: ${refused.map((f) => `--${f}`).join(', ')} cannot change (with --resume: ${RESUME_FLAGS.slice(1).map((f) => `--${f}`).join(', ')})`);
  }
  const { state } = await loadCheckpoint(path.join(dir, 'checkpoint'));
  const saved = (state.options['cli'] ?? {}) as Values;
  const v: Values = { ...saved, out: dir };
  for (const f of RESUME_FLAGS.slice(1)) if (given[f] !== undefined) v[f] = given[f];
  // The stages the run trains are the checkpoint's (runs saved before the flag existed included).
  v['trainable-backbone-layers'] ??= String(state.config.backbone.trainableLayers);
  const scheduleIters = state.plan?.scheduleIters ?? Number(state.options['iters']);
  let itersChanged = false;
  if (given['iters'] !== undefined) {
    if (saved['time-budget'] !== undefined) throw new UserError('--iters cannot change a --time-budget run on --resume (its length follows the budget)');
    const iters = numberFlag(given, 'iters', { integer: true, min: 1 })!;
    if (iters < state.iteration) throw new UserError(`--iters ${iters} is less than the ${state.iteration} iterations already done`);
    delete v['epochs'];
    itersChanged = iters !== Number(state.options['iters']);
  }
  return { v, resumed: { dir, iteration: state.iteration, scheduleIters, itersChanged } };
}

/**
 * The output folder of a new run: `--out` when given (refused if it holds another run, unless
 * --exist-ok), else the first free of runs/train, runs/train2, ...
 */
function newRunDir(v: Values): { dir: string; note?: string } {
  const out = stringFlag(v, 'out');
  if (out === undefined) {
    const dir = nextFreeRunDir(path.join('runs', 'train'));
    return dir === path.join('runs', 'train') ? { dir } : { dir, note: `output: ${dir} (runs/train holds another run)` };
  }
  checkOutputDir(out, '--out');
  if (v['exist-ok'] !== true) {
    const files = runFilesIn(out);
    if (files.length > 0) throw new UserError(`--out ${out} already holds a training run (${files.join(', ')}): continue it with --resume ${out}, replace it with --exist-ok, or choose another --out`);
  }
  return { dir: out };
}

async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options, allowPositionals: false });
  const resumeDir = stringFlag(values, 'resume');
  let v: Values = values;
  let resumed: Resumed | undefined;
  if (resumeDir) ({ v, resumed } = await resumeFlags(resumeDir, values));
  applyImageFlags(v);
  const data = stringFlag(v, 'data');
  if (!data) throw new UserError(`--data is required\n\n${help}`);
  // Every flag is checked before the data are read: loading a dataset (or generating the
  // synthetic one) takes seconds to minutes, too long to wait for a typo to be reported.
  const seed = numberFlag(v, 'seed', { integer: true, min: 0 }) ?? 0;
  let batch = numberFlag(v, 'batch', { integer: true, min: 1 }) ?? 2;
  const epochs = numberFlag(v, 'epochs', { min: 0.01 });
  const itersFlag = numberFlag(v, 'iters', { integer: true, min: 1 });
  if (epochs !== undefined && itersFlag !== undefined) throw new UserError('give either --iters or --epochs, not both');
  const timeBudget = durationFlag(v, 'time-budget');
  const start = await trainStart(v, v['quiet'] === true);
  let cfg = resolveConfig(v, start.weights ? readSidecar(start.weights) : undefined);
  if (start.backboneDepth !== undefined && start.backboneDepth !== cfg.backbone.depth) {
    throw new UserError(`--backbone-weights ${String(v['backbone-weights'])} is a ResNet-${start.backboneDepth} and ${cfg.name}'s backbone a ResNet-${cfg.backbone.depth}: choose an --arch or --config with that depth`);
  }
  const lossName = stringFlag(v, 'loss') ?? cfg.loss.classification;
  if (!['focal', 'ce', 'focal-star'].includes(lossName)) throw new UserError(`--loss must be focal, ce or focal-star, got '${lossName}'`);
  const numClasses = numberFlag(v, 'num-classes', { integer: true, min: 1 });
  const gamma = numberFlag(v, 'gamma', { min: 0 }) ?? cfg.loss.gamma;
  const alpha = numberFlag(v, 'alpha', { max: 1 }) ?? cfg.loss.alpha;
  let lr = numberFlag(v, 'lr', { min: 0 });
  const warmupIters = numberFlag(v, 'warmup', { integer: true, min: 0 });
  let clipGradNorm = numberFlag(v, 'clip-grad', { min: 0 });
  let minSizes = intListFlag(v, 'scale-jitter');
  const threads = numberFlag(v, 'threads', { integer: true, min: 1 });
  const wantAuto = autoRecipeWanted(v);
  const checkpointEvery = numberFlag(v, 'checkpoint-every', { integer: true, min: 1 }) ?? 500;
  const maxMemory = sizeFlag(v, 'max-memory') ?? defaultMaxMemory();
  const valEvery = numberFlag(v, 'val-every', { integer: true, min: 1 });
  const reportScore = numberFlag(v, 'report-score', { min: 0, max: 1 });

  const { dir: outDir, note } = resumed ? { dir: resumed.dir, note: undefined } : newRunDir(v);
  const quiet = v['quiet'] === true;
  if (note && !quiet) process.stderr.write(`${note}\n`);

  const train = await sourceFor(data, v, 'split', seed, 'train');
  const valSpec = stringFlag(v, 'val');
  const val = valSpec ? await sourceFor(valSpec, v, 'val-split', seed, 'val') : undefined;

  // No weights, config or architecture: the automatic recipe chooses, flags override it.
  let auto: AutoTrain | undefined;
  if (wantAuto && train.dataset) {
    auto = autoTrain(train.dataset, v, { timeBudget, cores: threads ?? os.availableParallelism(), outDir });
    ({ config: cfg, batch, lr, clipGradNorm, minSizes } = auto);
    v = { ...v, ...auto.flags };
    if (!quiet) process.stderr.write(`${auto.text}\n`);
  }

  cfg = mergeConfig(cfg, {
    numClasses: numClasses ?? train.classNames.length,
    classNames: [...train.classNames],
    loss: { classification: lossName as 'focal' | 'ce' | 'focal-star', gamma, alpha },
    ...(start.trainableLayers !== undefined ? { backbone: { trainableLayers: start.trainableLayers } } : {}),
  });
  if (cfg.numClasses < train.classNames.length) throw new UserError(`--num-classes ${cfg.numClasses} is smaller than the dataset's ${train.classNames.length} classes`);
  if (!resumed) warnUncovered(train, cfg, data, v);

  const perEpoch = Math.max(1, Math.floor(train.length / batch));
  // With a time budget and no length given, the length is capped only by the budget.
  const iters = itersFlag ?? (epochs === undefined && timeBudget !== undefined ? NO_CAP : Math.max(1, Math.round((epochs ?? 12) * perEpoch)));
  const model = new RetinaNet(cfg, seed);
  const loaded = resumeDir ? undefined : await loadStartingWeights(model, start);
  if (loaded && !quiet) process.stderr.write(`${describeLoad(loaded, cfg, String(v['weights'] ?? v['backbone-weights']))}\n`);
  // A longer --iters on --resume keeps the schedule where it was placed (its warmup and x0.1
  // points), so the rate is never raised again after a drop.
  const keptSchedule = resumed?.itersChanged ? paperSchedule(lr ?? paperRecipe({ batch }).lr, resumed.scheduleIters, warmupIters) : undefined;
  const opts: TrainOptions = {
    ...paperRecipe({
      batch,
      lr,
      warmupIters: keptSchedule?.warmupIters ?? warmupIters,
      steps: keptSchedule ? [...keptSchedule.steps] : undefined,
      clipGradNorm,
      flip: v['no-augment'] !== true,
      minSizes,
      padTo: auto?.padTo ?? numberFlag(v, 'size-divisible', { integer: true, min: 32 }),
    }),
    iters,
    seed,
    threads,
    val,
    outDir,
    checkpointEvery,
    valEvery: valEvery ?? perEpoch,
    timeBudget,
    strict: v['strict'] === true,
    maxMemory,
    hooks: [
      progressHook(quiet),
      ...(val && v['no-report'] !== true
        ? [new ReportHook(outDir, val, { command: commandLine(), reportScore, onProgress: (m) => process.stderr.write(`${m}\n`) })]
        : []),
    ],
    extraState: { cli: absolutePaths({ ...v, out: outDir, 'exist-ok': undefined }) },
  };
  const trainer = new Trainer(model, train, opts);
  let release: () => void;
  try {
    release = await lockRunDir(outDir);
  } catch (err) {
    if (err instanceof RunDirError) throw new UserError(`--out ${err.message}; wait for it to finish or stop it first`);
    throw err;
  }
  try {
    if (!resumed && v['exist-ok'] === true) clearRun(outDir);
    if (auto) saveAutoConfig(outDir, cfg, auto.text);
    if (resumed) {
      await trainer.resume();
      if (!quiet) {
        const length = timeBudget !== undefined ? `a ${formatSeconds(timeBudget)} run` : `${iters} iterations`;
        const kept = keptSchedule ? ` (was ${resumed.scheduleIters}; the learning rate keeps its schedule: warmup ${keptSchedule.warmupIters}, x0.1 at ${keptSchedule.steps.join(' and ')})` : '';
        process.stderr.write(`resuming ${outDir} at iteration ${resumed.iteration}, for ${length}${kept}\n`);
      }
    } else if (!quiet) {
      process.stderr.write(`training ${cfg.name} (${cfg.numClasses} classes, ${(model.store.count(true) / 1e6).toFixed(1)}M trainable parameters) on ${train.length} images for ${lengthText(iters, timeBudget)} of ${batch} -> ${outDir}\n`);
    }
    return await report(await runInterruptible(trainer, quiet, `retinanet train --resume ${outDir}`), outDir, quiet, timeBudget);
  } finally {
    release();
  }
}

/** Prints how a run ended and returns the exit code. */
function report(result: TrainResult, outDir: string, quiet: boolean, timeBudget: number | undefined): number {
  if (result.stopped === 'nan') {
    process.stderr.write(`error: ${result.message}. Try a lower --lr or --clip-grad${result.lastCheckpoint ? `, and --resume ${outDir} to continue from the checkpoint` : ''}.\n`);
    return 1;
  }
  if (result.best) process.stdout.write(`best AP ${result.best.ap.toFixed(3)} at iteration ${result.best.iteration}: ${path.join(outDir, 'best.safetensors')}\n`);
  if (result.stopped === 'interrupted') {
    process.stdout.write(`interrupted at iteration ${result.iterations}; checkpoint saved. Continue with: retinanet train --resume ${outDir}\n`);
    return 130;
  }
  const seconds = result.records.length ? result.records[result.records.length - 1]!.time : 0;
  // The last validation was already printed on stderr as it came; the summary names it once
  // more only inside this line, so a terminal shows it once as a line of its own.
  const lastVal = result.lastVal ? `; last validation AP ${result.lastVal.AP.toFixed(3)}, AP50 ${result.lastVal.AP50.toFixed(3)}` : '';
  process.stdout.write(`done: ${result.iterations} iterations in ${formatSeconds(seconds)}${timeBudget !== undefined ? ` (budget ${formatSeconds(timeBudget)})` : ''}${lastVal}; weights ${path.join(outDir, 'model.safetensors')}, log ${path.join(outDir, 'log.jsonl')}, results ${path.join(outDir, 'results.png')}\n`);
  return 0;
}

export const trainCommand: Command = { name: 'train', summary: 'train RetinaNet with the focal loss', help, run };
