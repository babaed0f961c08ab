import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { DatasetError, detectFormat, formatProblem, loadDataset } from '../../../src/data/datasets/index.js';
import { namesFromYaml } from '../../../src/data/datasets/yolo.js';
import { splitCsvLine } from '../../../src/data/datasets/csv.js';

let dir = '';
const png = (w: number, h: number) => sharp(Buffer.alloc(w * h * 3, 90), { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();

async function put(rel: string, content: string | Buffer): Promise<string> {
  const p = path.join(dir, rel);
  await mkdir(path.dirname(p), { recursive: true });
  await writeFile(p, content);
  return p;
}

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'ds-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('COCO: classes by category id, xywh to xyxy, crowd kept, images found next to annotations/', async () => {
  await put('coco/train/a.png', await png(40, 30));
  await put('coco/train/b.png', await png(20, 20));
  const json = await put(
    'coco/annotations/instances_train.json',
    JSON.stringify({
      images: [{ id: 7, file_name: 'a.png', width: 40, height: 30 }, { id: 9, file_name: 'b.png', width: 20, height: 20 }],
      categories: [{ id: 5, name: 'dog' }, { id: 2, name: 'cat' }],
      annotations: [
        { id: 1, image_id: 7, category_id: 5, bbox: [1, 2, 10, 20], iscrowd: 0 },
        { id: 2, image_id: 7, category_id: 2, bbox: [0, 0, 40, 30], iscrowd: 1 },
        { id: 3, image_id: 7, category_id: 3, bbox: [0, 0, 5, 5] },
        { id: 4, image_id: 8, category_id: 2, bbox: [0, 0, 5, 5] },
        { id: 5, image_id: 9, category_id: 2, bbox: [3, 3, 0, 4] },
      ],
    }),
  );
  assert.equal(detectFormat(path.join(dir, 'coco')), 'coco');
  const { dataset, problems } = await loadDataset(path.join(dir, 'coco'));
  assert.deepEqual(dataset.classNames, ['cat', 'dog']);
  assert.deepEqual(dataset.categoryIds, [2, 5]);
  const [a, b] = dataset.images;
  assert.equal(a!.id, 7);
  assert.equal(a!.file, path.join(dir, 'coco/train/a.png'));
  assert.deepEqual([...a!.boxes], [1, 2, 11, 22, 0, 0, 40, 30]);
  assert.deepEqual([...a!.labels], [1, 0]);
  assert.deepEqual([...a!.crowd], [0, 1]);
  assert.equal(b!.labels.length, 0);
  assert.deepEqual(
    problems.map((p) => p.message),
    ['annotation id 3: unknown category_id 3; skipped', 'annotation id 4: unknown image_id 8; skipped', 'box [3, 3, 3, 7] has zero width or height; skipped'],
  );
  await assert.rejects(loadDataset(json, { strict: true }), (e: Error) => e instanceof DatasetError && e.message.includes('instances_train.json') && /unknown category_id 3/.test(e.message));
});

const vocXml = (file: string, objects: string) => `<?xml version="1.0"?>
<annotation>
  <filename>${file}</filename>
  <size><width>50</width><height>40</height><depth>3</depth></size>
  ${objects}
</annotation>`;
const obj = (name: string, box: number[], difficult = 0) =>
  `<object><name>${name}</name><difficult>${difficult}</difficult><bndbox><xmin>${box[0]}</xmin><ymin>${box[1]}</ymin><xmax>${box[2]}</xmax><ymax>${box[3]}</ymax></bndbox></object>`;

