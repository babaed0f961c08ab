/**
 * The report of `retinanet bench paper`: runs (paper_worker.ts results) gathered into the
 * paper's tables with its numbers beside ours (markdown), the rows as JSON, and Figure 4 as SVG.
 * Pure functions of the results: the learning rates are chosen here, on val AP, never test AP.
 */
import type { RatioSummary } from './paper_data.js';
import type { ApStats, LossCdf, RunResult } from './paper_worker.js';
import { BASELINE_ROW, FIGURE4_ROW, type Plan, ROWS, TABLES, rowById } from './paper_spec.js';

const KEYS = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl'] as const;

/** A row's numbers at one learning rate over its seeds: mean and sample standard deviation. */
export interface RowAtLr {
  lr: number;
  /** Seeds run, and how many of them ended without a non-finite loss. */
  seeds: number[];
  finished: number;
  /** Mean over the finished seeds (a diverged seed is left out and counted in `finished`). */
  mean?: ApStats;
  /** Standard deviation of test AP over finished seeds (0 with one seed). */
  sdAP?: number;
  valAP?: number;
  wall_s: number;
  lossFirst: number;
  lossLast: number;
}

export interface RowSummary {
  row: string;
  label: string;
  /** At the learning rate chosen on the CE baseline's val AP (undefined if this row did not run at it). */
  fixed?: RowAtLr;
  /** At this row's own best learning rate on val AP (over the rates it ran). */
  tuned?: RowAtLr;
  /** Every rate this row ran. */
  byLr: RowAtLr[];
}

export interface PaperReport {
  preset: string;
  iters: number;
  /** The one rate for all rows (best val AP of the CE baseline), when the baseline ran. */
  fixedLr?: number;
  summaries: RowSummary[];
  runs: RunResult[];
  figure4?: LossCdf;
  imbalance?: RatioSummary[];
}

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function sd(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
}

function atLr(runs: readonly RunResult[], lr: number): RowAtLr {
  const here = runs.filter((r) => r.lr === lr);
  const ok = here.filter((r) => r.stopped === 'done' && r.test && r.val);
  const out: RowAtLr = {
    lr,
    seeds: here.map((r) => r.seed),
    finished: ok.length,
    wall_s: mean(here.map((r) => r.wall_s)),
    lossFirst: mean(here.map((r) => r.lossFirst)),
    lossLast: mean(here.map((r) => r.lossLast)),
  };
  if (ok.length) {
    out.mean = Object.fromEntries(KEYS.map((k) => [k, mean(ok.map((r) => r.test![k]))])) as unknown as ApStats;
    out.sdAP = sd(ok.map((r) => r.test!.AP));
    out.valAP = mean(ok.map((r) => r.val!.AP));
  }
  return out;
}

/** Best rate by mean val AP (a rate where every seed diverged scores -1; ties: the lower rate). */
function bestLr(list: readonly RowAtLr[]): RowAtLr | undefined {
  let best: RowAtLr | undefined;
  for (const x of [...list].sort((a, b) => a.lr - b.lr)) if (!best || (x.valAP ?? -1) > (best.valAP ?? -1)) best = x;
  return best;
}

/** The rate tuned on the CE baseline: its best mean val AP over the grid. */
export function chooseFixedLr(runs: readonly RunResult[]): number | undefined {
  const base = runs.filter((r) => r.row === BASELINE_ROW);
  const lrs = [...new Set(base.map((r) => r.lr))];
  return bestLr(lrs.map((lr) => atLr(base, lr)))?.lr;
}

export function buildReport(plan: Plan, runs: readonly RunResult[], fixedLr: number | undefined, imbalance?: RatioSummary[]): PaperReport {
  const summaries: RowSummary[] = [];
  for (const id of plan.rows) {
    const mine = runs.filter((r) => r.row === id);
    if (!mine.length) continue;
    const byLr = [...new Set(mine.map((r) => r.lr))].sort((a, b) => a - b).map((lr) => atLr(mine, lr));
    summaries.push({
      row: id,
      label: rowById(id).label,
      fixed: fixedLr === undefined ? undefined : byLr.find((x) => x.lr === fixedLr),
      tuned: bestLr(byLr),
      byLr,
    });
  }
  const fig = runs.filter((r) => r.row === FIGURE4_ROW && r.figure4 && (fixedLr === undefined || r.lr === fixedLr)).sort((a, b) => a.seed - b.seed)[0];
  return { preset: plan.preset.name, iters: plan.preset.iters, fixedLr, summaries, runs: [...runs], figure4: fig?.figure4, imbalance };
}

