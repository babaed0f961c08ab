import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  EvalInputError,
  cocoStatsJson,
  evaluateCoco,
  evaluateVoc,
  formatCocoPerClass,
  formatCocoSummary,
  formatVocResult,
  readNames,
  readVocAnnotationDir,
  readVocDetectionDir,
  remapResults,
  writeCocoReport,
  writeVocReport,
  type CocoDataset,
  type CocoResult,
  type CocoResultsObject,
} from '../eval/index.js';
import { type Command, UserError } from './command.js';

const help = `Usage: retinanet eval --gt GT.json --dets RESULTS.json [options]
       retinanet eval --voc-gt XML_DIR --voc-dets TXT_DIR [--names FILE] [options]

COCO bbox evaluation with the same numbers as pycocotools' COCOeval (12-line summary),
or Pascal VOC AP per class (area-under-curve and VOC2007 11-point, difficult ignored).

COCO:
  --gt FILE          COCO ground truth (instances_*.json)
  --dets FILE        COCO results: [{image_id, category_id, bbox: [x, y, w, h], score}, ...]
  --iou-type TYPE    only 'bbox' is supported (default bbox)
  --img-ids LIST     evaluate only these image ids (comma separated)
  --cat-ids LIST     evaluate only these category ids (comma separated)

VOC:
  --voc-gt DIR       folder of Pascal VOC XML annotations (one per image)
  --voc-dets DIR     folder of <image>.txt files, lines '<class> <score> <xmin> <ymin> <xmax> <ymax>'
  --names FILE       class names, one per line (numeric classes index it; also sets the class order)
  --iou X            IoU threshold for a true positive (default 0.5)

Output:
  --json             print one JSON object (AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl;
                     for VOC: mAP, mAP11 and per-class APs)
  --per-class        also print per-class AP (table, or "perClass" in --json)
  --report DIR       write report.md, report.html, metrics.json and precision-recall SVGs to DIR
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

function runCoco(v: Record<string, string | boolean | undefined>): number {
  if (typeof v.gt !== 'string' || typeof v.dets !== 'string') throw new UserError('COCO evaluation needs both --gt GT.json and --dets RESULTS.json (see --help)');
  const gt = readJson(v.gt, 'ground-truth') as CocoDataset;
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
  const result = evaluateCoco(gt, dets as CocoResult[], {
    imgIds: idList(v['img-ids'] as string | undefined, '--img-ids'),
    catIds: idList(v['cat-ids'] as string | undefined, '--cat-ids'),
  });
  if (v.json) console.log(JSON.stringify(cocoStatsJson(result, v['per-class'] === true)));
  else {
    console.log(formatCocoSummary(result));
    if (v['per-class']) console.log(`\n${formatCocoPerClass(result)}`);
  }
  if (typeof v.report === 'string') {
    const files = writeCocoReport(v.report, result);
    console.error(`report written to ${path.join(v.report, files.html)} (${files.plots.length} plots)`);
  }
  return 0;
}

function runVoc(v: Record<string, string | boolean | undefined>): number {
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
    const files = writeVocReport(v.report, result);
    console.error(`report written to ${path.join(v.report, files.html)} (${files.plots.length} plots)`);
  }
  return 0;
}

/** `retinanet eval`: COCO (pycocotools-identical) or Pascal VOC evaluation of a results file. */
export const evalCommand: Command = {
  name: 'eval',
  summary: 'Evaluate detections: COCO mAP (pycocotools-identical) or Pascal VOC AP, with reports',
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
        weights: { type: 'string' },
        data: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    });
    if (values.weights !== undefined || values.data !== undefined) {
      throw new UserError('--weights/--data (detect, then evaluate) is not available yet; run detection to a COCO results file and pass it with --dets');
    }
    if (values['iou-type'] !== 'bbox') throw new UserError(`--iou-type '${values['iou-type']}' is not supported; only 'bbox' is`);
    try {
      return values['voc-gt'] !== undefined ? runVoc(values) : runCoco(values);
    } catch (err) {
      if (err instanceof EvalInputError) throw new UserError(err.message);
      throw err;
    }
  },
};
