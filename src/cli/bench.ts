/**
 * `retinanet bench <name>`: runs one of the benchmarks in bench/ (each also runs on its own as
 * `node dist/bench/<name>.js`). Benchmarks are imported only when run, so the CLI's start-up
 * does not load the detection code for every other command.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { type Command, UserError } from './command.js';
import { numberFlag } from './common.js';

/** One benchmark as the `bench` command knows it. */
export interface BenchmarkInfo {
  name: string;
  /** One line for the listing. */
  summary: string;
  /** Flags of its own, forwarded to it (shown in the listing). */
  flags: string;
  /** Whether it takes `--threads N` (for the `nms`, `postprocess`, `targets` benchmarks: torch's threads). */
  threads: boolean;
}

/** The benchmarks, in listing order. */
export const BENCHMARKS: readonly BenchmarkInfo[] = [
  { name: 'engine', summary: '3x3 conv 256->256 on 1x64x64, forward and backward GFLOP/s (vs PyTorch when installed)', flags: '[--json] [--threads N] [--reps N] [--no-torch]', threads: true },
  { name: 'eval', summary: 'COCO evaluation of a COCO-val-sized synthetic set (vs pycocotools when installed)', flags: '[--dir DIR] [--skip-python] [--python PY]', threads: false },
  { name: 'nms', summary: 'class-wise NMS of 10k boxes over 80 classes (vs torchvision batched_nms)', flags: '[--boxes N] [--classes K] [--threads N]', threads: true },
  { name: 'postprocess', summary: 'post-processing of ~50k anchors x 80 classes (vs torchvision postprocess_detections)', flags: '[--size HxW] [--classes K] [--threads N]', threads: true },
  { name: 'targets', summary: 'anchor-to-gt matching and box encoding, 201,600 anchors x 50 boxes (vs torchvision)', flags: '[--gt N] [--threads N]', threads: true },
  { name: 'detect', summary: 'retinanet_resnet50_fpn whole detect path on one 512x640 image (vs torchvision)', flags: '[--threads N] [--runs N] [--size HxW]', threads: true },
  { name: 'ablation', summary: 'focal-loss ablation in miniature: CE, alpha-balanced CE, gamma 0.5/1/2/5 on synthetic data (long: ~25 min)', flags: '[--iters N] [--seed S] [--threads N]', threads: true },
  { name: 'bccd', summary: 'BCCD from scratch for the same wall-clock time as torchvision, COCO AP on test.txt (long: ~35 min)', flags: '[--data DIR] [--tv-iters N] [--seed S] [--lr X] [--threads N] [--out DIR]', threads: true },
  { name: 'scratch', summary: 'from scratch at equal wall-clock time: today\'s BCCD recipe, the automatic recipe, torchvision with it; COCO AP on held-out images (3 x --budget)', flags: '[--data bccd|raccoon [--root DIR] | --train P --test P] [--budget 15m] [--runs today,auto,torchvision] [--seed S] [--threads N] [--out DIR]; --merge DIR,DIR,... [--out DIR]', threads: true },
  { name: 'train-step', summary: 'one SGD step of retinanet_resnet50_fpn (batch 2 x 512x512) or a from-scratch GroupNorm model (--model scratch32|scratch64, batch 4 x 256): time and peak RSS (vs torchvision)', flags: '[--model r50|scratch32|scratch64] [--threads N] [--runs N] [--rounds R] [--batch N] [--size S] [--classes K]', threads: true },
  { name: 'browser', summary: 'detect per image and a training step in Chromium (onnxruntime-web, wasm threads) vs Node, same model and image', flags: '[--arch A] [--size HxW] [--train-size HxW] [--runs N] [--threads N] [--no-train]', threads: true },
  { name: 'export', summary: 'retinanet_resnet50_fpn exported to ONNX, float32 vs int8 detect per image on 512x640 (and RetinaNet.detect)', flags: '[--threads N] [--runs N] [--rounds R] [--size HxW] [--calibrate-images N] [--weights FILE]', threads: true },
  { name: 'queue', summary: 'detect throughput over the BullMQ queue with 1 and N workers vs one process (needs redis-server)', flags: '[--images N] [--size HxW] [--workers N] [--threads T] [--shard-size S]', threads: true },
  { name: 'paper', summary: "the focal loss paper's Table 1a-1d, prior check and Figure 4 in miniature on a COCO-imbalanced synthetic set (smoke: seconds; mini: ~3 h on 2 cores)", flags: '[--preset mini|full|smoke] [--seeds N] [--seed S] [--json] [--out DIR] [--rows FILTER] [--jobs J] [--threads T] [--lr X] [--list] (--help for all)', threads: true },
];