/** The rows of `--json`: one per run, with the row's loss settings and its test numbers. */
export function jsonRows(report: PaperReport): object[] {
  return report.runs.map((r) => {
    const spec = rowById(r.row);
    const t = r.test;
    return {
      row: r.row,
      label: spec.label,
      loss: spec.loss,
      gamma: spec.gamma,
      alpha: spec.alpha,
      anchors: `${spec.scales}x${spec.ratios}`,
      prior: spec.prior,
      clip: spec.clip,
      AP: t?.AP ?? null,
      AP50: t?.AP50 ?? null,
      AP75: t?.AP75 ?? null,
      APs: t?.APs ?? null,
      APm: t?.APm ?? null,
      APl: t?.APl ?? null,
      valAP: r.val?.AP ?? null,
      lr: r.lr,
      fixedLr: r.lr === report.fixedLr,
      wall_s: r.wall_s,
      seed: r.seed,
      stopped: r.stopped,
      iterations: r.iterations,
      lossFirst: r.lossFirst,
      lossLast: r.lossLast,
      ...(r.ohem ? { ohemPerImage: r.ohem } : {}),
    };
  });
}

const pct = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '–' : x < 0 ? 'n/a' : (100 * x).toFixed(1));

function cell(x: RowAtLr | undefined, key: (typeof KEYS)[number]): string {
  if (!x) return 'not run';
  if (!x.mean) return `diverged (${x.seeds.length - x.finished}/${x.seeds.length})`;
  const v = pct(x.mean[key]);
  if (key !== 'AP') return v;
  const lost = x.seeds.length - x.finished;
  return `${v}${x.finished > 1 ? ` ± ${pct(x.sdAP)}` : ''}${lost ? ` (${lost} of ${x.seeds.length} diverged)` : ''}`;
}

/** The markdown tables: the paper's numbers beside ours (AP in percent, as the paper prints it). */
export function markdownReport(report: PaperReport, plan: Plan): string {
  const p = plan.preset;
  const d = p.data;
  const seeds = plan.seeds.length;
  const lines: string[] = [
    `# bench paper: preset ${p.name}`,
    '',
    `Synthetic set: ${d.imageSize} px, ${d.train}/${d.val}/${d.test} train/val/test images, ${d.minObjects}-${d.maxObjects} objects of ${d.minObjectSize}-${d.maxObjectSize} px, ${d.minDistractors}-${d.maxDistractors} distractors; model: demo RetinaNet (ResNet-18 width ${p.width}, FPN ${p.channels}); ${p.iters} iterations of batch ${p.batch}; ${seeds} seed(s) per row (${plan.seeds.join(', ')}).`,
    `Learning rate for all rows (best CE-baseline val AP over ${p.lrs.join(', ')}): ${report.fixedLr ?? 'not tuned (baseline not run)'}. AP on the test split, in percent; ± is the seed-to-seed standard deviation; "tuned" is each row at its own best val-AP rate.`,
    '',
  ];
  if (report.imbalance?.length) {
    lines.push('## Imbalance (background : foreground anchors per image)', '', '| set | setting | anchors / image | fg / image (median) | bg:fg median | bg:fg pooled |', '|---|---|---|---|---|---|');
    for (const s of report.imbalance) lines.push(`| ${s.name} | ${s.setting} | ${s.anchorsPerImage.toFixed(0)} | ${s.foregroundPerImage.median} | ${s.ratio.median.toFixed(0)}:1 | ${s.ratio.pooled.toFixed(0)}:1 |`);
    lines.push('');
  }
  const byRow = new Map(report.summaries.map((s) => [s.row, s]));
  for (const t of TABLES) {
    const rows = t.rows.filter((r) => byRow.has(r.row));
    if (!rows.length) continue;
    lines.push(`## ${t.title}`, '', `Paper: ${t.paperSetting}.`, '');
    lines.push('| row | paper AP | paper AP50 | paper AP75 | AP | AP50 | AP75 | APs | APm | APl | lr | AP (tuned lr) | tuned lr | s / run | cls loss first → last 10% |');
    lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const r of rows) {
      const s = byRow.get(r.row)!;
      const f = s.fixed ?? (report.fixedLr === undefined ? s.tuned : undefined);
      const paper = r.paper ? [r.paper.AP, r.paper.AP50, r.paper.AP75].map((x) => x.toFixed(1)) : [r.paperNote ?? '–', '', ''];
      const loss = f ? `${f.lossFirst.toFixed(3)} → ${f.lossLast.toFixed(3)}` : '–';
      lines.push(`| ${s.label} | ${paper.join(' | ')} | ${KEYS.map((k) => cell(f, k)).join(' | ')} | ${f?.lr ?? '–'} | ${cell(s.tuned, 'AP')} | ${s.tuned?.lr ?? '–'} | ${f ? f.wall_s.toFixed(0) : '–'} | ${loss} |`);
    }
    lines.push('');
  }
  const other = report.summaries.filter((s) => !TABLES.some((t) => t.rows.some((r) => r.row === s.row)));
  if (other.length) lines.push(`Rows in no table: ${other.map((s) => s.row).join(', ')}.`, '');
  if (report.figure4) {
    const f = report.figure4;
    lines.push(
      '## Figure 4: cumulative normalised loss of the converged FL (gamma 2) model',
      '',
      `${f.images} test images: ${f.counts.positive} foreground and ${f.counts.negative} background anchors. Share of the total loss carried by the hardest 20% / 5% of anchors:`,
      '',
      '| gamma | fg: hardest 20% | fg: hardest 5% | bg: hardest 20% | bg: hardest 5% |',
      '|---|---|---|---|---|',
    );
    const share = (cdf: number[], frac: number): string => pct(1 - cdf[Math.round((1 - frac) * (f.points - 1))]!);
    f.gammas.forEach((g, i) => lines.push(`| ${g} | ${share(f.positive[i]!, 0.2)} | ${share(f.positive[i]!, 0.05)} | ${share(f.negative[i]!, 0.2)} | ${share(f.negative[i]!, 0.05)} |`));
    lines.push('', '![Figure 4](figure4.svg)', '');
  }
  return lines.join('\n');
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const COLORS = ['#1f77b4', '#2ca02c', '#ff7f0e', '#d62728', '#9467bd'];

