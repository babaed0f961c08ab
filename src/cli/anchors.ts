import { parseArgs } from 'node:util';
import { type Command, UserError } from './command.js';
import { MODEL_FLAGS, loadSource, numberFlag, resolveConfig } from './common.js';
import { anchorConfig } from '../model/config.js';
import { anchorConfigJson, optimizeAnchors, type AnchorCandidate } from '../data/anchor_search.js';
import { sourceBoxes, type AnchorCoverage } from '../data/stats.js';
import { syntheticSources } from '../data/synthetic_source.js';
import type { AnchorConfig } from '../detection/anchors.js';

const help = `Usage: retinanet anchors optimize <dataset> [options]

Finds anchor sizes and aspect ratios that cover the dataset's boxes: a search over the paper's
anchor grid (P3 base size 8-64 px doubling per level, 1-4 scales per octave, the paper's ratio
sets and ratios fitted to the boxes by k-means on log(h/w)) for the fewest boxes whose best
anchor has IoU < 0.5 after the resize (those only get a low-quality match). Prints the coverage
before and after and the config lines to use with 'train --config'.

<dataset> is a COCO .json, VOC folder, keras-retinanet .csv, YOLO folder, or 'synthetic'.

Options:
  --format F           coco | voc | csv | yolo (default: detected from the path)
  --images DIR         image folder (COCO: default is the JSON's folder)
  --split NAME         VOC ImageSets/Main/NAME.txt (or YOLO/COCO split)
  --arch NAME          architecture whose resize and anchors are the starting point
  --config FILE        JSON config ({"arch": NAME, ...overrides}), e.g. one written from here
  --min-size N         short side after resizing (default from the architecture)
  --max-size N         long side limit
  --max-anchors N      most anchors per location (default 9, the paper's; more anchors per
                       location cost head compute, and a head trained with 9 needs 9)
  --json               print the result as JSON

Example:
  retinanet anchors optimize ../shared/data/bccd --split train`;

function describe(c: AnchorConfig): string {
  const per = c.sizes[0]!.length * c.aspectRatios[0]!.length;
  return `sizes ${c.sizes.map((s) => s.join('/')).join(', ')}; ratios ${c.aspectRatios[0]!.join(', ')} (${per} per location)`;
}

function coverageText(c: AnchorCoverage): string {
  const pct = c.checked === 0 ? 0 : (100 * c.uncovered) / c.checked;
  return `${c.uncovered} of ${c.checked} boxes (${pct.toFixed(1)}%) have no anchor with IoU >= 0.5; mean best IoU ${c.meanBestIou.toFixed(3)}`;
}

async function optimize(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      format: { type: 'string' },
      images: { type: 'string' },
      split: { type: 'string' },
      ...MODEL_FLAGS,
      'max-anchors': { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (positionals.length !== 1) throw new UserError(`expected one dataset path, got ${positionals.length}\n\n${help}`);
  const maxA = numberFlag(values, 'max-anchors', { integer: true, min: 1 }) ?? 9;
  const cfg = resolveConfig(values);
  const spec = positionals[0]!;
  const source = spec === 'synthetic' ? syntheticSources({ seed: 0 }).train : await loadSource(spec, { ...values, quiet: values.json === true });
  const images = sourceBoxes(source);
  if (images.length === 0) throw new UserError(`${spec}: no image sizes known, so boxes cannot be resized as training would (run 'retinanet data check' on it)`);
  const current = anchorConfig(cfg);
  const r = optimizeAnchors(images, { minSize: cfg.transform.minSize, maxSize: cfg.transform.maxSize, current, maxAnchorsPerLocation: maxA, numClasses: source.classNames.length });
  const best: AnchorCandidate = r.best;
  const lines = anchorConfigJson(best.config);
  if (values.json) {
    console.log(JSON.stringify({ dataset: spec, resize: { minSize: cfg.transform.minSize, maxSize: cfg.transform.maxSize }, before: r.before, after: best.coverage, baseSize: best.baseSize, scales: best.scales, aspectRatios: best.aspectRatios, config: lines, candidates: r.tried.length }, null, 2));
    return 0;
  }
  console.log(`dataset: ${spec}, ${r.before.checked} boxes on ${images.length} images, resized to short side ${cfg.transform.minSize} / long side <= ${cfg.transform.maxSize} (${cfg.name})`);
  console.log(`current anchors: ${describe(current)}`);
  console.log(`  ${coverageText(r.before)}`);
  console.log(`best of ${r.tried.length} candidates: P3 base size ${best.baseSize}, scales ${best.scales.map((s) => s.toFixed(3)).join(', ')}, ratios ${best.aspectRatios.join(', ')}`);
  console.log(`  ${describe(best.config)}`);
  console.log(`  ${coverageText(best.coverage)}`);
  const perNow = current.sizes[0]!.length * current.aspectRatios[0]!.length;
  const perBest = best.config.sizes[0]!.length * best.config.aspectRatios[0]!.length;
  console.log(`config lines (merge into the JSON given to 'train --config'${perBest !== perNow ? `; ${perBest} anchors per location instead of ${perNow} changes the heads, so train them from scratch` : ''}):`);
  console.log(JSON.stringify(lines));
  return 0;
}

/** `retinanet anchors <subcommand>`: anchor tools. */
export const anchorsCommand: Command = {
  name: 'anchors',
  summary: 'Anchor tools: `anchors optimize <dataset>` finds anchor sizes and ratios that cover its boxes',
  help,
  async run(argv: string[]): Promise<number> {
    const [sub, ...rest] = argv;
    if (sub === 'optimize') return optimize(rest);
    throw new UserError(sub === undefined ? `missing subcommand\n\n${help}` : `unknown subcommand '${sub}' (expected: optimize)`);
  },
};
