/**
 * Post-processing benchmark: one image's RetinaNet head outputs (default 416x640 padded,
 * ~50k anchors x 80 classes) to detections, timed against torchvision's
 * `RetinaNet.postprocess_detections` in the same run on the same data. Usage:
 *   node dist/bench/postprocess.js [--size 416x640] [--classes 80] [--threads 0]
 */
import assert from 'node:assert/strict';
import { parseArgs } from 'node:util';
import { type LevelOutputs, TORCHVISION_DETECTIONS_PER_IMG, anchorsForImage, postprocessDetections } from '../src/detection/index.js';
import { dumpArrays, normal, report, rng, runTorch, runIfScript, time } from './detection_common.js';

/** Runs the benchmark with its command-line flags (`argv` without the script name). */
export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { size: { type: 'string', default: '416x640' }, classes: { type: 'string', default: '80' }, threads: { type: 'string', default: '0' } } });
  const [ph, pw] = values.size!.split('x').map(Number) as [number, number];
  const k = Number(values.classes);
  const imageSize = [ph - 7, pw - 13] as const; // resized image inside the padded batch tensor

  const anchors = anchorsForImage(ph, pw);
  const numAnchors = anchors.reduce((s, a) => s + a.length / 4, 0);
  // Logits like a trained detector's: mostly confident background (prior ~0.01, sd 1.5), so a
  // few percent of the anchor-class pairs pass the 0.05 threshold and top-k has work to do.
  const g = normal(rng(7));
  const logits = new Float32Array(numAnchors * k);
  for (let i = 0; i < logits.length; i++) logits[i] = -6 + 1.5 * g();
  const deltas = new Float32Array(numAnchors * 4);
  for (let i = 0; i < deltas.length; i++) deltas[i] = 0.3 * g();

  const levels: LevelOutputs[] = [];
  let a0 = 0;
  for (const a of anchors) {
    const n = a.length / 4;
    levels.push({ clsLogits: logits.subarray(a0 * k, (a0 + n) * k), bboxRegression: deltas.subarray(4 * a0, 4 * (a0 + n)), anchors: a });
    a0 += n;
  }
  const opts = { detectionsPerImg: TORCHVISION_DETECTIONS_PER_IMG };
  const dets = postprocessDetections(levels, k, imageSize, opts);
  const ours = time(() => postprocessDetections(levels, k, imageSize, opts), 30, 5);
  const dir = dumpArrays({ 'logits.f32': logits, 'deltas.f32': deltas });
  const theirs = runTorch<{ medianMs: number; minMs: number; threads: number; boxes: number[]; scores: number[]; labels: number[] }>(
    'postprocess_torchvision.py',
    [dir, String(ph), String(pw), String(imageSize[0]), String(imageSize[1]), String(k), String(TORCHVISION_DETECTIONS_PER_IMG), values.threads!],
  );
  let same = '';
  if (typeof theirs !== 'string') {
    assert.deepEqual(Array.from(dets.labels), theirs.labels, 'labels differ from torchvision');
    for (let i = 0; i < theirs.boxes.length; i++) assert.ok(Math.abs(dets.boxes[i]! - theirs.boxes[i]!) <= 1e-3, `box value ${i} differs`);
    same = ' (same detections as torchvision)';
  }
  report(`post-process: ${ph}x${pw} padded, ${numAnchors} anchors x ${k} classes -> ${dets.labels.length} detections${same}`, ours, theirs);
}

runIfScript(import.meta.url, main);
