import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { DetectionDataset } from '../data/types.js';
import { drawDetections } from '../io/draw.js';
import { DATASET_FORMATS, formatProblem, loadDataset, type DatasetFormat } from '../data/datasets/index.js';
import { boxAnchorIous, datasetStats, SIZE_BIN_EDGES, type DatasetStats, type StatsOptions } from '../data/stats.js';
import { anchorConfig } from '../model/config.js';
import { labelStats, labelsSpec } from '../data/labels_plot.js';
import { writeFigure } from '../plot/render.js';
import { type Command, UserError } from './command.js';
import os from 'node:os';
import { checkDecodes } from '../data/check.js';
import { checkOutputDir } from '../core/output.js';
import { IMAGE_FLAGS, MODEL_FLAGS, applyImageFlags, resolveConfig } from './common.js';
import { ProgressBar } from './progress.js';

const help = `Usage: retinanet data check <dataset> [options]

Reads a detection dataset, decodes every image (in parallel), reports problems and prints
statistics. Problems: malformed annotations, missing, truncated or undecodable images,
images whose decoded size differs from the annotation's (EXIF rotation), file names used
twice. Statistics: images, boxes per
class, box sizes (sqrt(area) in pixels), and how many boxes no anchor covers at IoU >= 0.5
after the resize: RetinaNet's anchors and resize (short side 800, long side <= 1333), or
those of the model you train with --arch / --config / --min-size / --max-size.

<dataset> is a COCO .json, a keras-retinanet or headed .csv, a Pascal VOC folder
(Annotations/, JPEGImages/) or folder of VOC .xml files, a YOLO folder (images/, labels/),
or a folder with annotations/instances_<split>.json.

Options:
  --format F       coco | voc | csv | yolo (default: detected from the path)
  --images DIR     folder of the images, when not where the format expects them
  --split NAME     VOC ImageSets/Main/NAME.txt, YOLO images/NAME, COCO instances_NAME.json
  --classes FILE   class list (one name per line, or keras-retinanet name,id lines)
  --strict         stop at the first problem (exit 2) instead of skipping with a warning
  --no-anchors     skip the anchor coverage check
  --arch NAME      architecture whose anchors and resize the coverage check uses
  --config FILE    JSON config ({"arch": NAME, ...overrides}), e.g. anchors from
                   'retinanet anchors optimize'
  --min-size N     short side after resizing (default from the architecture)
  --max-size N     long side limit
  --max-problems N problems to print (default 50; --json lists all)
  --draw DIR       also write the first --draw-count images with their boxes drawn, to DIR;
                   boxes no anchor covers at IoU >= 0.5 after the resize are red,
                   with their best anchor IoU, the others green (keras-retinanet's debug.py)
  --draw-count N   images to draw (default 16)
  --plots DIR      write labels.png / labels.svg to DIR: boxes per class, box size and
                   aspect-ratio histograms, box centre heat map
  --json           print the statistics and problems as JSON
  --no-decode      read image headers only (fast) instead of decoding every image
  --max-pixels N   refuse images over N pixels (default 100000000)

Exit status: 0 if no problems, 1 if problems were found (and skipped), 2 on errors.`;

function pct(n: number, total: number): string {
  return total === 0 ? '0%' : `${((100 * n) / total).toFixed(1)}%`;
}

function binLabel(i: number): string {
  const lo = i === 0 ? 0 : SIZE_BIN_EDGES[i - 1]!;
  return i === SIZE_BIN_EDGES.length ? `>=${lo}` : `${lo}-${SIZE_BIN_EDGES[i]}`;
}

