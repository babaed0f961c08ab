import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  checkCocoGroundTruth,
  cocoStatsJson,
  evaluateCoco,
  evaluateVoc,
  formatCocoPerClass,
  formatCocoSummary,
  formatVocResult,
  readNames,
  readVocAnnotationDir,
  readVocDetectionDir,
  analyzeDetections,
  remapResults,
  writeCocoReport,
  writeVocReport,
  type CocoDataset,
  type CocoEvalResult,
  type CocoResult,
  type CocoResultsObject,
  type DetectionAnalysis,
} from '../eval/index.js';
import type { PageSection } from '../plot/page.js';
import { writeFigure } from '../plot/render.js';
import { imageGridSections } from '../model/report.js';
import { anchorLossCdf, lossCdfSpec, type LossCdf } from '../model/loss_cdf.js';
import { type Command, UserError } from './command.js';
import { checkOutputDir, checkOutputFile } from '../core/output.js';
import { writeAtomic } from '../core/atomic.js';
import { type ShardManifest, inShard, parseShard, shardManifestPath } from '../data/shard.js';
import { IMAGE_FLAGS, INFERENCE_FLAGS, MODEL_FLAGS, applyImageFlags, checkWeightsSpec, inferenceOptions, loadModel, loadSource, numberFlag, stringFlag, commandLine } from './common.js';
import { labelCategories } from '../model/labels.js';
import { QUEUE_FLAGS, queueRequested } from './queue_common.js';
import { ProgressBar } from './progress.js';
import { architectureNames } from '../model/config.js';
import { evaluateModel } from '../model/evaluate.js';
import { RetinaNet } from '../model/model.js';
import { isOnnxModelFile } from '../model/detector.js';
import { syntheticSources } from '../data/synthetic_source.js';
import { type SampleSource, cocoGroundTruth } from '../data/source.js';

