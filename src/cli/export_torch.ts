/**
 * `retinanet export-torch`: the files of a PyTorch DistributedDataParallel run of a config on a
 * dataset with torchvision's RetinaNet (train/torch_export.ts), for users who outgrow CPU training.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type Command, UserError } from './command.js';
import { MODEL_FLAGS, intListFlag, loadSource, numberFlag, resolveConfig, stringFlag, weightsFile } from './common.js';
import { checkOutputDir } from '../core/output.js';
import { architectureNames, mergeConfig } from '../model/config.js';
import { readSidecar } from '../model/weights.js';
import { paperRecipe } from '../train/recipe.js';
import { torchTrainingFiles } from '../train/torch_export.js';

const help = `Usage: retinanet export-torch --data <dataset> --out DIR [options]

Writes a runnable PyTorch training script for your config and dataset, on torchvision's
RetinaNet with DistributedDataParallel (torchrun: several GPUs, several machines):
  DIR/train_torchvision.py   builds torchvision's RetinaNet for the config (backbone, FPN, head,
                             anchors, matcher, focal loss, box loss, sizes) and trains it with
                             the recipe (SGD, warmup, x0.1 steps, flips, scale jitter)
  DIR/model.json             the config and class names (the sidecar of the weights it saves)
  DIR/recipe.json            the recipe; DIR/dataset.json  images, boxes and labels
Then, where PyTorch is:
  torchrun --nproc_per_node 8 DIR/train_torchvision.py            (GPUs, NCCL)
  torchrun --nproc_per_node 2 DIR/train_torchvision.py --device cpu   (gloo)
Rank 0 saves DIR/out/model.safetensors with torchvision's names and model.json beside it:
'retinanet detect --weights DIR/out/model.safetensors' loads them unchanged. Weights of this
project (--weights) start the PyTorch run as they are: the names are torchvision's.
Python is needed only where the script runs, never by this command.

Data:
  --data PATH          COCO .json, VOC folder, keras-retinanet .csv or YOLO folder (images are
                       listed by absolute path: run the script where they are at that path)
  --format F, --images DIR, --split NAME   as for 'train'

Model (as for 'train'):
  --arch NAME          ${architectureNames().join(', ')}
  --config FILE        JSON config ({"arch": NAME, ...overrides})
  --num-classes N, --min-size N, --max-size N
  --weights W          start from these weights (safetensors or .pth with torchvision names, or
                       a NAME of 'retinanet weights list'); their sidecar's config is used
                       when no --arch or --config is given
  --trainable-backbone-layers K  (0-5, default from the config)
  --loss focal|ce, --gamma G, --alpha A

Recipe (as for 'train'; per process):
  --iters N | --epochs N   length (default 12 epochs)
  --batch N            images per process and step (default 2)
  --lr X               learning rate (default 0.01 x global batch / 16, global batch = batch x
                       processes, at run time)
  --warmup N, --clip-grad X, --no-augment, --scale-jitter LIST, --seed S

Output:
  --out DIR            the folder to write (refused when it holds files, unless --exist-ok)
  --exist-ok           write into a folder that holds files`;

async function run(argv: string[]): Promise<number> {
  const { values: v } = parseArgs({
    args: argv,
    allowPositionals: false,
    options: {
      data: { type: 'string' },
      format: { type: 'string' },
      images: { type: 'string' },
      split: { type: 'string' },
      ...MODEL_FLAGS,
      weights: { type: 'string' },
      'trainable-backbone-layers': { type: 'string' },
      loss: { type: 'string' },
      gamma: { type: 'string' },
      alpha: { type: 'string' },
      iters: { type: 'string' },
      epochs: { type: 'string' },
      batch: { type: 'string' },
      lr: { type: 'string' },
      warmup: { type: 'string' },
      'clip-grad': { type: 'string' },
      'no-augment': { type: 'boolean' },
      'scale-jitter': { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      'exist-ok': { type: 'boolean' },
      quiet: { type: 'boolean' },
    },
  });
  const data = stringFlag(v, 'data');
  if (!data) throw new UserError(`--data is required\n\n${help}`);
  if (data === 'synthetic') throw new UserError("--data synthetic lives in memory: write it to disk first ('retinanet data synthetic ...') and give that folder");
  const out = stringFlag(v, 'out');
  if (!out) throw new UserError('--out DIR is required');
  checkOutputDir(out, '--out');
  if (existsSync(out) && readdirSync(out).length > 0 && v['exist-ok'] !== true) throw new UserError(`--out ${out} holds files; give an empty or new folder, or --exist-ok`);
  const epochs = numberFlag(v, 'epochs', { min: 0.01 });
  const iters = numberFlag(v, 'iters', { integer: true, min: 0 });
  if (epochs !== undefined && iters !== undefined) throw new UserError('give either --iters or --epochs, not both');
  const batch = numberFlag(v, 'batch', { integer: true, min: 1 }) ?? 2;
  const lr = numberFlag(v, 'lr', { min: 0 });
  const seed = numberFlag(v, 'seed', { integer: true, min: 0 }) ?? 0;
  const trainable = numberFlag(v, 'trainable-backbone-layers', { integer: true, min: 0, max: 5 });
  const weightsSpec = stringFlag(v, 'weights');
  const init = weightsSpec ? path.resolve(await weightsFile(weightsSpec, '--weights', 'retinanet', v['quiet'] === true)) : undefined;
  let cfg = resolveConfig(v, init ? readSidecar(init) : undefined);
  const lossName = stringFlag(v, 'loss') ?? cfg.loss.classification;
  if (lossName !== 'focal' && lossName !== 'ce') throw new UserError(`--loss must be focal or ce (torchvision has no FL*), got '${lossName}'`);
  const source = await loadSource(data, v);
  const dataset = source.dataset;
  if (!dataset) throw new UserError(`--data ${data}: not a dataset on disk`);
  const numClasses = numberFlag(v, 'num-classes', { integer: true, min: 1 });
  cfg = mergeConfig(cfg, {
    numClasses: numClasses ?? dataset.classNames.length,
    classNames: numClasses === undefined || numClasses === dataset.classNames.length ? [...dataset.classNames] : [],
    loss: { classification: lossName, gamma: numberFlag(v, 'gamma', { min: 0 }) ?? cfg.loss.gamma, alpha: numberFlag(v, 'alpha', { max: 1 }) ?? cfg.loss.alpha },
    ...(trainable !== undefined ? { backbone: { trainableLayers: trainable } } : {}),
  });
  const recipe = paperRecipe({
    batch,
    warmupIters: numberFlag(v, 'warmup', { integer: true, min: 0 }),
    clipGradNorm: numberFlag(v, 'clip-grad', { min: 0 }),
    flip: v['no-augment'] !== true,
    minSizes: intListFlag(v, 'scale-jitter'),
  });
  const files = torchTrainingFiles(cfg, recipe, dataset, { iters, epochs, seed, lr, init, categoryIds: dataset.categoryIds });
  await mkdir(out, { recursive: true });
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(out, name), text, { mode: name.endsWith('.py') ? 0o755 : 0o644 });
  process.stdout.write(
    `wrote ${Object.keys(files).join(', ')} to ${out}: ${cfg.name}, ${cfg.numClasses} classes, ${dataset.images.length} images${init ? `, starting from ${init}` : ''}\n` +
      `run: torchrun --nproc_per_node N ${path.join(out, 'train_torchvision.py')} [--device cpu]; then retinanet detect --weights ${path.join(out, 'out', 'model.safetensors')}\n`,
  );
  return 0;
}

export const exportTorchCommand: Command = { name: 'export-torch', summary: 'write a PyTorch DDP training script (torchvision RetinaNet, torchrun) for a config and dataset', help, run };
