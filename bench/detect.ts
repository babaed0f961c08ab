/**
 * Inference benchmark: retinanet_resnet50_fpn (91 classes) on one 512x640 image, the whole
 * detect path (preprocess, network, post-process), against torchvision in the same run. Both
 * sides use the same deterministic hash weights (src/nn/hash_init.ts), so they do the same
 * post-processing work. `retinanet bench detect [--threads N] [--runs N] [--size HxW]`.
 */
import { InputError } from '../src/core/errors.js';
import { numberFlag } from '../src/core/flags.js';
import { configFor } from '../src/model/config.js';
import { RetinaNet } from '../src/model/model.js';
import { hashUniform, hashWeight } from '../src/nn/hash_init.js';
import { describeReference, runIfScript, runTorch } from './detection_common.js';

function parse(argv: string[]): { threads: number; runs: number; h: number; w: number } {
  const values: Record<string, string> = {};
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i]!;
    if (!['--threads', '--runs', '--size'].includes(flag) || argv[i + 1] === undefined) {
      throw new InputError(`bench detect: unknown or incomplete option '${flag}' (takes --threads N, --runs N, --size HxW)`);
    }
    values[flag.slice(2)] = argv[i + 1]!;
  }
  const size = /^(\d+)x(\d+)$/.exec(values['size'] ?? '512x640');
  if (!size || Number(size[1]) < 1 || Number(size[2]) < 1) throw new InputError(`--size must be HxW, got '${values['size']}'`);
  return {
    threads: numberFlag(values, 'threads', { integer: true, min: 1 }) ?? 2,
    runs: numberFlag(values, 'runs', { integer: true, min: 1 }) ?? 8,
    h: Number(size[1]),
    w: Number(size[2]),
  };
}

export async function main(argv: string[]): Promise<void> {
  const { threads, runs, h, w } = parse(argv);
  const cfg = configFor('retinanet_resnet50_fpn', { transform: { minSize: Math.min(h, w), maxSize: Math.max(h, w) }, inference: { detectionsPerImg: 300 } });
  const model = new RetinaNet(cfg);
  for (const [name, info] of model.store.info) model.store.values.set(name, hashWeight(name, info.shape));
  const image = { data: Float32Array.from(hashUniform('bench-image', 3 * h * w)), height: h, width: w };
  const t0 = performance.now();
  let det = (await model.detect([image], { threads }))[0]!;
  const firstMs = performance.now() - t0;
  await model.detect([image], { threads });
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const s = performance.now();
    det = (await model.detect([image], { threads }))[0]!;
    times.push(performance.now() - s);
  }
  times.sort((a, b) => a - b);
  const ours = { medianMs: times[times.length >> 1]!, minMs: times[0]! };
  const torch = runTorch<{ medianMs: number; minMs: number; threads: number; detections: number }>('detect_torchvision.py', [String(h), String(w), String(threads), String(runs)]);
  console.log(`retinanet_resnet50_fpn, one ${h}x${w} image, whole detect path, ${threads} threads`);
  console.log(`  retinanet-ts : median ${ours.medianMs.toFixed(1)} ms, min ${ours.minMs.toFixed(1)} ms (${runs} runs; first call incl. compile ${firstMs.toFixed(0)} ms), ${det.scores.length} detections`);
  if (typeof torch === 'string') {
    console.log(`  torchvision  : ${torch}`);
    return;
  }
  console.log(`  torchvision  : median ${torch.medianMs.toFixed(1)} ms, min ${torch.minMs.toFixed(1)} ms, ${torch.detections} detections; ${describeReference(torch)}`);
  console.log(`  ratio ours/torchvision (median): ${(ours.medianMs / torch.medianMs).toFixed(2)}x (target <= 0.5x fp32, issue 16)`);
  await model.dispose();
}

runIfScript(import.meta.url, main);
