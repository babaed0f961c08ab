/**
 * Vega-Lite specs for the figures of a run (line charts, stacked error bands, heat maps, bars,
 * histograms) built from plain numbers. The builders know nothing of detection: eval/, data/
 * and train/ turn their results into these series.
 */
import type { TopLevelSpec } from 'vega-lite';

/** One line: points (x[i], y[i]); points with a non-finite y are left out. */
export interface Series {
  name: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
}

/** A labelled point drawn over a chart (e.g. the best F1 threshold). */
export interface ChartMark {
  x: number;
  y: number;
  label: string;
}

export interface AxisOptions {
  title: string;
  domain?: [number, number];
  /** Logarithmic scale. */
  log?: boolean;
  /** Integer ticks only (iterations, counts). */
  integer?: boolean;
}

export interface LineChartOptions {
  title: string;
  x: AxisOptions;
  y: AxisOptions;
  width?: number;
  height?: number;
  /** Series drawn thick (e.g. the mean over classes); the others are thin. */
  emphasize?: readonly string[];
  /** Points marked with a dot, a vertical rule and a caption. */
  marks?: readonly ChartMark[];
  /** Legend title (default none). */
  legendTitle?: string;
  /** Explicit colours, one per series in order. */
  colors?: readonly string[];
  /** Where the legend goes (default right of the chart). */
  legendOrient?: 'right' | 'bottom' | 'top-right' | 'bottom-right' | 'bottom-left' | 'top-left';
}

type Json = Record<string, unknown>;


/** Rows `{x, y, series}` of the series, in order, with at most `maxPoints` per series (evenly thinned). */
export function seriesRows(series: readonly Series[], maxPoints = 2000): Json[] {
  const rows: Json[] = [];
  for (const s of series) {
    const n = Math.min(s.x.length, s.y.length);
    const step = n > maxPoints ? n / maxPoints : 1;
    let last = -1;
    for (let f = 0; f < n; f += step) {
      const i = Math.floor(f);
      if (i === last) continue;
      last = i;
      const y = s.y[i]!;
      if (Number.isFinite(y) && Number.isFinite(s.x[i]!)) rows.push({ x: s.x[i]!, y, series: s.name });
    }
    // The last point is always kept so a thinned curve ends where the data end.
    if (n > 0 && last !== n - 1 && Number.isFinite(s.y[n - 1]!)) rows.push({ x: s.x[n - 1]!, y: s.y[n - 1]!, series: s.name });
  }
  return rows;
}

function axis(a: AxisOptions, field: string): Json {
  const scale: Json = {};
  if (a.domain) {
    scale.domain = a.domain;
    scale.clamp = true;
    scale.nice = false;
  }
  if (a.log) scale.type = 'log';
  else scale.zero = a.domain ? undefined : false;
  const out: Json = { field, type: 'quantitative', title: a.title, scale };
  if (a.integer) out.axis = { tickMinStep: 1, format: 'd' };
  return out;
}

