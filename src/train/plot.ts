/**
 * `results.png` / `results.svg` / `results.csv` of a training run: losses (raw and smoothed),
 * the learning rate and the validation AP / AP50 against the iteration.
 */
import { gridOf, lineChart, type Series } from '../plot/charts.js';
import type { TopLevelSpec } from '../plot/render.js';
import type { StepRecord, ValRecord } from './log.js';

function smooth(values: readonly number[], window: number): number[] {
  const out: number[] = [];
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    sum += values[i]!;
    if (i >= window) sum -= values[i - window]!;
    out.push(sum / Math.min(i + 1, window));
  }
  return out;
}

/**
 * The results figure: classification, box and total loss (moving average over ~1% of the run,
 * the raw total faint behind), the learning rate, and validation AP / AP50 when the run validated.
 */
export function resultsSpec(records: readonly StepRecord[], vals: readonly ValRecord[], title = 'Training run'): TopLevelSpec {
  // x is the steps done, as in results.csv, the validation records and the checkpoints' names.
  const its = records.map((r) => r.iter + 1);
  const window = Math.max(1, Math.round(records.length / 100));
  const total = records.map((r) => r.loss_cls + r.loss_box);
  const losses: Series[] = [
    { name: 'total (raw)', x: its, y: total },
    { name: 'total', x: its, y: smooth(total, window) },
    { name: 'classification (focal)', x: its, y: smooth(records.map((r) => r.loss_cls), window) },
    { name: 'box regression', x: its, y: smooth(records.map((r) => r.loss_box), window) },
  ];
  const lossChart = lineChart(losses, {
    title: `Loss (moving average over ${window} step${window === 1 ? '' : 's'})`,
    x: { title: 'iteration', integer: true },
    y: { title: 'loss', domain: [0, Math.max(1e-6, ...losses[1]!.y as number[], ...(losses[2]!.y as number[]))] },
    colors: ['#d9d9d9', '#222222', '#d62728', '#1f77b4'],
    emphasize: ['total'],
    legendOrient: 'bottom',
    width: 380,
    height: 260,
  });
  const lrChart = lineChart([{ name: 'learning rate', x: its, y: records.map((r) => r.lr) }], { title: 'Learning rate', x: { title: 'iteration', integer: true }, y: { title: 'lr' }, colors: ['#2ca02c'], width: 300, height: 260 });
  const charts = [lossChart, lrChart];
  if (vals.length > 0) {
    const vi = vals.map((v) => v.iter);
    const last = vals[vals.length - 1]!;
    charts.push(
      lineChart(
        [
          { name: 'AP50', x: vi, y: vals.map((v) => v.AP50) },
          { name: 'AP (0.50:0.95)', x: vi, y: vals.map((v) => v.AP) },
        ],
        { title: `Validation (last: AP ${last.AP.toFixed(3)}, AP50 ${last.AP50.toFixed(3)})`, x: { title: 'iteration', integer: true }, y: { title: 'COCO AP', domain: [0, 1] }, colors: ['#ff7f0e', '#9467bd'], legendOrient: 'bottom', width: 300, height: 260 },
      ),
    );
  }
  return gridOf([charts], title);
}

/**
 * `results.csv`: one row per step (iteration, losses, lr, seconds), with AP and AP50 on the rows
 * where a validation ran. `iter` counts the steps done (1 for the first step; log.jsonl's step
 * records number from 0), as the validation records, the progress messages and the checkpoints do.
 */
export function resultsCsv(records: readonly StepRecord[], vals: readonly ValRecord[]): string {
  const byIter = new Map(vals.map((v) => [v.iter, v] as const));
  const rows = ['iter,loss,loss_cls,loss_box,lr,num_fg,time,AP,AP50'];
  for (const r of records) {
    const v = byIter.get(r.iter + 1);
    rows.push([r.iter + 1, r.loss, r.loss_cls, r.loss_box, r.lr, r.num_fg, r.time.toFixed(3), v ? v.AP : '', v ? v.AP50 : ''].join(','));
  }
  return rows.join('\n') + '\n';
}
