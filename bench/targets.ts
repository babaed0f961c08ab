/**
 * Target-assignment benchmark: match the anchors of one 800x1333 image (padded 800x1344,
 * 201,600 anchors) to 50 gt boxes and encode the foreground targets. Reports the time with a
 * prebuilt AnchorIndex (built once per padded size and cached), the one-off index build,
 * and torchvision's box_iou + Matcher + encode in the same run. Usage:
 *   node dist/bench/targets.js [--gt 50] [--threads 0]
 */
import assert from 'node:assert/strict';
import { parseArgs } from 'node:util';
import { AnchorIndex, anchorsForImage, assignTargets, concatLevels } from '../src/detection/index.js';
import { dumpArrays, report, rng, runTorch, runIfScript, time } from './detection_common.js';

/** Runs the benchmark with its command-line flags (`argv` without the script name). */
export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { gt: { type: 'string', default: '50' }, threads: { type: 'string', default: '0' } } });
  const m = Number(values.gt);
  const anchors = concatLevels(anchorsForImage(800, 1344));
  const n = anchors.length / 4;

  // COCO-like mix of small, medium and large objects inside the 800x1333 image.
  const u = rng(11);
  const gt = new Float32Array(4 * m);
  for (let j = 0; j < m; j++) {
    const w = 8 + u() ** 2 * 600, h = 8 + u() ** 2 * 500;
    const x = u() * (1333 - w), y = u() * (800 - h);
    gt.set([x, y, x + w, y + h], 4 * j);
  }
  const labels = Int32Array.from({ length: m }, (_, j) => j % 80);

  const build = time(() => new AnchorIndex(anchors), 10, 2);
  const index = new AnchorIndex(anchors);
  const opts = { index, imageSize: [800, 1333] as const };
  const r = assignTargets(anchors, gt, labels, opts);
  const ours = time(() => assignTargets(anchors, gt, labels, opts), 50, 10);
  const dir = dumpArrays({ 'anchors.f32': anchors, 'gt.f32': gt });
  const theirs = runTorch<{ medianMs: number; minMs: number; threads: number; matched: number[] }>('targets_torchvision.py', [dir, String(n), String(m), values.threads!]);
  if (typeof theirs !== 'string') assert.deepEqual(Array.from(r.matchedIdxs), theirs.matched, 'matched indices differ from torchvision');
  report(
    `target assignment: ${n} anchors x ${m} gt boxes -> ${r.foreground.length} foreground${typeof theirs === 'string' ? '' : ' (matches identical to torchvision)'}`,
    ours,
    theirs,
  );
  console.log(`  AnchorIndex build (once per padded size): median ${build.medianMs.toFixed(3)} ms`);
}

runIfScript(import.meta.url, main);