/** Lines of several series on shared axes, with a legend; optional emphasised series and marked points. */
export function lineChart(series: readonly Series[], o: LineChartOptions): TopLevelSpec {
  const names = series.map((s) => s.name);
  const emph = new Set(o.emphasize ?? []);
  const color: Json = { field: 'series', type: 'nominal', sort: names, title: o.legendTitle ?? null, legend: names.length > 1 ? { symbolType: 'stroke', ...(o.legendOrient ? { orient: o.legendOrient, ...(o.legendOrient === 'bottom' ? { columns: 2 } : {}) } : {}) } : null };
  if (o.colors) color.scale = { domain: names, range: o.colors };
  const layers: Json[] = [
    {
      mark: { type: 'line', interpolate: 'linear', clip: true },
      encoding: {
        x: axis(o.x, 'x'),
        y: axis(o.y, 'y'),
        color,
        strokeWidth: { condition: { test: `indexof(${JSON.stringify([...emph])}, datum.series) >= 0`, value: 3 }, value: emph.size > 0 ? 1.2 : 2 },
      },
    },
  ];
  if (o.marks && o.marks.length > 0) {
    const markData = { values: o.marks.map((m) => ({ x: m.x, y: m.y, label: m.label })) };
    layers.push(
      { data: markData, mark: { type: 'rule', strokeDash: [4, 3], color: '#555' }, encoding: { x: { field: 'x', type: 'quantitative' } } },
      { data: markData, mark: { type: 'point', filled: true, size: 70, color: 'black' }, encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' } } },
      { data: markData, mark: { type: 'text', align: 'left', dx: 6, dy: -8, fontSize: 12, fontWeight: 'bold' }, encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' }, text: { field: 'label' } } },
    );
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: o.title,
    width: o.width ?? 420,
    height: o.height ?? 320,
    data: { values: seriesRows(series) },
    layer: layers,
  } as unknown as TopLevelSpec;
}

/** One band of a stacked-band chart: the area between the previous curve (or 0) and this one. */
export interface Band {
  label: string;
  color: string;
  y: ArrayLike<number>;
}

/**
 * Curves that only rise from one band to the next, filled between each curve and the one below
 * it (the COCO error-analysis plot): x is shared, bands in order from the bottom.
 */
export function bandChart(x: ArrayLike<number>, bands: readonly Band[], o: { title: string; x: AxisOptions; y: AxisOptions; width?: number; height?: number }): TopLevelSpec {
  const rows: Json[] = [];
  bands.forEach((b, k) => {
    for (let i = 0; i < x.length; i++) rows.push({ x: x[i]!, lo: k === 0 ? 0 : bands[k - 1]!.y[i]!, hi: b.y[i]!, band: b.label, order: k });
  });
  const names = bands.map((b) => b.label);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: o.title,
    width: o.width ?? 420,
    height: o.height ?? 320,
    data: { values: rows },
    layer: [
      {
        mark: { type: 'area', clip: true },
        encoding: {
          x: axis(o.x, 'x'),
          y: { ...axis(o.y, 'hi'), stack: null },
          y2: { field: 'lo' },
          color: { field: 'band', type: 'nominal', sort: names, scale: { domain: names, range: bands.map((b) => b.color) }, title: null, legend: { symbolStrokeColor: 'black', symbolStrokeWidth: 0.5 } },
          order: { field: 'order' },
        },
      },
      { mark: { type: 'line', color: 'black', strokeWidth: 0.6, clip: true }, encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'hi', type: 'quantitative' }, detail: { field: 'band' } } },
    ],
  } as unknown as TopLevelSpec;
}

export interface HeatmapOptions {
  title: string;
  /** Row (y) and column (x) labels. */
  rows: readonly string[];
  cols: readonly string[];
  rowTitle: string;
  colTitle: string;
  /** Colour legend title. */
  colorTitle?: string;
  /** Cell size in pixels (default: from the label count). */
  cell?: number;
}

/**
 * A matrix of cells coloured by `color[r][c]` (in [0, 1], NaN: blank) and captioned with
 * `text[r][c]`.
 */
export function heatmap(color: readonly (readonly number[])[], text: readonly (readonly string[])[], o: HeatmapOptions): TopLevelSpec {
  const rows: Json[] = [];
  o.rows.forEach((rn, r) => o.cols.forEach((cn, c) => rows.push({ row: rn, col: cn, v: Number.isFinite(color[r]![c]!) ? color[r]![c]! : null, t: text[r]![c]! })));
  const n = Math.max(o.rows.length, o.cols.length);
  const cell = o.cell ?? Math.max(18, Math.min(60, Math.floor(560 / n)));
  const fontSize = Math.max(7, Math.min(12, Math.floor(cell / 4)));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: o.title,
    width: cell * o.cols.length,
    height: cell * o.rows.length,
    data: { values: rows },
    encoding: {
      x: { field: 'col', type: 'nominal', sort: [...o.cols], title: o.colTitle, axis: { orient: 'top', labelAngle: -40, labelAlign: 'left' } },
      y: { field: 'row', type: 'nominal', sort: [...o.rows], title: o.rowTitle },
    },
    layer: [
      { mark: { type: 'rect', stroke: 'white', strokeWidth: 0.5 }, encoding: { color: { field: 'v', type: 'quantitative', scale: { scheme: 'blues', domain: [0, 1] }, title: o.colorTitle ?? null } } },
      {
        mark: { type: 'text', fontSize },
        encoding: { text: { field: 't' }, color: { condition: { test: 'datum.v > 0.5', value: 'white' }, value: 'black' } },
      },
    ],
  } as unknown as TopLevelSpec;
}