test('VOC: split list, difficult flag, VOC class order, problems with file and line', async () => {
  await put('voc/JPEGImages/x1.jpg', await png(50, 40));
  await put('voc/JPEGImages/x2.jpg', await png(50, 40));
  await put('voc/Annotations/x1.xml', vocXml('x1.jpg', obj('dog', [1, 2, 30, 20]) + '\n' + obj('cat', [5, 5, 10, 10], 1)));
  await put('voc/Annotations/x2.xml', vocXml('x2.jpg', obj('dog', [10, 10, 200, 30]) + '\n' + obj('dog', [60, 50, 70, 60])));
  await put('voc/Annotations/x3.xml', '<annotation><filename>x3.jpg</filename>\n<object></annotation>');
  await put('voc/ImageSets/Main/train.txt', 'x1\nx2\n');
  assert.equal(detectFormat(path.join(dir, 'voc')), 'voc');
  const { dataset, problems } = await loadDataset(path.join(dir, 'voc'), { split: 'train' });
  assert.equal(dataset.classNames.length, 20);
  assert.equal(dataset.classNames[7], 'cat');
  assert.equal(dataset.images.length, 2);
  assert.deepEqual([...dataset.images[0]!.labels], [11, 7]);
  assert.deepEqual([...dataset.images[0]!.difficult], [0, 1]);
  assert.deepEqual([...dataset.images[1]!.boxes], [10, 10, 50, 30], 'partly outside: clipped');
  assert.deepEqual(problems.map(formatProblem), [
    `${path.join(dir, 'voc/Annotations/x2.xml')}:5: box [10, 10, 200, 30] lies partly outside the 50x40 image; clipped`,
    `${path.join(dir, 'voc/Annotations/x2.xml')}:6: box [60, 50, 70, 60] lies entirely outside the 50x40 image; skipped`,
  ]);
  const all = await loadDataset(path.join(dir, 'voc'));
  assert.equal(all.dataset.images.length, 2);
  assert.match(formatProblem(all.problems.at(-1)!), /x3\.xml:2: malformed XML: closing tag <\/annotation> does not match <object>/);
  await assert.rejects(loadDataset(path.join(dir, 'voc'), { split: 'nope' }), /ImageSets\/Main\/nope\.txt: split 'nope' not found/);
});

test('VOC: a plain folder with the images beside the XML files (labelImg), with or without ImageSets', async () => {
  await put('photos/a.jpg', await png(50, 40));
  await put('photos/b.jpg', await png(50, 40));
  await put('photos/a.xml', vocXml('a.jpg', obj('raccoon', [1, 2, 30, 20])));
  await put('photos/b.xml', vocXml('b.jpg', obj('raccoon', [5, 5, 40, 30])));
  const all = await loadDataset(path.join(dir, 'photos'), { checkImages: 'header' });
  assert.deepEqual(all.problems.map(formatProblem), []);
  assert.deepEqual(all.dataset.images.map((im) => im.file), [path.join(dir, 'photos/a.jpg'), path.join(dir, 'photos/b.jpg')]);
  await put('photos/ImageSets/Main/test.txt', 'b\n');
  const test = await loadDataset(path.join(dir, 'photos'), { split: 'test', checkImages: 'header' });
  assert.deepEqual(test.problems.map(formatProblem), []);
  assert.deepEqual(test.dataset.images.map((im) => im.file), [path.join(dir, 'photos/b.jpg')]);
});

test('CSV (keras-retinanet): empty-image rows, classes file with ids, malformed lines named by line', async () => {
  await put('csv/img/a.png', await png(30, 30));
  await put('csv/img/b.png', await png(30, 30));
  await put('csv/classes.csv', 'person,0\ncar,1\n');
  const csv = await put('csv/train.csv', ['img/a.png,1,2,10,12,car', 'img/b.png,,,,,', 'img/a.png,3,3,9,9,person', 'img/a.png,1,2,x,4,car', 'img/a.png,1,2,3,4,boat', '"img/a.png",0,0,5,5,car', 'img/c.png,1,1,2,2,car'].join('\n'));
  assert.equal(detectFormat(csv), 'csv');
  const { dataset, problems } = await loadDataset(csv);
  assert.deepEqual(dataset.classNames, ['person', 'car']);
  assert.equal(dataset.images.length, 2);
  assert.deepEqual([...dataset.images[0]!.boxes], [1, 2, 10, 12, 3, 3, 9, 9, 0, 0, 5, 5]);
  assert.deepEqual([...dataset.images[0]!.labels], [1, 0, 1]);
  assert.equal(dataset.images[1]!.labels.length, 0);
  assert.deepEqual(
    problems.map(formatProblem),
    [
      `${csv}:4: malformed box 'img/a.png,1,2,x,4,car' (expected numbers and a class name); line skipped`,
      `${csv}:5: unknown class 'boat' (not in ${path.join(dir, 'csv/classes.csv')}); box skipped`,
      `${csv}:7: image file ${path.join(dir, 'csv/img/c.png')} not found; image skipped`,
    ],
  );
  await assert.rejects(loadDataset(csv, { strict: true }), /train\.csv:4: malformed box/);
});