function listing(): string {
  const width = Math.max(...BENCHMARKS.map((b) => b.name.length));
  return BENCHMARKS.map((b) => `  ${b.name.padEnd(width)}  ${b.summary}\n  ${' '.repeat(width)}  ${b.flags}`).join('\n');
}

const help = `Usage: retinanet bench <name> [options]
       retinanet bench            (lists the benchmarks)

Runs a benchmark of bench/. Reference implementations (PyTorch, torchvision, pycocotools) run
in a child process in the same run when python3 has them; otherwise their columns are skipped.

Benchmarks:
${listing()}

Options:
  --json         engine: print one JSON object (threads, conv_fwd_s, conv_bwd_s,
                 conv_fwd_gflops, conv_bwd_gflops, and torch, fwd_ratio, bwd_ratio with PyTorch);
                 paper: print {rows:[...]}, one per run (retinanet bench paper --help)
  --threads N    engine: ONNX Runtime and PyTorch threads (default: all cores);
                 nms, postprocess, targets: torchvision's threads (default: torch's own)
  --reps N       engine: timed repetitions, best taken (default 10)
  --no-torch     engine: skip the PyTorch reference

Also: npm run bench -- <name> [options] (after npm run build).`;

async function runEngine(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { json: { type: 'boolean' }, threads: { type: 'string' }, reps: { type: 'string' }, 'no-torch': { type: 'boolean' } },
    allowPositionals: false,
  });
  const threads = numberFlag(values, 'threads', { integer: true, min: 1 }) ?? os.availableParallelism();
  const reps = numberFlag(values, 'reps', { integer: true, min: 1 }) ?? 10;
  const { benchEngine, formatEngineBench } = await import('../../bench/engine.js');
  const result = await benchEngine(threads, reps, values['no-torch'] !== true);
  // --json output is meant for scripts: exactly one JSON object on stdout, nothing else.
  console.log(values.json ? JSON.stringify(result) : formatEngineBench(result));
  return 0;
}

/** Runs a script benchmark's `main` with its own flags (checked by it; parse errors exit 2). */
async function runScript(info: BenchmarkInfo, argv: string[]): Promise<number> {
  if (argv.includes('--json') && info.name !== 'paper') throw new UserError(`--json is supported by 'bench engine' and 'bench paper' only; '${info.name}' prints a text report`);
  if (!info.threads && argv.some((a) => a === '--threads' || a.startsWith('--threads='))) throw new UserError(`'bench ${info.name}' takes no --threads`);
  const threadsAt = argv.findIndex((a) => a === '--threads');
  if (threadsAt >= 0) {
    const raw = argv[threadsAt + 1];
    // Checked here so a bad value is a usage error rather than a failure inside torch.
    numberFlag({ threads: raw }, 'threads', { integer: true, min: 0 });
  }
  const modules: Record<string, () => Promise<{ main(argv: string[]): Promise<void> }>> = {
    eval: () => import('../../bench/eval_coco.js'),
    nms: () => import('../../bench/nms.js'),
    postprocess: () => import('../../bench/postprocess.js'),
    targets: () => import('../../bench/targets.js'),
    detect: () => import('../../bench/detect.js'),
    'train-step': () => import('../../bench/train_step.js'),
    ablation: () => import('../../bench/focal_ablation.js'),
    bccd: () => import('../../bench/bccd.js'),
    export: () => import('../../bench/export.js'),
    queue: () => import('../../bench/queue.js'),
    paper: () => import('../../bench/paper.js'),
    browser: () => import('../../bench/browser.js'),
    scratch: () => import('../../bench/scratch.js'),
  };
  const load = modules[info.name];
  if (!load) throw new Error(`benchmark '${info.name}' has no module`);
  await (await load()).main(argv);
  return 0;
}

async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    console.log(`Benchmarks (run one with 'retinanet bench <name>'):\n${listing()}`);
    return 0;
  }
  if (name.startsWith('-')) throw new UserError(`give the benchmark's name before its options, e.g. 'retinanet bench engine ${name}'; available: ${BENCHMARKS.map((b) => b.name).join(', ')}`);
  const info = BENCHMARKS.find((b) => b.name === name);
  if (!info) throw new UserError(`unknown benchmark '${name}'; available: ${BENCHMARKS.map((b) => b.name).join(', ')}`);
  return info.name === 'engine' ? runEngine(rest) : runScript(info, rest);
}

/** `bench paper --help`: the paper bench's own flags (too many for the listing). */
async function helpFor(argv: string[]): Promise<string | undefined> {
  if (argv[0] !== 'paper') return undefined;
  return (await import('../../bench/paper.js')).PAPER_HELP;
}

export const benchCommand: Command = { name: 'bench', summary: 'run a benchmark (engine, eval, nms, postprocess, targets, detect, train-step, ablation, bccd, scratch, browser, export, queue, paper)', help, helpFor, run };
