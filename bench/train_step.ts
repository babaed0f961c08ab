/**
 * Training-step benchmark: retinanet_resnet50_fpn layout (trainable backbone layers 3), batch of
 * N images of SxS (default 2 x 512), K classes (default 3, as BCCD), one SGD step including
 * target assignment and the parameter update, against torchvision in the same run; reports
 * peak RSS of both processes. `retinanet bench train-step [--model r50|scratch32|scratch64]
 * [--threads N] [--runs N] [--rounds R] [--batch N] [--size S] [--classes K]`; the scratch models
 * are the automatic from-scratch recipe's GroupNorm ResNet-18s (default batch 4 x 256). The two sides alternate for R rounds of N steps each, so
 * that slow phases of a noisy machine fall on both; the ratio compares the medians of all steps.
 */
import { InputError } from '../src/core/errors.js';
import { type RetinaNetConfig, configFor } from '../src/model/config.js';
import { SCRATCH_BATCH, SCRATCH_MODELS, scratchConfig } from '../src/train/scratch_recipe.js';
import { RetinaNet } from '../src/model/model.js';
import { hashUniform } from '../src/nn/hash_init.js';
import { memorySource } from '../src/data/source.js';
import { prepareBatch } from '../src/train/batches.js';
import { buildTrainGraph, trainFeeds } from '../src/train/train_graph.js';
import { Sgd } from '../src/train/sgd.js';
import { describeTorch, runIfScript, runTorchWith, torchPythons, type TorchPython } from './detection_common.js';
import { median } from '../src/core/stats.js';

/** The models the bench can step: torchvision's ResNet-50 layout, or a from-scratch GroupNorm model. */
const MODELS = ['r50', ...SCRATCH_MODELS.map((m) => `scratch${m.baseWidth}`)];

interface StepArgs {
  threads: number;
  runs: number;
  rounds: number;
  batch: number;
  size: number;
  classes: number;
  model: string;
}

function parse(argv: string[]): StepArgs {
  const get = (name: string, d: number): number => {
    const i = argv.indexOf(`--${name}`);
    if (i < 0) return d;
    const v = Number(argv[i + 1]);
    if (!(Number.isInteger(v) && v >= 1)) throw new InputError(`--${name} wants a whole number >= 1, got '${argv[i + 1] ?? ''}'`);
    return v;
  };
  const mi = argv.indexOf('--model');
  const model = mi >= 0 ? (argv[mi + 1] ?? '') : 'r50';
  if (!MODELS.includes(model)) throw new InputError(`--model: unknown model '${model}'; models: ${MODELS.join(', ')}`);
  const scratch = model !== 'r50';
  // The scratch models' defaults are the automatic recipe's: batch 4 at 256 px.
  return { threads: get('threads', 2), runs: get('runs', 4), rounds: get('rounds', 3), batch: get('batch', scratch ? SCRATCH_BATCH : 2), size: get('size', scratch ? 256 : 512), classes: get('classes', 3), model };
}

function configOf(a: StepArgs): RetinaNetConfig {
  if (a.model === 'r50') return configFor('retinanet_resnet50_fpn', { numClasses: a.classes, transform: { minSize: a.size, maxSize: a.size } });
  const m = SCRATCH_MODELS.find((x) => `scratch${x.baseWidth}` === a.model)!;
  return scratchConfig(m, Array.from({ length: a.classes }, (_, i) => `c${i}`), { minSize: a.size, maxSize: a.size });
}

/** Deterministic boxes: 8 per image, 20-200 px, labels cycling through the classes. */
function boxesFor(i: number, size: number, classes: number): { boxes: number[]; labels: number[] } {
  const u = hashUniform(`train-boxes-${i}`, 32);
  const boxes: number[] = [];
  const labels: number[] = [];
  for (let k = 0; k < 8; k++) {
    const s = 20 + 180 * u[4 * k]!;
    const x = (size - s) * u[4 * k + 1]!;
    const y = (size - s) * u[4 * k + 2]!;
    boxes.push(x, y, x + s * (0.6 + 0.8 * u[4 * k + 3]!) * 0.9, y + s * 0.9);
    labels.push(k % classes);
  }
  return { boxes, labels };
}

