/**
 * The paper's focal-loss ablation (Table 1a/1b) in miniature, on the built-in synthetic data:
 * the demo model trained from scratch with cross-entropy, alpha-balanced CE and the focal loss
 * for gamma in {0.5, 1, 2, 5} (alpha as in Table 1b), each for the same number of iterations
 * and seed, then COCO AP on the held-out split. `retinanet bench ablation [--iters N] [--seed S]`.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { mergeConfig } from '../src/model/config.js';
import { RetinaNet } from '../src/model/model.js';
import { evaluateModel } from '../src/model/evaluate.js';
import { DEMO_DEFAULTS, demoConfig, demoTrainOptions } from '../src/train/demo_config.js';
import { syntheticSources } from '../src/data/synthetic_source.js';
import { Trainer } from '../src/train/trainer.js';
import { runIfScript } from './detection_common.js';

export const ABLATION_SETTINGS: readonly { label: string; gamma: number; alpha: number }[] = [
  { label: 'CE (no alpha)', gamma: 0, alpha: -1 },
  { label: 'alpha-balanced CE', gamma: 0, alpha: 0.75 },
  { label: 'FL gamma 0.5', gamma: 0.5, alpha: 0.5 },
  { label: 'FL gamma 1', gamma: 1, alpha: 0.25 },
  { label: 'FL gamma 2', gamma: 2, alpha: 0.25 },
  { label: 'FL gamma 5', gamma: 5, alpha: 0.25 },
];

export async function main(argv: string[]): Promise<void> {
  const get = (name: string, d: number): number => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? Number(argv[i + 1]) : d;
  };
  const iters = get('iters', 400);
  const seed = get('seed', 0);
  const threads = argv.includes('--threads') ? get('threads', 2) : undefined;
  const { train, val } = syntheticSources({ seed });
  const rows: string[] = ['| loss | gamma | alpha | AP | AP50 | AP75 | APs | final cls loss |', '|---|---|---|---|---|---|---|---|'];
  for (const s of ABLATION_SETTINGS) {
    const cfg = mergeConfig(demoConfig(), { loss: { classification: 'focal', gamma: s.gamma, alpha: s.alpha } });
    const model = new RetinaNet(cfg, seed);
    const out = mkdtempSync(path.join(tmpdir(), 'retinanet-ablation-'));
    const trainer = new Trainer(model, train, demoTrainOptions({ iters, seed, threads, outDir: out }));
    const t0 = performance.now();
    const r = await trainer.run();
    const secs = (performance.now() - t0) / 1000;
    if (r.stopped !== 'done') {
      rows.push(`| ${s.label} | ${s.gamma} | ${s.alpha} | diverged: ${r.message ?? r.stopped} | | | | |`);
      console.error(`${s.label}: ${r.stopped}`);
      continue;
    }
    const { result } = await evaluateModel(model, val, { threads });
    const last = r.records.slice(-20);
    const cls = last.reduce((a, x) => a + x.loss_cls, 0) / last.length;
    const st = result.stats;
    rows.push(`| ${s.label} | ${s.gamma} | ${s.alpha} | ${st.AP.toFixed(3)} | ${st.AP50.toFixed(3)} | ${st.AP75.toFixed(3)} | ${st.APs.toFixed(3)} | ${cls.toFixed(4)} |`);
    console.error(`${s.label}: AP ${st.AP.toFixed(3)} (${secs.toFixed(0)} s), log in ${out}`);
    await model.dispose();
  }
  console.log(`Focal-loss ablation: demo model, ${iters} iterations of ${DEMO_DEFAULTS.batch}, seed ${seed}, ${val.length} held-out images\n`);
  console.log(rows.join('\n'));
}

runIfScript(import.meta.url, main);
