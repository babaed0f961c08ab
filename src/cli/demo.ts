import { parseArgs } from 'node:util';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type Command, UserError } from './command.js';
import { checkOutputDir } from '../core/output.js';
import { clearRun, nextFreeRunDir, runFilesIn } from '../train/run_dir.js';
import { numberFlag, stringFlag } from './common.js';
import { formatDuration } from './progress.js';
import { progressHook, runInterruptible } from './train_hooks.js';
import { SYNTHETIC_CLASSES } from '../data/synthetic.js';
import { RetinaNet } from '../model/model.js';
import { evaluateModel } from '../model/evaluate.js';
import { Trainer } from '../train/trainer.js';
import { SYNTHETIC_DEFAULTS, syntheticSources } from '../data/synthetic_source.js';
import { DEMO_DEFAULTS, demoConfig, demoTrainOptions } from '../train/demo_config.js';
import { drawDetections } from '../io/draw.js';
import { COCO_STAT_KEYS } from '../eval/coco.js';
import { formatCocoSummary } from '../eval/summary.js';

const help = `Usage: retinanet demo [options]

The main job on the embedded default data: generates the built-in synthetic dataset (shapes of
widely varying size, many small, on textured backgrounds), trains a small RetinaNet with the
focal loss on it, evaluates COCO AP on a held-out synthetic split, draws detections on a few
held-out images, and writes a report.

Options:
  --out DIR        output folder (default runs/demo, or the next free runs/demo2, ...; a
                   folder holding another run is refused)
  --exist-ok       replace the run in --out
  --iters N        training iterations (default ${DEMO_DEFAULTS.iters})
  --batch N        images per step (default ${DEMO_DEFAULTS.batch})
  --lr X           base learning rate (default ${DEMO_DEFAULTS.lr})
  --train-images N synthetic training images (default ${SYNTHETIC_DEFAULTS.trainCount})
  --val-images N   held-out images for evaluation (default ${SYNTHETIC_DEFAULTS.valCount})
  --seed S         seed for data, initialisation and order (default 0)
  --threads N      threads for ONNX Runtime (default: all cores)
  --quiet          no progress bar

Writes to DIR: metrics.json (COCO AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs,
ARm, ARl), report.md, results.png / results.svg / results.csv (losses and learning rate),
log.jsonl, detections/*.png, model.safetensors (+ .json).`;

