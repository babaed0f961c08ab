import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadDataset } from '../../../src/data/datasets/index.js';

// The project's shared real datasets live next to the repository (../shared/data); see its README.md.
const DATA = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../../shared/data');
const skip = existsSync(path.join(DATA, 'README.md')) ? false : `shared datasets not found at ${DATA}`;

const count = (ds: Awaited<ReturnType<typeof loadDataset>>['dataset']) => ds.images.reduce((s, im) => s + im.labels.length, 0);

test('bccd (VOC): 364 images, the two zero-size boxes reported', { skip }, async () => {
  const { dataset, format, problems } = await loadDataset(path.join(DATA, 'bccd'));
  assert.equal(format, 'voc');
  assert.equal(dataset.images.length, 364);
  assert.deepEqual(dataset.classNames, ['Platelets', 'RBC', 'WBC']);
  assert.equal(count(dataset), 4888 - 2);
  assert.deepEqual(problems.map((p) => path.basename(p.file)), ['BloodImage_00338.xml', 'BloodImage_00343.xml']);
  assert.ok(problems.every((p) => /zero width or height/.test(p.message) && p.line! > 0));
  const test_ = await loadDataset(path.join(DATA, 'bccd'), { split: 'test' });
  assert.equal(test_.dataset.images.length, 72);
});

test('coco128 (COCO): 939 boxes, 10 crowd, 80 classes, images in train2017/', { skip }, async () => {
  const { dataset, format, problems } = await loadDataset(path.join(DATA, 'coco128'));
  assert.equal(format, 'coco');
  assert.equal(dataset.images.length, 128);
  assert.equal(dataset.classNames.length, 80);
  assert.equal(dataset.categoryIds[79], 90);
  assert.equal(count(dataset), 939);
  assert.equal(dataset.images.reduce((s, im) => s + im.crowd.reduce((a, b) => a + b, 0), 0), 10);
  assert.equal(dataset.images.filter((im) => im.labels.length === 0).length, 2);
  assert.deepEqual(problems, []);
  assert.ok(dataset.images[0]!.file.endsWith(path.join('coco128', 'train2017', '000000000009.jpg')));
});

test('raccoon: headed CSV and VOC XML agree', { skip }, async () => {
  const csv = await loadDataset(path.join(DATA, 'raccoon', 'raccoon_labels.csv'));
  const voc = await loadDataset(path.join(DATA, 'raccoon', 'annotations'));
  assert.equal(csv.format, 'csv');
  assert.equal(csv.dataset.images.length, 200);
  assert.equal(count(csv.dataset), 217);
  assert.equal(count(voc.dataset), 217);
  const byFile = new Map(voc.dataset.images.map((im) => [im.file, im]));
  for (const im of csv.dataset.images) assert.deepEqual([...im.boxes].sort(), [...byFile.get(im.file)!.boxes].sort(), im.file);
  assert.deepEqual(csv.problems, []);
});

test('voc100: VOC XML and its COCO conversion have the same boxes; 38 difficult', { skip }, async () => {
  const voc = await loadDataset(path.join(DATA, 'voc100', 'gts', 'pascalvoc_format'), { classesFile: path.join(DATA, 'voc100', 'voc.names') });
  const coco = await loadDataset(path.join(DATA, 'voc100', 'gts', 'coco_format_v1', 'instances_default.json'), { imagesDir: path.join(DATA, 'voc100', 'images') });
  assert.equal(voc.dataset.images.length, 100);
  assert.equal(count(voc.dataset), 273);
  assert.equal(count(coco.dataset), 273);
  assert.equal(voc.dataset.images.reduce((s, im) => s + im.difficult.reduce((a, b) => a + b, 0), 0), 38);
  assert.deepEqual(voc.problems, []);
  assert.deepEqual(coco.problems, []);
});
