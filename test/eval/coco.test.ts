import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  COCO_IOU_THRS,
  COCO_REC_THRS,
  EvalInputError,
  evaluateCoco,
  remapResults,
  type CocoDataset,
  type CocoEvalOptions,
  type CocoResult,
  type CocoResultsObject,
} from '../../src/eval/index.js';
import { pairwiseSum } from '../../src/eval/numeric.js';
import { formatCocoSummary, formatFixed3 } from '../../src/eval/summary.js';
import { ROOT, SHARED, maxAbsDiff, skipUnlessShared, unpack } from './helpers.js';

interface Expected {
  stats: number[];
  summaryText: string;
  perCategoryAP: number[];
  shape: number[];
  precision: string;
  recall: string;
  scores?: string;
}
interface Golden {
  cases: { name: string; gt: CocoDataset; dets: CocoResult[]; opts: CocoEvalOptions; expected: Expected }[];
  sharedFixture: Expected;
  voc100Coco: Expected;
}

const golden = JSON.parse(readFileSync(path.join(ROOT, 'test/fixtures/eval/coco_golden.json'), 'utf8')) as Golden;
const TOL = 1e-9;

function assertMatches(gt: CocoDataset, dets: CocoResult[], opts: CocoEvalOptions, exp: Expected): void {
  const r = evaluateCoco(gt, dets, opts);
  assert.deepEqual([r.shape.T, r.shape.R, r.shape.K, r.shape.A, r.shape.M], exp.shape);
  assert.ok(maxAbsDiff(r.statsArray, exp.stats) <= TOL, `stats ${JSON.stringify(r.statsArray)} != ${JSON.stringify(exp.stats)}`);
  assert.ok(maxAbsDiff(r.perCategory.map((c) => c.AP), exp.perCategoryAP) <= TOL, 'per-category AP');
  assert.ok(maxAbsDiff(r.precision, unpack(exp.precision)) <= TOL, 'precision array');
  assert.ok(maxAbsDiff(r.recall, unpack(exp.recall)) <= TOL, 'recall array');
  if (exp.scores) assert.ok(maxAbsDiff(r.scores, unpack(exp.scores)) <= TOL, 'scores array');
  assert.equal(formatCocoSummary(r), exp.summaryText, 'printed summary');
}

for (const c of golden.cases) {
  test(`COCOeval parity: ${c.name}`, () => assertMatches(c.gt, c.dets, c.opts, c.expected));
}

test('COCOeval parity on the shared val2014 fixture (pycocotools arrays + official printout)', { skip: skipUnlessShared('coco-eval-fixture') }, () => {
  const dir = path.join(SHARED, 'coco-eval-fixture');
  const gt = JSON.parse(readFileSync(path.join(dir, 'instances_val2014_100.json'), 'utf8')) as CocoDataset;
  const dets = JSON.parse(readFileSync(path.join(dir, 'instances_val2014_fakebbox100_results.json'), 'utf8')) as CocoResult[];
  assertMatches(gt, dets, {}, golden.sharedFixture);
  // The official evaluator's printout for type=bbox, 3 decimals.
  const txt = readFileSync(path.join(dir, 'val2014_fake_eval_res.txt'), 'utf8');
  const bbox = txt.split('type=bbox')[1]!.split('type=keypoints')[0]!;
  const printed = [...bbox.matchAll(/= (-?\d\.\d{3})/g)].map((m) => Number(m[1]));
  assert.equal(printed.length, 12);
  const ours = evaluateCoco(gt, dets).statsArray.map((v) => Number(v.toFixed(3)));
  assert.deepEqual(ours, printed);
});

test('COCOeval parity on voc100 COCO JSON, results remapped by file_name and category name', { skip: skipUnlessShared('voc100') }, () => {
  const dir = path.join(SHARED, 'voc100');
  const gt = JSON.parse(readFileSync(path.join(dir, 'gts/coco_format_v1/instances_default.json'), 'utf8')) as CocoDataset;
  const res = JSON.parse(readFileSync(path.join(dir, 'dets/coco_format/coco_dets.json'), 'utf8')) as CocoResultsObject;
  const { dets, summary } = remapResults(gt, res);
  assert.deepEqual(summary, { imagesRemapped: true, categoriesRemapped: true, droppedUnknownCategory: 0 });
  assert.equal(dets.length, 452);
  assertMatches(gt, dets, {}, golden.voc100Coco);
});