async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string' },
      iters: { type: 'string' },
      batch: { type: 'string' },
      lr: { type: 'string' },
      'train-images': { type: 'string' },
      'val-images': { type: 'string' },
      seed: { type: 'string' },
      threads: { type: 'string' },
      quiet: { type: 'boolean' },
      'exist-ok': { type: 'boolean' },
    },
  });
  const outFlag = stringFlag(values, 'out');
  const iters = numberFlag(values, 'iters', { integer: true, min: 1 }) ?? DEMO_DEFAULTS.iters;
  const batch = numberFlag(values, 'batch', { integer: true, min: 1 }) ?? DEMO_DEFAULTS.batch;
  const lr = numberFlag(values, 'lr', { min: 0 }) ?? DEMO_DEFAULTS.lr;
  const seed = numberFlag(values, 'seed', { integer: true, min: 0 }) ?? 0;
  const threads = numberFlag(values, 'threads', { integer: true, min: 1 });
  const quiet = values.quiet === true;
  const say = (s: string): void => {
    if (!quiet) process.stderr.write(s + '\n');
  };
  // The output folder is settled before any work: one run per folder (see 'train --out').
  let outDir: string;
  if (outFlag === undefined) {
    outDir = nextFreeRunDir(path.join('runs', 'demo'));
    if (outDir !== path.join('runs', 'demo')) say(`output: ${outDir} (runs/demo holds another run)`);
  } else {
    outDir = outFlag;
    checkOutputDir(outDir, '--out');
    const files = runFilesIn(outDir);
    if (files.length > 0 && values['exist-ok'] !== true) throw new UserError(`--out ${outDir} already holds a run (${files.join(', ')}): replace it with --exist-ok, or choose another --out`);
  }
  const t0 = performance.now();
  await mkdir(outDir, { recursive: true });
  if (values['exist-ok'] === true) {
    clearRun(outDir);
    for (const f of ['metrics.json', 'report.md', 'detections']) await rm(path.join(outDir, f), { recursive: true, force: true });
  }

  say(`retinanet demo: generating the synthetic dataset...`);
  const { train, val } = syntheticSources({
    seed,
    trainCount: numberFlag(values, 'train-images', { integer: true, min: 1 }),
    valCount: numberFlag(values, 'val-images', { integer: true, min: 1 }),
  });
  const cfg = demoConfig();
  const model = new RetinaNet(cfg, seed);
  say(`training ${cfg.name} (${(model.store.count(true) / 1e6).toFixed(1)}M parameters) on ${train.length} images, ${iters} iterations of ${batch}; output in ${outDir}`);
  const trainer = new Trainer(model, train, demoTrainOptions({ iters, batch, lr, seed, threads, outDir, hooks: [progressHook(quiet)] }));
  const result = await runInterruptible(trainer, quiet);
  if (result.stopped === 'nan') {
    process.stderr.write(`error: ${result.message}\n`);
    return 1;
  }
  if (result.stopped === 'interrupted') {
    process.stdout.write(`interrupted; partial weights and checkpoint in ${outDir}\n`);
    return 130;
  }

  say(`evaluating on ${val.length} held-out images...`);
  const { result: evalResult } = await evaluateModel(model, val, { threads });
  const metrics = Object.fromEntries(COCO_STAT_KEYS.map((k) => [k, evalResult.stats[k]]));
  const perClass = Object.fromEntries(evalResult.perCategory.map((c) => [c.name ?? String(c.id), c.AP]));
  await writeFile(path.join(outDir, 'metrics.json'), JSON.stringify({ ...metrics, perClass }, null, 2) + '\n');

  const drawDir = path.join(outDir, 'detections');
  await mkdir(drawDir, { recursive: true });
  const shown = Math.min(6, val.length);
  for (let i = 0; i < shown; i++) {
    const s = await val.get(i);
    const [det] = await model.detect([s.image], { threads });
    await drawDetections(s.image, { boxes: det!.boxes, labels: det!.labels, scores: det!.scores }, path.join(drawDir, `val_${String(i + 1).padStart(3, '0')}.png`), {
      classNames: SYNTHETIC_CLASSES,
      minScore: 0.4,
    });
  }
  const seconds = (performance.now() - t0) / 1000;
  const last = result.records.slice(-20);
  const avg = (f: (r: (typeof last)[number]) => number): number => last.reduce((a, r) => a + f(r), 0) / Math.max(1, last.length);
  const report = [
    `# retinanet-ts demo`,
    '',
    `${cfg.name}, trained from scratch for ${result.iterations} iterations of ${batch} images on ${train.length} synthetic images (${SYNTHETIC_CLASSES.join(', ')}), evaluated on ${val.length} held-out images. Total time ${formatDuration(seconds)}.`,
    '',
    '## COCO metrics (held-out split)',
    '',
    '| ' + COCO_STAT_KEYS.join(' | ') + ' |',
    '|' + COCO_STAT_KEYS.map(() => '---').join('|') + '|',
    '| ' + COCO_STAT_KEYS.map((k) => metrics[k]!.toFixed(3)).join(' | ') + ' |',
    '',
    '| class | AP |',
    '|---|---|',
    ...Object.entries(perClass).map(([n, ap]) => `| ${n} | ${ap.toFixed(3)} |`),
    '',
    '## Loss',
    '',
    `Final loss (mean of the last 20 steps): classification ${avg((r) => r.loss_cls).toFixed(4)}, box ${avg((r) => r.loss_box).toFixed(4)}.`,
    '',
    '![losses and learning rate](results.png)',
    '',
    '## Detections on held-out images',
    '',
    ...Array.from({ length: shown }, (_, i) => `![val ${i + 1}](detections/val_${String(i + 1).padStart(3, '0')}.png)`),
    '',
  ].join('\n');
  await writeFile(path.join(outDir, 'report.md'), report);
  process.stdout.write(`${formatCocoSummary(evalResult)}\n\n`);
  process.stdout.write(`AP ${metrics['AP']!.toFixed(3)}, AP50 ${metrics['AP50']!.toFixed(3)} on ${val.length} held-out images after ${formatDuration(seconds)}.\n`);
  process.stdout.write(`Report: ${path.join(outDir, 'report.md')} (metrics.json, results.png, detections/, model.safetensors)\n`);
  await model.dispose();
  return 0;
}

export const demoCommand: Command = { name: 'demo', summary: 'train, evaluate and detect on the built-in synthetic data (the main job)', help, run };
