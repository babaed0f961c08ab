import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { evaluateCoco, evaluateVoc, prCurveSvg, writeCocoReport, writeVocReport } from '../../src/eval/index.js';

test('prCurveSvg draws one polyline per series, escapes labels and skips -1 points', () => {
  const svg = prCurveSvg(
    [
      { label: 'a<b & "c"', recall: [0, 0.5, 1], precision: [1, 0.5, -1] },
      { label: 'empty', recall: [0], precision: [-1] },
    ],
    { title: 'T & t' },
  );
  assert.equal((svg.match(/<polyline/g) ?? []).length, 1);
  assert.match(svg, /a&lt;b &amp; &quot;c&quot;/);
  assert.match(svg, /T &amp; t/);
  assert.match(svg, /points="50\.0,30\.0 257\.5,192\.5"/);
});

test('reports: COCO and VOC write markdown, html, metrics.json and one plot per class with ground truth', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rn-report-'));
  try {
    const coco = evaluateCoco(
      {
        images: [{ id: 1 }],
        categories: [{ id: 1, name: 'cat/dog' }, { id: 2, name: 'none' }],
        annotations: [{ id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 10, 10], area: 100, iscrowd: 0 }],
      },
      [{ image_id: 1, category_id: 1, bbox: [0, 0, 10, 10], score: 0.9 }],
    );
    const files = writeCocoReport(path.join(dir, 'coco'), coco);
    assert.deepEqual(files.plots, ['pr_overall.svg', 'pr/00_cat_dog.svg']);
    const md = readFileSync(path.join(dir, 'coco', 'report.md'), 'utf8');
    assert.match(md, /\| cat\/dog \| 1\.000 \|/);
    assert.match(md, /\| none \| - \|/);
    // tp / (tp + fp + eps) makes a perfect AP 0.9999999999999998, exactly as in pycocotools.
    assert.ok(Math.abs((JSON.parse(readFileSync(path.join(dir, 'coco', 'metrics.json'), 'utf8')) as { AP: number }).AP - 1) < 1e-15);

    const voc = evaluateVoc([{ imageId: 'a', label: 'x', box: [0, 0, 9, 9] }], [{ imageId: 'a', label: 'x', box: [0, 0, 9, 9], score: 1 }]);
    writeVocReport(path.join(dir, 'voc'), voc);
    assert.deepEqual(readdirSync(path.join(dir, 'voc')).sort(), ['metrics.json', 'pr', 'pr_overall.svg', 'report.html', 'report.md']);
    assert.match(readFileSync(path.join(dir, 'voc', 'report.html'), 'utf8'), /<td>x<\/td><td>1\.000<\/td>/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
