/** Precision-recall curves as standalone SVG (no dependencies, viewable in any browser). */

/** One curve: points (recall[i], precision[i]) in [0, 1], drawn in order. */
export interface PrSeries {
  label: string;
  recall: ArrayLike<number>;
  precision: ArrayLike<number>;
}

export interface PrPlotOptions {
  title: string;
  /** Pixel size of the whole image (default 480 x 400). */
  width?: number;
  height?: number;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Renders PR curves on recall (x) vs precision (y) axes, both 0..1, with a legend. */
export function prCurveSvg(series: readonly PrSeries[], opts: PrPlotOptions): string {
  const W = opts.width ?? 480, H = opts.height ?? 400;
  const L = 50, R = 15, T = 30, B = 45;
  const pw = W - L - R, ph = H - T - B;
  const x = (v: number): string => (L + v * pw).toFixed(1);
  const y = (v: number): string => (T + (1 - v) * ph).toFixed(1);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="13">${esc(opts.title)}</text>`,
  ];
  for (let i = 0; i <= 5; i++) {
    const v = i / 5;
    out.push(`<line x1="${x(v)}" y1="${y(0)}" x2="${x(v)}" y2="${y(1)}" stroke="#e5e5e5"/>`);
    out.push(`<line x1="${x(0)}" y1="${y(v)}" x2="${x(1)}" y2="${y(v)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${x(v)}" y="${(T + ph + 15).toFixed(1)}" text-anchor="middle">${v.toFixed(1)}</text>`);
    out.push(`<text x="${L - 6}" y="${(Number(y(v)) + 4).toFixed(1)}" text-anchor="end">${v.toFixed(1)}</text>`);
  }
  out.push(`<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${L + pw / 2}" y="${H - 8}" text-anchor="middle">recall</text>`);
  out.push(`<text x="14" y="${T + ph / 2}" text-anchor="middle" transform="rotate(-90 14 ${T + ph / 2})">precision</text>`);
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const pts: string[] = [];
    for (let j = 0; j < s.recall.length; j++) {
      const r = s.recall[j]!, p = s.precision[j]!;
      if (r >= 0 && p >= 0) pts.push(`${x(r)},${y(p)}`);
    }
    if (pts.length > 0) out.push(`<polyline fill="none" stroke="${color}" stroke-width="1.6" points="${pts.join(' ')}"/>`);
    const ly = T + 14 + i * 15;
    out.push(`<line x1="${L + pw - 150}" y1="${ly - 4}" x2="${L + pw - 132}" y2="${ly - 4}" stroke="${color}" stroke-width="2"/>`);
    out.push(`<text x="${L + pw - 127}" y="${ly}">${esc(s.label)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
