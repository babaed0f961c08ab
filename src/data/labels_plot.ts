/**
 * `labels.png` of `data check --plots`: boxes per class, box sizes (sqrt of the area, log
 * scale, COCO's small / medium / large limits marked), aspect ratios (h / w, log scale, the
 * default anchors' ratios marked) and where box centres fall in the image.
 */
import { barChart, densityChart, gridOf, histogram } from '../plot/charts.js';
import type { TopLevelSpec } from '../plot/render.js';
import type { DetectionDataset } from './types.js';

/** The data behind the labels figure. */
export interface LabelStats {
  classNames: string[];
  boxesPerClass: number[];
  /** Bin edges (px) and counts of sqrt(w * h). */
  sizeEdges: number[];
  sizeCounts: number[];
  /** Bin edges and counts of h / w. */
  aspectEdges: number[];
  aspectCounts: number[];
  /** Box centres over the image (x, y in [0, 1]) on a `grid` x `grid` heat map, row-major; images of known size only. */
  grid: number;
  centres: number[];
}

/** Counts of every non-crowd box of the dataset. */
export function labelStats(ds: DetectionDataset, grid = 24): LabelStats {
  const sizeEdges = Array.from({ length: 21 }, (_, i) => 2 ** (1 + i / 2)); // 2 .. 2048 px
  const aspectEdges = Array.from({ length: 25 }, (_, i) => 2 ** (-4 + i / 3)); // 1/16 .. 16
  const s: LabelStats = {
    classNames: [...ds.classNames],
    boxesPerClass: new Array<number>(ds.classNames.length).fill(0),
    sizeEdges,
    sizeCounts: new Array<number>(sizeEdges.length - 1).fill(0),
    aspectEdges,
    aspectCounts: new Array<number>(aspectEdges.length - 1).fill(0),
    grid,
    centres: new Array<number>(grid * grid).fill(0),
  };
  const bin = (edges: number[], v: number): number => {
    if (!(v > 0)) return -1;
    let b = Math.floor(((Math.log2(v) - Math.log2(edges[0]!)) / (Math.log2(edges[edges.length - 1]!) - Math.log2(edges[0]!))) * (edges.length - 1));
    b = Math.min(edges.length - 2, Math.max(0, b));
    return b;
  };
  for (const im of ds.images) {
    for (let i = 0; i < im.labels.length; i++) {
      if (im.crowd[i]) continue;
      const [x1, y1, x2, y2] = [im.boxes[4 * i]!, im.boxes[4 * i + 1]!, im.boxes[4 * i + 2]!, im.boxes[4 * i + 3]!];
      const label = im.labels[i]!;
      if (label >= 0 && label < s.boxesPerClass.length) s.boxesPerClass[label]!++;
      const w = x2 - x1, h = y2 - y1;
      const sb = bin(sizeEdges, Math.sqrt(w * h));
      if (sb >= 0) s.sizeCounts[sb]!++;
      const ab = bin(aspectEdges, w > 0 ? h / w : 0);
      if (ab >= 0) s.aspectCounts[ab]!++;
      if (im.width && im.height) {
        const cx = Math.min(grid - 1, Math.max(0, Math.floor(((x1 + x2) / 2 / im.width) * grid)));
        const cy = Math.min(grid - 1, Math.max(0, Math.floor(((y1 + y2) / 2 / im.height) * grid)));
        s.centres[cy * grid + cx]!++;
      }
    }
  }
  return s;
}

/** The four panels of `labels.png`. */
export function labelsSpec(s: LabelStats, title = 'Labels'): TopLevelSpec {
  const total = s.boxesPerClass.reduce((a, b) => a + b, 0);
  return gridOf(
    [
      [
        barChart(s.classNames, s.boxesPerClass, { title: `Boxes per class (${total} in all)`, x: 'class', y: 'boxes', width: 320, height: 220 }),
        histogram(s.sizeEdges, s.sizeCounts, {
          title: 'Box size, sqrt(w x h) in original pixels',
          x: { title: 'size (px, log scale)', log: true, domain: [s.sizeEdges[0]!, s.sizeEdges[s.sizeEdges.length - 1]!] },
          y: 'boxes',
          rules: [{ x: 32, label: 'small < 32' }, { x: 96, label: 'large > 96' }],
          width: 320,
        }),
      ],
      [
        histogram(s.aspectEdges, s.aspectCounts, {
          title: 'Aspect ratio h / w',
          x: { title: 'h / w (log scale)', log: true, domain: [s.aspectEdges[0]!, s.aspectEdges[s.aspectEdges.length - 1]!] },
          y: 'boxes',
          color: '#f58518',
          rules: [{ x: 0.5, label: 'anchor 0.5' }, { x: 1, label: '1' }, { x: 2, label: '2' }],
          width: 320,
        }),
        densityChart(s.centres, s.grid, s.grid, { title: 'Box centres', x: 'x / image width', y: 'y / image height', width: 240, height: 240 }),
      ],
    ],
    title,
  );
}