const help = `Usage: retinanet eval --gt GT.json --dets RESULTS.json [options]
       retinanet eval --voc-gt XML_DIR --voc-dets TXT_DIR [--names FILE] [options]
       retinanet eval --weights W|model.onnx --data DATASET [options]

COCO bbox evaluation with the same numbers as pycocotools' COCOeval (12-line summary),
or Pascal VOC AP per class (area-under-curve and VOC2007 11-point, difficult ignored),
or detection with a model on a dataset followed by COCO evaluation of its results.

COCO:
  --gt FILE          COCO ground truth (instances_*.json)
  --dets FILE        COCO results: [{image_id, category_id, bbox: [x, y, w, h], score}, ...]
  --iou-type TYPE    only 'bbox' is supported (default bbox)
  --img-ids LIST     evaluate only these image ids (comma separated)
  --cat-ids LIST     evaluate only these category ids (comma separated)
  --allow-unknown-categories  evaluate even when results use category ids the ground truth
                     lacks (they are dropped, as pycocotools does; a warning says how many).
                     Without it that is an error, as is a results file with no detections

VOC:
  --voc-gt DIR       folder of Pascal VOC XML annotations (one per image)
  --voc-dets DIR     folder of <image>.txt files, lines '<class> <score> <xmin> <ymin> <xmax> <ymax>'
  --names FILE       class names, one per line (numeric classes index it; also sets the class order)
  --iou X            IoU threshold for a true positive (default 0.5)

Results on a dataset's own annotations:
  --data PATH --dets FILE   (no --weights) COCO results scored against the dataset's boxes

Model on a dataset (detect, then COCO evaluation):
  --weights W        weights: a safetensors or .pth file with torchvision names (a FILE.json
                     sidecar written by 'train' supplies the config and class names), or
                     a NAME of 'retinanet weights list' (downloaded on first use), or a URL
                     Or a model written by 'retinanet export' (.onnx, float32 or int8):
                     config and class names come from its metadata
  --data PATH        COCO .json, VOC folder, keras-retinanet .csv, YOLO folder, or 'synthetic'
                     for the built-in synthetic validation split
  --format F         coco | voc | csv | yolo (default: detected)
  --images DIR       image folder (COCO: default is the JSON's folder)
  --split NAME       VOC ImageSets/Main/NAME.txt (or YOLO/COCO split) of --data
  --strict           stop at the first dataset problem instead of skipping
  --max-images N     evaluate only the first N images (synthetic: generate only N)
  --seed S           seed of the synthetic data (default 0, the split 'train --data synthetic'
                     validates on)
  --arch NAME        ${architectureNames().join(', ')}
  --config FILE      JSON config ({"arch": NAME, ...overrides})
  --num-classes N    number of classes (torchvision COCO weights: 91)
  --min-size N       short side after resizing
  --max-size N       long side limit
  --score-thresh S   minimum score (default 0.05)
  --nms-thresh T     IoU threshold of class-wise NMS (default 0.5)
  --detections-per-img N  detections kept per image (default 100)
  --threads N        threads for ONNX Runtime (default: all cores)
  --save-dets FILE   also write the detections as COCO results JSON
  --shard K/N        evaluate only shard K of N (by a hash of the image id; needs --save-dets):
                     'retinanet merge' joins the shards' results, and 'eval --data DATASET
                     --dets MERGED' gives the numbers of a single run
  --quiet            no progress bar
  --max-pixels N     refuse images over N pixels (default 100000000)
  --max-memory SIZE  memory budget, e.g. 8G (default: 80% of the machine's memory)
  --queue URL        detect on a BullMQ queue's workers ('retinanet worker'), then score the
                     merged results here: the numbers of a local run (see 'detect --help')
  --shard-size N     images per shard (default 16); --run ID re-attaches (same command)
  Model classes are matched to the dataset's categories by name when the model has class
  names; otherwise by index, or as COCO category ids for torchvision-style 91-class models.

Output:
  --json             print one JSON object (AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl;
                     for VOC: mAP, mAP11 and per-class APs)
  --per-class        also print per-class AP and AP50 (table, or "perClass" and "perClassAP50" in --json)
  --report DIR       write report.html (and report.md, metrics.json) with figures as PNG + SVG
                     to DIR: precision-recall overall and per class; for COCO also F1, precision
                     and recall against the score threshold (the best-F1 threshold is printed),
                     the confusion matrix with background row and column, and the COCO error
                     analysis (C75, C50, Loc, Sim, Oth, BG, FN) overall and per class; with
                     --weights/--data also grids of images (ground truth beside predictions,
                     and the images with the most missed objects)
  --report-score S   score threshold of the confusion matrix and image grids (default: the
                     best-F1 threshold)
  --loss-cdf         with --weights/--data and --report: also loss_cdf.png, the cumulative
                     focal loss of positive and negative anchors for gamma 0, 0.5, 1, 2 (the
                     paper's Figure 4)
  -h, --help         show this help`;

function readJson(file: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read ${what} file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UserError(`${what} file ${file} is not valid JSON: ${(err as Error).message}`);
  }
}

function idList(s: string | undefined, flag: string): number[] | undefined {
  if (s === undefined) return undefined;
  const ids = s.split(',').map((v) => Number(v.trim()));
  if (ids.length === 0 || ids.some((v) => !Number.isFinite(v))) throw new UserError(`${flag} expects comma-separated numeric ids, got '${s}'`);
  return ids;
}

type Values = Record<string, string | boolean | undefined>;

