/**
 * Benchmark: COCO bbox evaluation on a seeded COCO-val-sized synthetic set (5000 images,
 * ~36k boxes, 80 classes, 450k detections), ours vs pycocotools in the same run.
 *
 *   node dist/bench/eval_coco.js [--dir DIR] [--skip-python] [--python python3]
 *
 * Prints both times (JSON load + evaluate + accumulate + summarize), the ratio, our peak RSS
 * and whether all 12 stats agree to 1e-9. The data set is generated once into DIR.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { evaluateCoco, type CocoDataset, type CocoResult } from '../src/eval/index.js';
import { runIfScript } from './detection_common.js';
import { writeSyntheticCoco } from './synthetic_coco.js';

/** Runs the benchmark with its command-line flags (`argv` without the script name). */
export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      dir: { type: 'string', default: path.join(os.tmpdir(), 'retinanet-ts-bench-coco') },
      'skip-python': { type: 'boolean', default: false },
      python: { type: 'string', default: 'python3' },
    },
  });

  const dir = values.dir!;
  console.log(`data: ${dir} (seeded synthetic COCO-val-sized set; generated on first use)`);
  const { gtPath, detsPath } = writeSyntheticCoco(dir);

  const t0 = performance.now();
  const gt = JSON.parse(readFileSync(gtPath, 'utf8')) as CocoDataset;
  const dets = JSON.parse(readFileSync(detsPath, 'utf8')) as CocoResult[];
  const t1 = performance.now();
  const result = evaluateCoco(gt, dets);
  const t2 = performance.now();
  const ours = (t2 - t0) / 1000;
  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  console.log(`set: ${gt.images.length} images, ${gt.annotations.length} boxes, ${gt.categories.length} classes, ${dets.length} detections`);
  console.log(`retinanet-ts: ${ours.toFixed(2)} s (load ${((t1 - t0) / 1000).toFixed(2)} s + evaluate ${((t2 - t1) / 1000).toFixed(2)} s), peak RSS ${peakRssMb.toFixed(0)} MB`);

  let py: { seconds: number; evalSeconds: number; stats: number[] } | undefined;
  if (values['skip-python']) {
    console.log('pycocotools: skipped (--skip-python)');
  } else {
    const script = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bench/eval_coco_pycocotools.py');
    const r = spawnSync(values.python!, [script, gtPath, detsPath], { encoding: 'utf8', maxBuffer: 1 << 20 });
    if (r.status === 0) {
      py = JSON.parse(r.stdout.trim().split('\n').pop()!) as { seconds: number; evalSeconds: number; stats: number[] };
      console.log(`pycocotools:  ${py.seconds.toFixed(2)} s (load + evaluate + accumulate + summarize)`);
    } else {
      console.log(`pycocotools: skipped (${values.python} with pycocotools not available: ${(r.stderr || String(r.error)).trim().split('\n').pop()})`);
    }
  }

  const names = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm', 'ARl'];
  console.log(`stats: ${result.statsArray.map((v, i) => `${names[i]}=${v.toFixed(4)}`).join(' ')}`);
  if (py) {
    const maxDiff = Math.max(...result.statsArray.map((v, i) => Math.abs(v - py!.stats[i]!)));
    console.log(`speed-up: ${(py.seconds / ours).toFixed(1)}x`);
    console.log(`12 stats agree to 1e-9: ${maxDiff <= 1e-9 ? 'yes' : 'NO'} (max |diff| ${maxDiff.toExponential(2)})`);
  }
}

runIfScript(import.meta.url, main);