/**
 * Figure 4 as the paper draws it: two panels (foreground, background), x the fraction of anchors
 * sorted by increasing loss, y the cumulative normalised loss, one curve per gamma.
 */
export function figure4Svg(f: LossCdf): string {
  const PW = 300;
  const PH = 260;
  const m = { l: 55, t: 40, b: 45, gap: 70 };
  const W = m.l + 2 * PW + m.gap + 20;
  const H = m.t + PH + m.b;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
  ];
  const panels: [string, number[][]][] = [
    ['positive (foreground) anchors', f.positive],
    ['negative (background) anchors', f.negative],
  ];
  panels.forEach(([title, curves], p) => {
    const x0 = m.l + p * (PW + m.gap);
    const x = (v: number): string => (x0 + v * PW).toFixed(1);
    const y = (v: number): string => (m.t + (1 - v) * PH).toFixed(1);
    out.push(`<text x="${x0 + PW / 2}" y="${m.t - 14}" text-anchor="middle" font-size="13">CDF of loss, ${esc(title)}</text>`);
    for (let k = 0; k <= 5; k++) {
      const v = k / 5;
      out.push(`<line x1="${x(v)}" y1="${y(0)}" x2="${x(v)}" y2="${y(1)}" stroke="#e5e5e5"/>`, `<line x1="${x(0)}" y1="${y(v)}" x2="${x(1)}" y2="${y(v)}" stroke="#e5e5e5"/>`);
      out.push(`<text x="${x(v)}" y="${m.t + PH + 15}" text-anchor="middle">${v.toFixed(1)}</text>`, `<text x="${x0 - 6}" y="${Number(y(v)) + 4}" text-anchor="end">${v.toFixed(1)}</text>`);
    }
    out.push(`<rect x="${x0}" y="${m.t}" width="${PW}" height="${PH}" fill="none" stroke="#333"/>`);
    out.push(`<text x="${x0 + PW / 2}" y="${H - 10}" text-anchor="middle">fraction of ${p === 0 ? 'foreground' : 'background'} examples</text>`);
    out.push(`<text x="${x0 - 38}" y="${m.t + PH / 2}" text-anchor="middle" transform="rotate(-90 ${x0 - 38} ${m.t + PH / 2})">cumulative normalized loss</text>`);
    curves.forEach((c, i) => {
      const pts = c.map((v, j) => (Number.isFinite(v) ? `${x(j / (c.length - 1))},${y(v)}` : '')).filter(Boolean);
      const color = COLORS[i % COLORS.length]!;
      if (pts.length) out.push(`<polyline fill="none" stroke="${color}" stroke-width="1.8" points="${pts.join(' ')}"/>`);
      const ly = m.t + 16 + 15 * i;
      out.push(`<line x1="${x0 + 12}" y1="${ly - 4}" x2="${x0 + 30}" y2="${ly - 4}" stroke="${color}" stroke-width="2"/>`, `<text x="${x0 + 35}" y="${ly}">γ = ${f.gammas[i]}</text>`);
    });
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** A short text summary for the terminal (the markdown has everything). */
export function textSummary(report: PaperReport): string {
  const lines = [`bench paper (${report.preset}, ${report.iters} iterations): fixed lr ${report.fixedLr ?? '-'}`];
  const w = Math.max(...ROWS.map((r) => r.label.length));
  for (const s of report.summaries) {
    const f = s.fixed ?? s.tuned;
    lines.push(`  ${s.label.padEnd(w)}  AP ${cell(f, 'AP').padStart(12)} @ lr ${f?.lr ?? '-'}   tuned ${cell(s.tuned, 'AP')} @ ${s.tuned?.lr ?? '-'}`);
  }
  return lines.join('\n');
}