async function runCoco(v: Values): Promise<number> {
  if (typeof v.gt !== 'string' || typeof v.dets !== 'string') throw new UserError('COCO evaluation needs both --gt GT.json and --dets RESULTS.json (see --help)');
  const gt = readJson(v.gt, 'ground-truth') as CocoDataset;
  try {
    checkCocoGroundTruth(gt); // entries of the wrong shape are named here, before anything reads them
  } catch (err) {
    throw new UserError(`ground-truth file ${v.gt}: ${(err as Error).message}`);
  }
  let dets = readJson(v.dets, 'results') as unknown;
  // Some tools save results as a whole COCO object with their own image/category ids.
  if (dets && !Array.isArray(dets) && Array.isArray((dets as { annotations?: unknown }).annotations)) {
    if (!Array.isArray(gt?.images) || !Array.isArray(gt?.categories)) throw new UserError(`ground-truth file ${v.gt} is not a COCO dataset`);
    const { dets: mapped, summary } = remapResults(gt, dets as CocoResultsObject);
    const notes = [
      summary.imagesRemapped ? 'image ids matched to the ground truth by file_name' : '',
      summary.categoriesRemapped ? 'category ids matched by name' : '',
      summary.droppedUnknownCategory > 0 ? `${summary.droppedUnknownCategory} detection(s) of categories not in the ground truth dropped` : '',
    ].filter((n) => n !== '');
    if (notes.length > 0) console.error(`note: results file is a COCO object: ${notes.join('; ')}`);
    dets = mapped;
  }
  checkResults(gt, dets, v);
  const result = evaluateCoco(gt, dets as CocoResult[], {
    imgIds: idList(v['img-ids'] as string | undefined, '--img-ids'),
    catIds: idList(v['cat-ids'] as string | undefined, '--cat-ids'),
  });
  await printCoco(result, v, { gt, dets: dets as CocoResult[] });
  return 0;
}

/** A short description of a set of ids: `1-80` when contiguous, else the first few. */
function idRange(ids: readonly number[]): string {
  const s = [...new Set(ids)].sort((a, b) => a - b);
  if (s.length === 0) return 'none';
  if (s[s.length - 1]! - s[0]! === s.length - 1) return s.length === 1 ? String(s[0]) : `${s[0]}-${s[s.length - 1]}`;
  return s.length <= 8 ? s.join(', ') : `${s.slice(0, 8).join(', ')}, ...`;
}

/**
 * pycocotools silently drops results on categories the ground truth lacks, so 0-based or
 * otherwise shifted category ids score AP 0 without a word; an empty results list likewise.
 * Both are errors here (unknown categories a loud warning with --allow-unknown-categories).
 */
function checkResults(gt: CocoDataset, dets: unknown, v: Values): void {
  if (!Array.isArray(dets)) return; // evaluateCoco names the problem
  if (dets.length === 0) throw new UserError(`results file ${String(v.dets)} holds no detections: nothing to evaluate`);
  if (!Array.isArray(gt?.categories)) return;
  const known = new Set(gt.categories.map((c) => c.id));
  const unknown: number[] = [];
  let count = 0;
  for (const d of dets as { category_id?: unknown }[]) {
    if (typeof d?.category_id === 'number' && !known.has(d.category_id)) {
      unknown.push(d.category_id);
      count++;
    }
  }
  if (count === 0) return;
  // Ids one below the ground truth's smallest: labels written as category ids (0-based).
  const shifted = unknown.includes([...known].reduce((a, b) => Math.min(a, b), Infinity) - 1); // no spread: 10^5+ ids overflow the stack
  const msg =
    `${count} result(s) use category id(s) ${idRange(unknown)} that are not in the ground truth (its ids: ${idRange([...known])})` +
    (shifted ? '; 0-based labels written as category ids?' : '');
  if (v['allow-unknown-categories'] !== true) throw new UserError(`${msg}. They would be dropped and score nothing; pass --allow-unknown-categories to evaluate the rest anyway`);
  console.error(`warning: ${msg}; these results are dropped (pycocotools does the same)`);
}