/** Human-readable report of {@link datasetStats}. */
export function formatStats(stats: DatasetStats, classNames: readonly string[]): string {
  const out: string[] = [];
  out.push(`images: ${stats.images} (${stats.imagesWithoutBoxes} without boxes)`);
  if (stats.imageSizeRange) {
    const r = stats.imageSizeRange;
    out.push(`image size: width ${r.minWidth}-${r.maxWidth}, height ${r.minHeight}-${r.maxHeight} px`);
  }
  out.push(`boxes: ${stats.boxes} (${stats.crowdBoxes} crowd, ${stats.difficultBoxes} difficult), ${classNames.length} classes`);
  const width = Math.max(5, ...classNames.map((n) => n.length));
  out.push('boxes per class:');
  classNames.forEach((name, i) => {
    const n = stats.boxesPerClass[i]!;
    const unc = stats.anchorCoverage ? `   ${stats.anchorCoverage.uncoveredPerClass[i]} without anchor` : '';
    out.push(`  ${name.padEnd(width)} ${String(n).padStart(7)}  ${pct(n, stats.boxes).padStart(6)}${unc}`);
  });
  const s = stats.sizeCoco;
  out.push(`box size, sqrt(area) px: small <32: ${s.small} (${pct(s.small, stats.boxes)}), medium 32-96: ${s.medium} (${pct(s.medium, stats.boxes)}), large >96: ${s.large} (${pct(s.large, stats.boxes)})`);
  out.push(`  ${stats.sizeBins.map((n, i) => `${binLabel(i)}: ${n}`).join(', ')}`);
  const a = stats.anchorCoverage;
  if (a) {
    out.push(
      `anchor coverage (resized to min ${a.minSize} / max ${a.maxSize}): ${a.uncovered} of ${a.checked} boxes (${pct(a.uncovered, a.checked)}) have no anchor with IoU >= 0.5; mean best IoU ${a.meanBestIou.toFixed(3)}`,
    );
  }
  return out.join('\n');
}

async function check(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      format: { type: 'string' },
      images: { type: 'string' },
      split: { type: 'string' },
      classes: { type: 'string' },
      strict: { type: 'boolean', default: false },
      'no-anchors': { type: 'boolean', default: false },
      arch: MODEL_FLAGS.arch,
      config: MODEL_FLAGS.config,
      'min-size': MODEL_FLAGS['min-size'],
      'max-size': MODEL_FLAGS['max-size'],
      'max-problems': { type: 'string', default: '50' },
      json: { type: 'boolean', default: false },
      draw: { type: 'string' },
      'draw-count': { type: 'string', default: '16' },
      plots: { type: 'string' },
      'no-decode': { type: 'boolean', default: false },
      'max-pixels': IMAGE_FLAGS['max-pixels'],
    },
  });
  applyImageFlags(values);
  if (positionals.length !== 1) throw new UserError(`expected one dataset path, got ${positionals.length}\n\n${help}`);
  const format = values.format;
  if (format !== undefined && !DATASET_FORMATS.includes(format as DatasetFormat)) {
    throw new UserError(`--format must be one of ${DATASET_FORMATS.join(', ')}, got '${format}'`);
  }
  const maxProblems = Number(values['max-problems']);
  if (!Number.isInteger(maxProblems) || maxProblems < 0) throw new UserError(`--max-problems must be a non-negative integer`);
  const drawCount = Number(values['draw-count']);
  if (!Number.isInteger(drawCount) || drawCount < 0) throw new UserError(`--draw-count must be a non-negative integer`);
  const cfg = resolveConfig(values);
  const anchorOpts: StatsOptions = { minSize: cfg.transform.minSize, maxSize: cfg.transform.maxSize, anchorConfig: anchorConfig(cfg) };
  const datasetPath = positionals[0]!;
  const loaded = await loadDataset(datasetPath, {
    ...(format ? { format: format as DatasetFormat } : {}),
    ...(values.images ? { imagesDir: values.images } : {}),
    ...(values.split ? { split: values.split } : {}),
    ...(values.classes ? { classesFile: values.classes } : {}),
    strict: values.strict,
    checkImages: 'header',
  });
  if (values.draw) checkOutputDir(values.draw, '--draw');
  if (values.plots) checkOutputDir(values.plots, '--plots');
  if (!values['no-decode']) {
    // Headers alone miss what breaks a run later: truncated files decode only to a point.
    const bar = values.json ? undefined : new ProgressBar(loaded.dataset.images.length, 'decoding');
    const found = await checkDecodes(loaded.dataset, { concurrency: os.availableParallelism(), onProgress: (done) => bar?.update(done) });
    bar?.done();
    if (values.strict && found.length > 0) throw new UserError(`${formatProblem(found[0]!)} (--strict stops at the first problem)`);
    loaded.problems.push(...found);
  }
  const stats = datasetStats(loaded.dataset, { anchors: !values['no-anchors'], ...anchorOpts });
  if (values.json) {
    console.log(JSON.stringify({ dataset: datasetPath, format: loaded.format, classNames: loaded.dataset.classNames, stats, problems: loaded.problems }, null, 2));
  } else {
    console.log(`dataset: ${datasetPath} (${loaded.format})`);
    console.log(formatStats(stats, loaded.dataset.classNames));
    if (loaded.problems.length === 0) console.log('problems: none');
    else {
      console.log(`problems: ${loaded.problems.length} (items skipped or clipped; --strict makes them errors)`);
      for (const p of loaded.problems.slice(0, maxProblems)) console.log(`  ${formatProblem(p)}`);
      if (loaded.problems.length > maxProblems) console.log(`  ... and ${loaded.problems.length - maxProblems} more (--max-problems, --json)`);
    }
  }
  if (values.draw) {
    const { written, red } = await drawSamples(loaded.dataset, values.draw, drawCount, values['no-anchors'] ? undefined : anchorOpts);
    if (!values.json) console.log(`drew ${written} images with their boxes to ${values.draw}${values['no-anchors'] ? '' : ` (${red} boxes without an anchor at IoU >= 0.5 in red)`}`);
  }
  if (values.plots) {
    await mkdir(values.plots, { recursive: true });
    const f = await writeFigure(values.plots, 'labels', labelsSpec(labelStats(loaded.dataset), `Labels of ${path.basename(datasetPath)}`));
    if (!values.json) console.log(`label statistics plotted to ${path.join(values.plots, f.png)}`);
  }
  return loaded.problems.length === 0 ? 0 : 1;
}

