/** The loss curve of a training run as an SVG line chart (classification, box, total; smoothed). */
import type { StepRecord } from './log.js';

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

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
}

/** SVG of loss against iteration; a moving average over ~1% of the run smooths the noise. */
export function lossCurveSvg(records: readonly StepRecord[], title = 'Training loss'): string {
  const W = 720;
  const H = 400;
  const m = { l: 60, r: 150, t: 36, b: 44 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const its = records.map((r) => r.iter);
  const window = Math.max(1, Math.round(records.length / 100));
  const series = [
    { name: 'total', color: '#222', values: smooth(records.map((r) => r.loss_cls + r.loss_box), window) },
    { name: 'classification (focal)', color: '#d62728', values: smooth(records.map((r) => r.loss_cls), window) },
    { name: 'box regression', color: '#1f77b4', values: smooth(records.map((r) => r.loss_box), window) },
  ];
  // Loops, not Math.max(...xs): a spread of more than ~120 000 steps overflows the stack.
  const max = (xs: readonly number[], floor: number): number => xs.reduce((a, b) => (b > a ? b : a), floor);
  const xMax = max(its, 1);
  const yMax = max(series.flatMap((s) => s.values.filter(Number.isFinite)), 1e-6) * 1.05;
  const x = (v: number): number => m.l + (v / xMax) * pw;
  const y = (v: number): number => m.t + ph - (v / yMax) * ph;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${m.l}" y="22" font-size="15">${esc(title)}</text>`,
    `<line x1="${m.l}" y1="${m.t + ph}" x2="${m.l + pw}" y2="${m.t + ph}" stroke="#444"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${m.t + ph}" stroke="#444"/>`,
  ];
  for (let k = 0; k <= 5; k++) {
    const yv = (yMax * k) / 5;
    const xv = Math.round((xMax * k) / 5);
    parts.push(`<line x1="${m.l}" y1="${y(yv)}" x2="${m.l + pw}" y2="${y(yv)}" stroke="#eee"/>`);
    parts.push(`<text x="${m.l - 6}" y="${y(yv) + 4}" text-anchor="end">${yv.toPrecision(2)}</text>`);
    parts.push(`<text x="${x(xv)}" y="${m.t + ph + 18}" text-anchor="middle">${xv}</text>`);
  }
  parts.push(`<text x="${m.l + pw / 2}" y="${H - 8}" text-anchor="middle">iteration</text>`);
  series.forEach((s, k) => {
    const pts = s.values.map((v, i) => `${x(its[i]!).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="1.5" points="${pts}"/>`);
    parts.push(`<line x1="${m.l + pw + 12}" y1="${m.t + 10 + 18 * k}" x2="${m.l + pw + 30}" y2="${m.t + 10 + 18 * k}" stroke="${s.color}" stroke-width="2"/>`);
    parts.push(`<text x="${m.l + pw + 34}" y="${m.t + 14 + 18 * k}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