/** Prints a COCO result as asked (summary, --json, --per-class) and writes --report. */
async function printCoco(result: CocoEvalResult, v: Values, input: { gt: CocoDataset; dets: CocoResult[] }, extra: ReportExtras = {}): Promise<void> {
  if (v.json) console.log(JSON.stringify(cocoStatsJson(result, v['per-class'] === true)));
  else {
    console.log(formatCocoSummary(result));
    if (v['per-class']) console.log(`\n${formatCocoPerClass(result)}`);
  }
  if (typeof v.report === 'string') {
    const analysis = analyzeDetections(input.gt, input.dets, { scoreThreshold: numberFlag(v, 'report-score', { min: 0, max: 1 }), catIds: idList(v['cat-ids'] as string | undefined, '--cat-ids') });
    const b = analysis.curves.best;
    console.error(`best F1 ${b.f1.toFixed(3)} at score threshold ${b.threshold.toFixed(2)} (precision ${Number.isNaN(b.precision) ? '-' : b.precision.toFixed(3)}, recall ${b.recall.toFixed(3)}, IoU 0.5)`);
    const sectionsAfter = [...((await extra.sections?.(analysis)) ?? []), { heading: 'Command', pre: commandLine() }];
    const files = await writeCocoReport(v.report, result, { analysis, sectionsAfter });
    console.error(`report written to ${path.join(v.report, files.html)} (${files.plots.length} figures)`);
  }
}

/** What a model evaluation adds to the report: sections built from the analysis (image grids, loss CDF). */
interface ReportExtras {
  sections?: (analysis: DetectionAnalysis) => Promise<PageSection[]>;
}

/** `--data D --dets F`: results scored against a dataset's own annotations (e.g. merged shards). */
async function runDatasetResults(v: Values): Promise<number> {
  const data = stringFlag(v, 'data')!;
  if (v['loss-cdf'] === true) throw new UserError('--loss-cdf needs a model (--weights): with --dets there are only detections');
  const source: SampleSource = await loadSource(data, v);
  const gt = await cocoGroundTruth(source);
  const dets = readJson(String(v.dets), 'results');
  checkResults(gt, dets, v);
  await printCoco(evaluateCoco(gt, dets as CocoResult[]), v, { gt, dets: dets as CocoResult[] });
  return 0;
}

