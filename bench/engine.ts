/**
 * Engine benchmark: a 3x3 convolution, 256 -> 256 channels on 1x64x64, forward and backward
 * (dX + dW), in GFLOP/s, with the faster PyTorch's figures (of every torch found) measured in the same run when
 * installed. `retinanet bench engine [--json] [--threads N]` runs it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Executable, Graph, grad, op, type Tensor } from '../src/engine/index.js';
import { torchPythons } from './detection_common.js';

export interface EngineBenchResult {
  threads: number;
  conv_fwd_s: number;
  conv_bwd_s: number;
  conv_fwd_gflops: number;
  conv_bwd_gflops: number;
  torch?: { torch_version: string; conv_fwd_gflops: number; conv_bwd_gflops: number; conv_fwd_s: number; conv_bwd_s: number; others?: string[] };
  fwd_ratio?: number;
  bwd_ratio?: number;
}

const C = 256;
const H = 64;
const W = 64;
const FLOPS = 2 * C * C * 9 * H * W;

function randn(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

async function bestTime(fn: () => Promise<unknown>, reps: number): Promise<number> {
  await fn();
  await fn();
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return best;
}

async function runTorch(py: string, threads: number, reps: number): Promise<EngineBenchResult['torch']> {
  const script = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bench/engine_torch.py');
  if (!existsSync(script)) return undefined;
  const r = spawnSync(py, [script, String(threads), String(reps)], { encoding: 'utf8' });
  return r.status === 0 ? (JSON.parse(r.stdout.trim()) as EngineBenchResult['torch']) : undefined;
}

/**
 * Runs the benchmark: `rounds` alternations of ours and PyTorch's (so both see the same machine
 * conditions), each `reps` timed repetitions after two warm-ups; the best time of each side counts.
 */
export async function benchEngine(threads: number, reps = 10, withTorch = true, rounds = 3): Promise<EngineBenchResult> {
  const g = new Graph();
  const x = g.param('x', [1, C, H, W]);
  const w = g.param('w', [C, C, 3, 3]);
  const dy = g.input('dy', 'float32', [1, C, H, W]);
  const y = op.conv(x, w, null, { pads: 1 });
  // d(sum(y * dy))/d{x,w} is the conv backward pass for output gradient dy.
  const loss = op.reduceSum(op.mul(y, dy));
  const [dx, dw] = grad(loss, [x, w]) as [Tensor, Tensor];
  const fwd = await Executable.create(g, [y], { threads });
  const bwd = await Executable.create(g, [dx, dw], { threads });
  const feeds = { x: randn(C * H * W, 1), w: randn(C * C * 9, 2), dy: randn(C * H * W, 3) };
  const pythons = withTorch ? torchPythons().map((p) => p.python) : [];
  let tf = Infinity;
  let tb = Infinity;
  // Best times of each torch over the rounds; the faster torch (fwd + bwd) is the reference.
  const perTorch = new Map<string, NonNullable<EngineBenchResult['torch']>>();
  for (let r = 0; r < rounds; r++) {
    tf = Math.min(tf, await bestTime(() => fwd.run(feeds), reps));
    tb = Math.min(tb, await bestTime(() => bwd.run(feeds), reps));
    for (const py of pythons) {
      const t = await runTorch(py, threads, reps);
      if (!t) continue;
      const prev = perTorch.get(py);
      perTorch.set(py, prev ? { ...prev, conv_fwd_s: Math.min(prev.conv_fwd_s, t.conv_fwd_s), conv_bwd_s: Math.min(prev.conv_bwd_s, t.conv_bwd_s) } : t);
    }
  }
  const ranked = [...perTorch.values()].sort((a, b) => a.conv_fwd_s + a.conv_bwd_s - (b.conv_fwd_s + b.conv_bwd_s));
  const torch = ranked[0];
  if (torch) torch.others = ranked.slice(1).map((o) => `${o.torch_version}: ${(FLOPS / o.conv_fwd_s / 1e9).toFixed(1)} / ${((2 * FLOPS) / o.conv_bwd_s / 1e9).toFixed(1)} GFLOP/s`);
  await fwd.release();
  await bwd.release();
  const result: EngineBenchResult = {
    threads,
    conv_fwd_s: tf,
    conv_bwd_s: tb,
    conv_fwd_gflops: FLOPS / tf / 1e9,
    conv_bwd_gflops: (2 * FLOPS) / tb / 1e9,
  };
  if (torch) {
    torch.conv_fwd_gflops = FLOPS / torch.conv_fwd_s / 1e9;
    torch.conv_bwd_gflops = (2 * FLOPS) / torch.conv_bwd_s / 1e9;
    result.torch = torch;
    result.fwd_ratio = result.conv_fwd_gflops / torch.conv_fwd_gflops;
    result.bwd_ratio = result.conv_bwd_gflops / torch.conv_bwd_gflops;
  }
  return result;
}

/** Human-readable table of a result. */
export function formatEngineBench(r: EngineBenchResult): string {
  const rows = [
    '| 3x3 conv 256->256, 1x64x64 | retinanet-ts GFLOP/s | PyTorch GFLOP/s | ratio |',
    '|---|---|---|---|',
    `| forward | ${r.conv_fwd_gflops.toFixed(1)} | ${r.torch ? r.torch.conv_fwd_gflops.toFixed(1) : 'n/a'} | ${r.fwd_ratio ? r.fwd_ratio.toFixed(2) + 'x' : 'n/a'} |`,
    `| backward (dX + dW) | ${r.conv_bwd_gflops.toFixed(1)} | ${r.torch ? r.torch.conv_bwd_gflops.toFixed(1) : 'n/a'} | ${r.bwd_ratio ? r.bwd_ratio.toFixed(2) + 'x' : 'n/a'} |`,
  ];
  const others = r.torch?.others?.length ? ` (the faster torch; also measured ${r.torch.others.join('; ')})` : '';
  const note = r.torch ? `PyTorch ${r.torch.torch_version}${others}, ${r.threads} threads` : 'PyTorch not found (no python3 with torch and torchvision; set TORCH_PYTHON): no reference column';
  return [...rows, '', note].join('\n');
}
