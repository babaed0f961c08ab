/**
 * Charts are Vega-Lite specs, compiled by vega-lite and rendered to SVG by Vega's headless
 * renderer, then rasterised to PNG by resvg (a Rust SVG renderer shipped as prebuilt binaries in
 * per-platform npm packages, so it installs offline). The libraries load on first use: importing
 * the library costs nothing until a figure is drawn.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { TopLevelSpec } from 'vega-lite';

export type { TopLevelSpec } from 'vega-lite';

/** Fonts tried in order by the SVG (and by resvg for the PNG): DejaVu ships with Debian/Ubuntu, Arial/Helvetica elsewhere. */
export const CHART_FONT = 'DejaVu Sans, Arial, Helvetica, sans-serif';

/** Look shared by every chart: white background, one font, no chart-level border. */
const CONFIG = {
  font: CHART_FONT,
  background: 'white',
  padding: 8,
  view: { stroke: '#ccc' },
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#e6e6e6' },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 260 },
  title: { fontSize: 14, anchor: 'start', offset: 10 },
} as const;

interface VegaModules {
  vega: typeof import('vega');
  compile: typeof import('vega-lite').compile;
  Resvg: typeof import('@resvg/resvg-js').Resvg;
}

let modules: Promise<VegaModules> | undefined;

function load(): Promise<VegaModules> {
  modules ??= (async () => {
    const [vega, vl, resvg] = await Promise.all([import('vega'), import('vega-lite'), import('@resvg/resvg-js')]);
    return { vega, compile: vl.compile, Resvg: resvg.Resvg };
  })();
  return modules;
}

/** The spec with the shared look merged under its own `config`. */
export function withDefaults(spec: TopLevelSpec): TopLevelSpec {
  const own = (spec as { config?: Record<string, unknown> }).config ?? {};
  return { ...spec, config: { ...CONFIG, ...own } } as TopLevelSpec;
}

/** A Vega-Lite spec rendered to a standalone SVG document. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const { vega, compile } = await load();
  const compiled = compile(withDefaults(spec)).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** An SVG document rasterised to PNG bytes, `scale` pixels per SVG unit (2: sharp on high-DPI screens). */
export async function svgToPng(svg: string, scale = 2): Promise<Buffer> {
  const { Resvg } = await load();
  const r = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale },
    background: 'white',
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
  });
  return r.render().asPng();
}

/** One written figure: its base name and the files written, relative to the folder given. */
export interface FigureFiles {
  name: string;
  png: string;
  svg: string;
}

/**
 * Renders `spec` and writes `<dir>/<name>.svg` and `<dir>/<name>.png` (`name` may hold a
 * subfolder, created as needed).
 */
export async function writeFigure(dir: string, name: string, spec: TopLevelSpec): Promise<FigureFiles> {
  const svg = await renderSvg(spec);
  const png = await svgToPng(svg);
  const files = { name, svg: `${name}.svg`, png: `${name}.png` };
  await mkdir(path.dirname(path.join(dir, files.svg)), { recursive: true });
  await writeFile(path.join(dir, files.svg), svg);
  await writeFile(path.join(dir, files.png), png);
  return files;
}