async function runModel(v: Values): Promise<number> {
  const weights = stringFlag(v, 'weights');
  const data = stringFlag(v, 'data');
  if (data && !weights && typeof v.dets === 'string') return runDatasetResults(v);
  if (!weights || !data) throw new UserError('evaluating a model needs both --weights W.safetensors and --data DATASET (see --help)');
  for (const flag of ['gt', 'dets', 'voc-gt', 'voc-dets', 'img-ids', 'cat-ids']) {
    if (v[flag] !== undefined) throw new UserError(`--${flag} cannot be combined with --weights/--data`);
  }
  checkWeightsSpec(weights, '--weights');
  if (v['loss-cdf'] === true && isOnnxModelFile(weights)) throw new UserError('--loss-cdf needs the trained weights (.safetensors or .pth): an exported .onnx model gives detections, not the logits of every anchor');
  const maxImages = numberFlag(v, 'max-images', { integer: true, min: 1 });
  const seed = numberFlag(v, 'seed', { integer: true, min: 0 });
  if (seed !== undefined && data !== 'synthetic') throw new UserError('--seed applies to --data synthetic only');
  const inference = inferenceOptions(v);
  const saveDets = stringFlag(v, 'save-dets');
  const shardFlag = stringFlag(v, 'shard');
  const shard = shardFlag !== undefined ? parseShard(shardFlag) : undefined;
  if (shard && !saveDets) throw new UserError("--shard needs --save-dets FILE: a shard's AP covers its images only; merge the shards' results ('retinanet merge'), then 'eval --data DATASET --dets MERGED'");
  // Only the validation split is needed; one training image keeps the generator's work minimal.
  const source: SampleSource = data === 'synthetic' ? syntheticSources({ seed: seed ?? 0, trainCount: 1, valCount: maxImages }).val : await loadSource(data, v);
  const model = await loadModel(weights, v);
  model.checkOptions?.(inference);
  const { categoryIds, note } = labelCategories(model.numClasses, model.classNames, source);
  if (note) process.stderr.write(`note: ${note}\n`);
  const count = Math.min(source.length, maxImages ?? Infinity);
  // A shard: the images whose id hashes to it (stable whatever the other images are).
  const indices = [...Array(count).keys()].filter((i) => !shard || inShard(String(source.imageId(i)), shard));

  const bar = v.quiet === true ? undefined : new ProgressBar(indices.length, 'eval');
  let evaluated;
  let cdf: LossCdf | undefined;
  try {
    evaluated = await evaluateModel(model, source, {
      ...inference,
      categoryIds,
      indices,
      onProgress: (done) => bar?.update(done),
      onSkip: (message) => process.stderr.write(`\nwarning: ${message}\n`),
    });
    bar?.done();
    if (v['loss-cdf'] === true) {
      const cdfBar = v.quiet === true ? undefined : new ProgressBar(evaluated.evaluated.length, 'loss cdf');
      if (!(model instanceof RetinaNet)) throw new UserError('--loss-cdf needs the trained weights, not an exported model');
      cdf = await anchorLossCdf(model, source, { indices: evaluated.evaluated, threads: inference.threads, onProgress: (done) => cdfBar?.update(done) });
      cdfBar?.done();
    }
  } finally {
    bar?.done();
    await model.dispose();
  }
  if (saveDets) {
    await mkdir(path.dirname(path.resolve(saveDets)), { recursive: true });
    await writeAtomic(saveDets, JSON.stringify(evaluated.detections) + '\n');
    if (shard) {
      const images = evaluated.evaluated.map((i) => ({ index: i, id: source.imageId(i), file_name: path.basename(source.describe(i)) }));
      await writeAtomic(shardManifestPath(saveDets), JSON.stringify({ shard: shardFlag!, idsFromGroundTruth: true, images } satisfies ShardManifest) + '\n');
    }
    console.error(`${evaluated.detections.length} detections on ${indices.length} image(s)${shard ? ` (shard ${shardFlag})` : ''} written to ${saveDets}`);
  }
  if (shard) console.error(`note: the numbers below are for shard ${shardFlag}'s ${evaluated.evaluated.length} image(s) only`);
  const report = typeof v.report === 'string' ? v.report : undefined;
  const done = evaluated;
  await printCoco(evaluated.result, v, { gt: evaluated.gt, dets: evaluated.detections }, {
    sections: async (analysis) => {
      if (!report) return [];
      const sections = await imageGridSections(report, source, done, analysis);
      if (cdf) {
        const f = await writeFigure(report, 'loss_cdf', lossCdfSpec(cdf));
        sections.push({
          heading: 'Focal loss distribution',
          text: `Cumulative normalised focal loss over ${cdf.counts.positives} positive and ${cdf.counts.negativesKept} negative anchors of ${cdf.counts.images} images (the paper's Figure 4): with gamma 2 most of the negatives' loss comes from a small fraction of hard negatives.`,
          figures: [{ src: f.png, href: f.svg }],
        });
      }
      return sections;
    },
  });
  return 0;
}

async function runVoc(v: Values): Promise<number> {
  if (typeof v['voc-dets'] !== 'string') throw new UserError('VOC evaluation needs --voc-dets DIR as well as --voc-gt DIR');
  const names = typeof v.names === 'string' ? readNames(v.names) : undefined;
  const iou = v.iou === undefined ? 0.5 : Number(v.iou);
  if (!(iou > 0 && iou <= 1)) throw new UserError(`--iou must be in (0, 1], got '${String(v.iou)}'`);
  const { objects, imageIds } = readVocAnnotationDir(v['voc-gt'] as string);
  const dets = readVocDetectionDir(v['voc-dets'], names);
  const result = evaluateVoc(objects, dets, { imageIds, iouThreshold: iou, labels: names });
  if (v.json) {
    const out: Record<string, unknown> = { mAP: result.mAPArea, mAP11: result.mAP11, iou: result.iouThreshold };
    if (v['per-class']) out.perClass = Object.fromEntries(result.perClass.map((c) => [c.label, { AP: c.apArea, AP11: c.ap11 }]));
    console.log(JSON.stringify(out));
  } else console.log(formatVocResult(result));
  if (typeof v.report === 'string') {
    const files = await writeVocReport(v.report, result);
    console.error(`report written to ${path.join(v.report, files.html)} (${files.plots.length} figures)`);
  }
  return 0;
}

