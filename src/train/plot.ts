/**
 * `results.png` / `results.svg` / `results.csv` of a training run: losses (raw and smoothed),
 * the learning rate and the validation AP / AP50 against the iteration.
 */
import { gridOf, lineChart, type Series } from '../plot/charts.js';
import type { TopLevelSpec } from '../plot/render.js';
import type { StepRecord, ValRecord } from './log.js';

/** A logged loss: a number, or null for a non-finite one (JSON has no NaN), read as NaN (not drawn). */
const lossOf = (v: number | null): number => (v === null ? NaN : v);

/** The largest finite value, at least `floor`; a loop, since spreading a long run into Math.max overflows the stack. */
function finiteMax(xs: readonly number[], floor: number): number {
  let m = floor;
  for (const x of xs) if (Number.isFinite(x) && x > m) m = x;
  return m;
}

function smooth(values: readonly number[], window: number): number[] {
  // Non-finite values (a NaN loss) are left out of the windows they fall in, and stay NaN themselves.
  const out: number[] = [];
  let sum = 0, n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isFinite(v)) (sum += v), n++;
    if (i >= window) {
      const old = values[i - window]!;
      if (Number.isFinite(old)) (sum -= old), n--;
    }
    out.push(Number.isFinite(v) && n > 0 ? sum / n : NaN);
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
  const cls = records.map((r) => lossOf(r.loss_cls)), box = records.map((r) => lossOf(r.loss_box));
  const total = cls.map((c, i) => c + box[i]!);
  const losses: Series[] = [
    { name: 'total (raw)', x: its, y: total },
    { name: 'total', x: its, y: smooth(total, window) },
    { name: 'classification (focal)', x: its, y: smooth(cls, window) },
    { name: 'box regression', x: its, y: smooth(box, window) },
  ];
  const lossChart = lineChart(losses, {
    title: `Loss (moving average over ${window} step${window === 1 ? '' : 's'})`,
    x: { title: 'iteration', integer: true },
    y: { title: 'loss', domain: [0, finiteMax([...(losses[1]!.y as number[]), ...(losses[2]!.y as number[])].filter(Number.isFinite), 1e-6)] },
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
    rows.push([r.iter + 1, r.loss, r.loss_cls, r.loss_box, r.lr, r.num_fg, typeof r.time === 'number' ? r.time.toFixed(3) : '', v ? v.AP : '', v ? v.AP50 : ''].join(','));
  }
  return rows.join('\n') + '\n';
}