test('remapResults drops categories unknown to the ground truth and rejects unknown file names', () => {
  const gt: CocoDataset = { images: [{ id: 7, file_name: 'a.jpg' }], categories: [{ id: 3, name: 'dog' }], annotations: [] };
  const det = (image_id: number, category_id: number): CocoResult => ({ image_id, category_id, bbox: [0, 0, 1, 1], score: 1 });
  const res: CocoResultsObject = { images: [{ id: 0, file_name: 'a.jpg' }], categories: [{ id: 0, name: 'dog' }, { id: 1, name: 'cat' }], annotations: [det(0, 0), det(0, 1)] };
  const { dets, summary } = remapResults(gt, res);
  assert.deepEqual(dets, [det(7, 3)]);
  assert.equal(summary.droppedUnknownCategory, 1);
  assert.throws(() => remapResults(gt, { ...res, images: [{ id: 0, file_name: 'b.jpg' }] }), /"b\.jpg" \(id 0\) is not in the ground truth/);
});

test('results on image ids missing from the ground truth are a clear error', () => {
  const gt: CocoDataset = { images: [{ id: 1 }], categories: [{ id: 1, name: 'a' }], annotations: [] };
  const dets: CocoResult[] = [{ image_id: 42, category_id: 1, bbox: [0, 0, 1, 1], score: 1 }];
  assert.throws(() => evaluateCoco(gt, dets), (e: unknown) => e instanceof EvalInputError && /image id\(s\) that are not in the ground truth.*42/.test(e.message));
});

test('duplicate ground-truth annotation ids are refused', () => {
  const gt: CocoDataset = {
    images: [{ id: 1 }],
    categories: [{ id: 1, name: 'a' }],
    annotations: [
      { id: 5, image_id: 1, category_id: 1, bbox: [0, 0, 10, 10], area: 100, iscrowd: 0 },
      { id: 5, image_id: 1, category_id: 1, bbox: [20, 0, 10, 10], area: 100, iscrowd: 0 },
    ],
  };
  assert.throws(() => evaluateCoco(gt, []), /annotation id 5 appears more than once/);
});

test('no detections at all: AP and AR are 0 where there is ground truth, -1 elsewhere', () => {
  const gt: CocoDataset = {
    images: [{ id: 1 }],
    categories: [{ id: 1, name: 'a' }, { id: 2, name: 'b' }],
    annotations: [{ id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 10, 10], area: 100, iscrowd: 0 }],
  };
  const r = evaluateCoco(gt, []);
  assert.equal(r.stats.AP, 0);
  assert.equal(r.stats.APm, -1);
  assert.deepEqual(r.perCategory.map((c) => c.AP), [0, -1]);
});

test('malformed results are rejected with the offending index', () => {
  const gt: CocoDataset = { images: [{ id: 1 }], categories: [{ id: 1, name: 'a' }], annotations: [] };
  const bad = [{ image_id: 1, category_id: 1, bbox: [0, 0, 1], score: 1 }] as unknown as CocoResult[];
  assert.throws(() => evaluateCoco(gt, bad), /result #0 has no valid "bbox"/);
});

test('thresholds are numpy linspace values bit for bit', () => {
  assert.deepEqual(COCO_IOU_THRS, [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.8999999999999999, 0.95]);
  assert.equal(COCO_REC_THRS.length, 101);
  assert.equal(COCO_REC_THRS[7], 0.07);
  assert.equal(COCO_REC_THRS[100], 1);
});

test('pairwiseSum agrees with a plain sum up to rounding', () => {
  const a = Array.from({ length: 1000 }, (_, i) => 0.1 * ((i * 7919) % 13));
  let naive = 0;
  for (const v of a) naive += v;
  assert.ok(Math.abs(pairwiseSum(a) - naive) < 1e-9);
  assert.equal(pairwiseSum([1, 2, 3]), 6);
});

test('3-decimal formatting rounds exact ties half to even, like Python', () => {
  assert.equal(formatFixed3(0.0625), '0.062');
  assert.equal(formatFixed3(0.1875), '0.188');
  assert.equal(formatFixed3(-1), '-1.000');
  assert.equal(formatFixed3(0.5045806987249628), '0.505');
});