export async function main(argv: string[]): Promise<void> {
  const args = parse(argv);
  const { threads, runs, rounds, batch, size, classes } = args;
  const cfg = configOf(args);
  const model = new RetinaNet(cfg, 0);
  const samples = Array.from({ length: batch }, (_, i) => {
    const b = boxesFor(i, size, classes);
    return { image: { data: Float32Array.from(hashUniform(`train-image-${i}`, 3 * size * size)), width: size, height: size }, boxes: Float32Array.from(b.boxes), labels: Int32Array.from(b.labels) };
  });
  const source = memorySource(samples, Array.from({ length: classes }, (_, i) => `c${i}`));
  const sgd = new Sgd({ momentum: 0.9, weightDecay: 1e-4 });
  const opts = { config: cfg, flip: false, padTo: 32, seed: 0, boxLoss: cfg.loss.box };
  const t0 = performance.now();
  const first = await prepareBatch(source, 0, [...Array(batch).keys()], opts);
  const [n, , h, w] = first.shape;
  const train = await buildTrainGraph(model, n, h, w, first.anchors.length / 4, threads);
  const compileMs = performance.now() - t0;
  const times: number[] = [];
  // Per torch interpreter (Debian's 1.13, a torch 2 venv, ...): its step times over all rounds.
  const torchRuns = new Map<string, { ref: TorchPython; times: number[]; rss: number; loss: number }>();
  const pythons = torchPythons();
  const torchErrors: string[] = pythons.length === 0 ? ['skipped torchvision comparison: no python3 with torch and torchvision found (set TORCH_PYTHON)'] : [];
  let loss = 0;
  let step = 0;
  const torchArgs = [String(batch), String(size), String(classes), String(threads), String(runs), JSON.stringify(samples.map((s) => ({ boxes: Array.from(s.boxes), labels: Array.from(s.labels) })))];
  // A scratch model is built on the torch side from the same config (bench/scratch_torchvision.py's builder).
  if (args.model !== 'r50') torchArgs.push(JSON.stringify(cfg));
  for (let round = 0; round < rounds; round++) {
    const ours: number[] = [];
    // Two warm-up steps before the first round (allocator and thread-pool warm-up; the
    // torchvision script warms up the same way in each of its runs).
    const warmup = round === 0 ? 2 : 0;
    for (let i = 0; i < runs + warmup; i++, step++) {
      const s = performance.now();
      const b = await prepareBatch(source, step, [...Array(batch).keys()], opts);
      const out = (await train.exe.run(trainFeeds(model, b))) as Float32Array[];
      loss = out[0]![0]! + out[1]![0]!;
      sgd.step(model.store.values, new Map(train.names.map((nm, k) => [nm, out[k + 2]!])), 0.001);
      if (i >= warmup) ours.push(performance.now() - s);
    }
    times.push(...ours);
    const line = [`retinanet-ts median ${median(ours).toFixed(0)} ms`];
    for (const ref of pythons) {
      const run = torchRuns.get(ref.python);
      if (run === undefined && round > 0) continue; // failed in round 1
      const torch = runTorchWith<{ timesMs: number[]; peakRssMb: number; loss: number }>(ref, 'train_step_torchvision.py', torchArgs);
      if (typeof torch === 'string') {
        torchErrors.push(torch);
        continue;
      }
      const r = run ?? { ref, times: [], rss: 0, loss: 0 };
      r.times.push(...torch.timesMs);
      r.rss = Math.max(r.rss, torch.peakRssMb);
      r.loss = torch.loss;
      torchRuns.set(ref.python, r);
      line.push(`torch ${ref.torch} median ${median(torch.timesMs).toFixed(0)} ms`);
    }
    console.log(`  round ${round + 1}/${rounds}: ${line.join(', ')}`);
  }
  const ours = { medianMs: median(times), minMs: Math.min(...times), peakRssMb: process.resourceUsage().maxRSS / 1024 };
  const label = args.model === 'r50' ? 'retinanet_resnet50_fpn' : `from-scratch ResNet-18 width ${cfg.backbone.baseWidth} GroupNorm (FPN ${cfg.fpn.channels}, ${cfg.head.convs}-conv heads)`;
  console.log(`${label} training step, batch ${batch} x ${size}x${size}, ${classes} classes, ${threads} threads, ${rounds} rounds of ${runs} steps`);
  console.log(`  retinanet-ts : median ${ours.medianMs.toFixed(0)} ms, min ${ours.minMs.toFixed(0)} ms (graph build + compile ${compileMs.toFixed(0)} ms), peak RSS ${ours.peakRssMb.toFixed(0)} MB, loss ${loss.toFixed(3)}`);
  const refs = [...torchRuns.values()].sort((a, b) => median(a.times) - median(b.times));
  if (refs.length === 0) {
    console.log(`  torchvision  : ${torchErrors.join('; ')}`);
    return;
  }
  for (const r of refs) {
    console.log(`  torchvision  : median ${median(r.times).toFixed(0)} ms, min ${Math.min(...r.times).toFixed(0)} ms, peak RSS ${r.rss.toFixed(0)} MB, loss ${r.loss.toFixed(3)} (${describeTorch(r.ref)})`);
  }
  const best = refs[0]!;
  const theirs = { medianMs: median(best.times), minMs: Math.min(...best.times) };
  console.log(`  ratio ours/torchvision (the faster torch, ${best.ref.torch}): step time ${(ours.medianMs / theirs.medianMs).toFixed(2)}x (target <= 0.7x), peak RSS ${(ours.peakRssMb / best.rss).toFixed(2)}x (target <= 1.5x)`);
}

runIfScript(import.meta.url, main);
