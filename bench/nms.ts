/**
 * NMS benchmark: class-wise NMS of 10k boxes over 80 classes (torchvision's per-class path),
 * timed against torchvision.ops.batched_nms in the same run. Usage:
 *   node dist/bench/nms.js [--boxes 10000] [--classes 80] [--threads 0]
 * (--threads: torch.set_num_threads for the torchvision side; 0 keeps torch's default).
 */
import assert from 'node:assert/strict';
import { parseArgs } from 'node:util';
import { batchedNms } from '../src/detection/index.js';
import { dumpArrays, normal, report, rng, runTorch, runIfScript, time } from './detection_common.js';

/** Runs the benchmark with its command-line flags (`argv` without the script name). */
export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { boxes: { type: 'string', default: '10000' }, classes: { type: 'string', default: '80' }, threads: { type: 'string', default: '0' } } });
  const n = Number(values.boxes);
  const k = Number(values.classes);
  const thr = 0.5;

  // Boxes clustered around 300 objects in a 1333x800 image, like a detector's raw candidates.
  const u = rng(42);
  const g = normal(u);
  const centres = Array.from({ length: 300 }, () => [u() * 1333, u() * 800, 20 + u() * 200, 20 + u() * 200] as const);
  const boxes = new Float32Array(4 * n);
  const scores = new Float32Array(n);
  const idxs = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const [cx, cy, w, h] = centres[Math.floor(u() * centres.length)]!;
    const x = cx + g() * 0.1 * w, y = cy + g() * 0.1 * h, bw = w * (1 + 0.1 * g()), bh = h * (1 + 0.1 * g());
    boxes.set([Math.max(0, x - bw / 2), Math.max(0, y - bh / 2), Math.min(1333, x + bw / 2), Math.min(800, y + bh / 2)], 4 * i);
    scores[i] = u();
    idxs[i] = Math.floor(u() * k);
  }

  const keep = batchedNms(boxes, scores, idxs, thr);
  const ours = time(() => batchedNms(boxes, scores, idxs, thr), 50, 10);
  const dir = dumpArrays({ 'boxes.f32': boxes, 'scores.f32': scores, 'idxs.i32': idxs });
  const theirs = runTorch<{ medianMs: number; minMs: number; threads: number; keep: number[] }>('nms_torchvision.py', [dir, String(n), String(thr), values.threads!]);
  if (typeof theirs !== 'string') assert.deepEqual(Array.from(keep), theirs.keep, 'kept indices differ from torchvision');
  report(`batched NMS: ${n} boxes, ${k} classes, IoU ${thr} -> ${keep.length} kept${typeof theirs === 'string' ? '' : ' (identical to torchvision)'}`, ours, theirs);
}

runIfScript(import.meta.url, main);
