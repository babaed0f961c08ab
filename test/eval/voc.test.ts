import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  EvalInputError,
  ap11Point,
  apArea,
  evaluateVoc,
  parseVocDetections,
  parseVocXml,
  readNames,
  readVocAnnotationDir,
  readVocDetectionDir,
  vocIou,
  type VocObject,
} from '../../src/eval/index.js';
import { ROOT, SHARED, skipUnlessShared } from './helpers.js';

test('VOC AP on voc100 equals the devkit port (11-point and area, difficult ignored)', { skip: skipUnlessShared('voc100') }, () => {
  const dir = path.join(SHARED, 'voc100');
  const golden = JSON.parse(readFileSync(path.join(ROOT, 'test/fixtures/eval/voc100_golden.json'), 'utf8')) as {
    labels: string[];
    perClass: { label: string; numGt: number; numDets: number; tp: number; fp: number; ap11: number; apArea: number }[];
    mAP11: number;
    mAPArea: number;
  };
  const names = readNames(path.join(dir, 'voc.names'));
  const { objects, imageIds } = readVocAnnotationDir(path.join(dir, 'gts/pascalvoc_format'));
  assert.equal(objects.filter((o) => o.difficult).length, 38);
  const dets = readVocDetectionDir(path.join(dir, 'dets/abs_xyx2y2'), names);
  const r = evaluateVoc(objects, dets, { imageIds, labels: names });
  for (const [i, exp] of golden.perClass.entries()) {
    const got = r.perClass[i]!;
    assert.equal(got.label, exp.label);
    assert.deepEqual([got.numGt, got.numDets, got.tp, got.fp], [exp.numGt, exp.numDets, exp.tp, exp.fp], exp.label);
    assert.ok(Math.abs(got.ap11 - exp.ap11) <= 1e-12, `${exp.label} ap11 ${got.ap11} vs ${exp.ap11}`);
    assert.ok(Math.abs(got.apArea - exp.apArea) <= 1e-12, `${exp.label} apArea ${got.apArea} vs ${exp.apArea}`);
  }
  assert.ok(Math.abs(r.mAP11 - golden.mAP11) <= 1e-12);
  assert.ok(Math.abs(r.mAPArea - golden.mAPArea) <= 1e-12);
});

const gt = (imageId: string, box: VocObject['box'], difficult = false): VocObject => ({ imageId, label: 'a', box, difficult });

test('difficult objects: matching one is neither TP nor FP, and they are not counted as misses', () => {
  const r = evaluateVoc([gt('1', [0, 0, 9, 9]), gt('1', [50, 50, 59, 59], true)], [
    { imageId: '1', label: 'a', box: [50, 50, 59, 59], score: 0.9 },
    { imageId: '1', label: 'a', box: [0, 0, 9, 9], score: 0.8 },
  ]);
  const c = r.perClass[0]!;
  assert.deepEqual([c.numGt, c.tp, c.fp], [1, 1, 0]);
  assert.equal(c.apArea, 1);
  assert.ok(Math.abs(c.ap11 - 1) < 1e-15);
});

test('a second detection of the same object is a false positive', () => {
  const r = evaluateVoc([gt('1', [0, 0, 9, 9]), gt('2', [0, 0, 9, 9])], [
    { imageId: '1', label: 'a', box: [0, 0, 9, 9], score: 0.9 },
    { imageId: '1', label: 'a', box: [0, 0, 9, 8], score: 0.8 },
    { imageId: '2', label: 'a', box: [0, 0, 9, 9], score: 0.7 },
  ]);
  const c = r.perClass[0]!;
  assert.deepEqual([c.tp, c.fp], [2, 1]);
  // PR points: (0.5, 1), (0.5, 0.5), (1, 2/3): area = 0.5*1 + 0.5*2/3.
  assert.ok(Math.abs(c.apArea - (0.5 + 1 / 3)) < 1e-15);
  // 11-point: recall <= 0.5 -> 1 (6 levels), above -> 2/3 (5 levels).
  assert.ok(Math.abs(c.ap11 - (6 + 5 * (2 / 3)) / 11) < 1e-15);
});

test('AP formulas on a textbook curve', () => {
  assert.ok(Math.abs(apArea([0.2, 0.4, 0.4, 0.6], [1, 1, 0.67, 0.75]) - (0.4 + 0.2 * 0.75)) < 1e-12);
  assert.ok(Math.abs(ap11Point([0.2, 0.4, 0.4, 0.6], [1, 1, 0.67, 0.75]) - (5 * 1 + 2 * 0.75) / 11) < 1e-12);
  assert.equal(apArea([], []), 0);
});

test('IoU uses the inclusive-pixel convention', () => {
  assert.equal(vocIou([0, 0, 9, 9], [0, 0, 9, 9]), 1);
  assert.equal(vocIou([0, 0, 9, 9], [5, 0, 14, 9]), 50 / 150);
  assert.equal(vocIou([0, 0, 9, 9], [10, 0, 19, 9]), 0);
});

test('classes without ground truth report -1 and are left out of mAP; unknown images are an error', () => {
  const r = evaluateVoc([gt('1', [0, 0, 9, 9])], [{ imageId: '1', label: 'b', box: [0, 0, 9, 9], score: 1 }], { labels: ['a', 'b'] });
  assert.equal(r.perClass[1]!.apArea, -1);
  assert.equal(r.mAPArea, 0);
  assert.throws(() => evaluateVoc([gt('1', [0, 0, 9, 9])], [{ imageId: 'x', label: 'a', box: [0, 0, 1, 1], score: 1 }]), EvalInputError);
});

test('parsers read VOC XML and "<class> <score> <box>" lines', () => {
  const xml = '<annotation><object><name>dog</name><difficult>1</difficult><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>30</xmax><ymax>40</ymax></bndbox></object></annotation>';
  assert.deepEqual(parseVocXml(xml, 'img'), [{ imageId: 'img', label: 'dog', box: [1, 2, 30, 40], difficult: true }]);
  assert.deepEqual(parseVocDetections('1 0.5 1 2 3 4\ncat 0.25 5 6 7 8\n', 'img', ['dog', 'cat']), [
    { imageId: 'img', label: 'cat', score: 0.5, box: [1, 2, 3, 4] },
    { imageId: 'img', label: 'cat', score: 0.25, box: [5, 6, 7, 8] },
  ]);
  assert.throws(() => parseVocDetections('cat 0.5 1 2 3', 'img'), /line 1/);
});