/** Vertical bars, one per category, in the given order, captioned with their values. */
export function barChart(categories: readonly string[], values: readonly number[], o: { title: string; x: string; y: string; width?: number; height?: number; colors?: readonly string[] }): TopLevelSpec {
  const rows = categories.map((c, i) => ({ c, v: values[i]!, color: o.colors?.[i] ?? '#4c78a8' }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: o.title,
    width: o.width ?? Math.max(220, Math.min(640, 28 * categories.length)),
    height: o.height ?? 220,
    data: { values: rows },
    encoding: { x: { field: 'c', type: 'nominal', sort: [...categories], title: o.x, axis: { labelAngle: categories.length > 6 ? -40 : 0 } }, y: { field: 'v', type: 'quantitative', title: o.y } },
    layer: [
      { mark: { type: 'bar' }, encoding: { color: { field: 'color', type: 'nominal', scale: null, legend: null } } },
      { mark: { type: 'text', dy: -6, fontSize: 10 }, encoding: { text: { field: 'v', type: 'quantitative' } } },
    ],
  } as unknown as TopLevelSpec;
}

/**
 * A histogram from counts already binned: `edges` has one more entry than `counts`; the x axis
 * is linear or logarithmic (log2-spaced bins read best on a log axis).
 */
export function histogram(edges: readonly number[], counts: readonly number[], o: { title: string; x: AxisOptions; y: string; width?: number; height?: number; color?: string; rules?: readonly { x: number; label: string }[] }): TopLevelSpec {
  const rows = counts.map((n, i) => ({ lo: edges[i]!, hi: edges[i + 1]!, n }));
  const layers: Json[] = [
    {
      data: { values: rows },
      mark: { type: 'rect', color: o.color ?? '#4c78a8', stroke: 'white', strokeWidth: 0.5 },
      encoding: { x: axis(o.x, 'lo'), x2: { field: 'hi' }, y: { field: 'n', type: 'quantitative', title: o.y }, y2: { datum: 0 } },
    },
  ];
  if (o.rules && o.rules.length > 0) {
    const rd = { values: o.rules.map((r) => ({ x: r.x, label: r.label })) };
    layers.push(
      { data: rd, mark: { type: 'rule', color: '#d62728', strokeDash: [4, 3] }, encoding: { x: { field: 'x', type: 'quantitative' } } },
      { data: rd, mark: { type: 'text', color: '#d62728', angle: 270, align: 'right', baseline: 'bottom', dx: -4, dy: -2, fontSize: 10 }, encoding: { x: { field: 'x', type: 'quantitative' }, y: { value: 0 }, text: { field: 'label' } } },
    );
  }
  return { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', title: o.title, width: o.width ?? 300, height: o.height ?? 220, layer: layers } as unknown as TopLevelSpec;
}

/** Counts on an nx x ny grid over [0, 1]² (row-major, y down as in an image) as a heat map. */
export function densityChart(counts: ArrayLike<number>, nx: number, ny: number, o: { title: string; x: string; y: string; width?: number; height?: number }): TopLevelSpec {
  const rows: Json[] = [];
  let max = 0;
  for (let i = 0; i < nx * ny; i++) max = Math.max(max, counts[i]!);
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) {
      const n = counts[j * nx + i]!;
      rows.push({ x: i / nx, x2: (i + 1) / nx, y: j / ny, y2: (j + 1) / ny, n });
    }
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: o.title,
    width: o.width ?? 260,
    height: o.height ?? 260,
    data: { values: rows },
    mark: { type: 'rect' },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: o.x, scale: { domain: [0, 1], nice: false } },
      x2: { field: 'x2' },
      y: { field: 'y', type: 'quantitative', title: o.y, scale: { domain: [0, 1], reverse: true, nice: false } },
      y2: { field: 'y2' },
      color: { field: 'n', type: 'quantitative', title: 'boxes', scale: { scheme: 'viridis', domain: [0, Math.max(1, max)] } },
    },
  } as unknown as TopLevelSpec;
}

/** Specs laid out in rows (each row a list of charts), with independent scales and legends. */
export function gridOf(rows: readonly (readonly TopLevelSpec[])[], title?: string): TopLevelSpec {
  const strip = (s: TopLevelSpec): Json => {
    const { $schema: _s, config: _c, ...rest } = s as unknown as Json;
    return rest;
  };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    ...(title ? { title: { text: title, fontSize: 16 } } : {}),
    vconcat: rows.map((r) => ({ hconcat: r.map(strip), resolve: { scale: { color: 'independent' }, legend: { color: 'independent' } } })),
    resolve: { scale: { color: 'independent' }, legend: { color: 'independent' } },
    spacing: 24,
  } as unknown as TopLevelSpec;
}