/** `retinanet eval`: COCO (pycocotools-identical) or Pascal VOC evaluation of a results file, or of a model run on a dataset. */
export const evalCommand: Command = {
  name: 'eval',
  summary: 'Evaluate detections or a model on a dataset: COCO mAP (pycocotools-identical) or Pascal VOC AP, with reports',
  help,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        gt: { type: 'string' },
        dets: { type: 'string' },
        'iou-type': { type: 'string', default: 'bbox' },
        'img-ids': { type: 'string' },
        'cat-ids': { type: 'string' },
        'voc-gt': { type: 'string' },
        'voc-dets': { type: 'string' },
        names: { type: 'string' },
        iou: { type: 'string' },
        json: { type: 'boolean', default: false },
        'per-class': { type: 'boolean', default: false },
        report: { type: 'string' },
        'report-score': { type: 'string' },
        'loss-cdf': { type: 'boolean' },
        weights: { type: 'string' },
        data: { type: 'string' },
        format: { type: 'string' },
        images: { type: 'string' },
        split: { type: 'string' },
        strict: { type: 'boolean' },
        'max-images': { type: 'string' },
        seed: { type: 'string' },
        ...MODEL_FLAGS,
        ...INFERENCE_FLAGS,
        'save-dets': { type: 'string' },
        quiet: { type: 'boolean' },
        'allow-unknown-categories': { type: 'boolean' },
        shard: { type: 'string' },
        ...IMAGE_FLAGS,
        ...QUEUE_FLAGS,
      },
      strict: true,
      allowPositionals: false,
    });
    if (values['iou-type'] !== 'bbox') throw new UserError(`--iou-type '${values['iou-type']}' is not supported; only 'bbox' is`);
    applyImageFlags(values);
    // Outputs are checked before any work.
    if (typeof values.report === 'string') checkOutputDir(values.report, '--report');
    if (values['loss-cdf'] === true && typeof values.report !== 'string') throw new UserError('--loss-cdf writes into the report: give --report DIR too');
    numberFlag(values, 'report-score', { min: 0, max: 1 });
    if (typeof values['save-dets'] === 'string') checkOutputFile(values['save-dets'], '--save-dets');
    if (queueRequested(values)) return await (await import('./queue_eval.js')).runQueuedEval(values, printCoco);
    const modelMode = values.weights !== undefined || values.data !== undefined;
    if (values.data !== undefined && values.weights === undefined && values.dets !== undefined) {
      for (const flag of ['gt', 'voc-gt', 'voc-dets', 'save-dets', 'shard'] as const) if (values[flag] !== undefined) throw new UserError(`--${flag} cannot be combined with --data/--dets`);
    } else if (values.dets !== undefined && values.data !== undefined) {
      throw new UserError('--dets cannot be combined with --weights: --weights detects; give either');
    }
    if (!modelMode) {
      const modelOnly = ['loss-cdf', 'format', 'images', 'split', 'strict', 'max-images', 'seed', 'arch', 'config', 'num-classes', 'min-size', 'max-size', 'score-thresh', 'nms-thresh', 'detections-per-img', 'threads', 'save-dets', 'quiet', 'max-pixels', 'max-memory', 'shard'] as const;
      const given = modelOnly.find((f) => values[f] !== undefined);
      if (given) throw new UserError(`--${given} applies to --weights/--data evaluation only`);
    }
    if (modelMode) return await runModel(values);
    return values['voc-gt'] !== undefined ? await runVoc(values) : await runCoco(values);
  },
};