test('CSV with a header (raccoon dialect): columns by name, images/ subfolder, sizes checked', async () => {
  await put('rac/images/r1.png', await png(64, 48));
  const csv = await put('rac/labels.csv', 'filename,width,height,class,xmin,ymin,xmax,ymax\nr1.png,64,48,raccoon,4,5,60,40\nr1.png,64,48,raccoon,4,5,60\n');
  const { dataset, problems } = await loadDataset(csv, { checkImages: 'header' });
  assert.deepEqual(dataset.classNames, ['raccoon']);
  assert.equal(dataset.images[0]!.file, path.join(dir, 'rac/images/r1.png'));
  assert.deepEqual([dataset.images[0]!.width, dataset.images[0]!.height], [64, 48]);
  assert.deepEqual([...dataset.images[0]!.boxes], [4, 5, 60, 40]);
  assert.equal(problems.length, 1);
  assert.match(formatProblem(problems[0]!), /labels\.csv:3: expected 8 fields/);
});

test('YOLO: normalised cx cy w h to pixels, names file, bad lines', async () => {
  await put('yolo/images/p.png', await png(100, 50));
  await put('yolo/images/q.png', await png(10, 10));
  await put('yolo/obj.names', 'circle\nsquare\n');
  await put('yolo/labels/p.txt', '1 0.5 0.5 0.2 0.4\n0 0.1 0.1 0.1\n7 0.5 0.5 0.1 0.1\n');
  assert.equal(detectFormat(path.join(dir, 'yolo')), 'yolo');
  const { dataset, problems } = await loadDataset(path.join(dir, 'yolo'));
  assert.deepEqual(dataset.classNames, ['circle', 'square']);
  const p = dataset.images[0]!;
  assert.deepEqual([p.width, p.height], [100, 50]);
  assert.deepEqual([...p.boxes].map((v) => +v.toFixed(4)), [40, 15, 60, 35]);
  assert.deepEqual([...p.labels], [1]);
  assert.equal(dataset.images[1]!.labels.length, 0, 'no label file: no objects');
  assert.deepEqual(problems.map((x) => [path.basename(x.file), x.line]), [['p.txt', 2], ['p.txt', 3]]);
  await put('yolo2/images/val/a.png', await png(20, 10));
  await put('yolo2/labels/val/a.txt', '0 0.5 0.5 0.5 0.5\n');
  await put('yolo2/data.yaml', 'names: [thing]\n');
  await assert.rejects(loadDataset(path.join(dir, 'yolo2')), /split folders val/);
  const val = await loadDataset(path.join(dir, 'yolo2'), { split: 'val' });
  assert.deepEqual([...val.dataset.images[0]!.boxes], [5, 2.5, 15, 7.5]);
});

test('format detection and helpers', async () => {
  assert.throws(() => detectFormat(path.join(dir, 'missing')), /no such file or folder/);
  await put('other/readme.txt', 'hi');
  assert.throws(() => detectFormat(path.join(dir, 'other')), /cannot tell the dataset format/);
  assert.deepEqual(splitCsvLine('"a,b",1,"say ""hi""",'), ['a,b', '1', 'say "hi"', '']);
  assert.deepEqual(namesFromYaml('path: x\nnames: [a, "b c"]\n'), ['a', 'b c']);
  assert.deepEqual(namesFromYaml('names:\n  0: person\n  1: car\nnc: 2\n'), ['person', 'car']);
  assert.deepEqual(namesFromYaml('names:\n  - x\n  - y\n'), ['x', 'y']);
});