/**
 * Writes the first `count` images with their ground-truth boxes drawn (crowd boxes labelled as
 * such); with `anchors` (resize and anchors), boxes whose best anchor has IoU < 0.5 are red.
 */
async function drawSamples(ds: DetectionDataset, dir: string, count: number, anchors: StatsOptions | undefined): Promise<{ written: number; red: number }> {
  await mkdir(dir, { recursive: true });
  const names = [...ds.classNames, 'crowd'];
  let written = 0, red = 0;
  for (const im of ds.images.slice(0, count)) {
    const labels = Int32Array.from(im.labels, (l, i) => (im.crowd[i] ? ds.classNames.length : l));
    const best = anchors && im.width && im.height ? boxAnchorIous({ width: im.width, height: im.height, boxes: im.boxes, labels: im.labels, crowd: im.crowd }, anchors) : undefined;
    const uncovered = (i: number): boolean => best !== undefined && best[i]! < 0.5;
    // As keras-retinanet's debug.py: boxes an anchor covers green, the others red.
    const colors = Array.from(im.labels, (_, i) => (best === undefined ? undefined : uncovered(i) ? '#ff0000' : '#00b000'));
    const captions = Array.from(im.labels, (l, i) => (uncovered(i) ? `${names[l] ?? l} no anchor (IoU ${best![i]!.toFixed(2)})` : undefined));
    red += colors.filter((c) => c === '#ff0000').length;
    const out = path.join(dir, `${path.parse(im.file).name}.png`);
    await drawDetections(im.file, { boxes: im.boxes, labels, colors, captions }, out, { classNames: names });
    written++;
  }
  return { written, red };
}

/** `retinanet data <subcommand>`: dataset tools. */
export const dataCommand: Command = {
  name: 'data',
  summary: 'Dataset tools: `data check <dataset>` validates annotations and prints statistics',
  help,
  async run(argv: string[]): Promise<number> {
    const [sub, ...rest] = argv;
    if (sub === 'check') return check(rest);
    throw new UserError(sub === undefined ? `missing subcommand\n\n${help}` : `unknown subcommand '${sub}' (expected: check)`);
  },
};
