import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { batchedNms, boxIou, nms } from '../../src/detection/index.js';
import { loadFixture } from './fixtures.js';

interface NmsFixture {
  plain: { boxes: number[]; scores: number[]; iou_threshold: number; keep: number[] }[];
  batched: { boxes: number[]; scores: number[]; idxs: number[]; iou_threshold: number; path: string; keep: number[] }[];
}
const fx = loadFixture<NmsFixture>('nms.json');

test('nms equals torchvision.ops.nms, including the order of exact score ties', () => {
  for (const c of fx.plain) {
    assert.deepEqual(Array.from(nms(Float32Array.from(c.boxes), Float32Array.from(c.scores), c.iou_threshold)), c.keep);
  }
});

test('batchedNms equals torchvision.ops.batched_nms on both of its code paths', () => {
  const paths = new Set<string>();
  for (const c of fx.batched) {
    paths.add(c.path);
    const keep = batchedNms(Float32Array.from(c.boxes), Float32Array.from(c.scores), Int32Array.from(c.idxs), c.iou_threshold);
    assert.deepEqual(Array.from(keep), c.keep, `${c.boxes.length / 4} boxes (${c.path})`);
  }
  assert.deepEqual([...paths].sort(), ['coordinate_trick', 'vanilla']);
});

test('empty input and negative threshold', () => {
  assert.equal(nms(new Float32Array(0), new Float32Array(0), 0.5).length, 0);
  assert.equal(batchedNms(new Float32Array(0), new Float32Array(0), new Int32Array(0), 0.5).length, 0);
  assert.deepEqual(Array.from(nms(Float32Array.of(0, 0, 1, 1, 5, 5, 6, 6), Float32Array.of(0.1, 0.9), -1)), [1]);
});

// ------------------------------------------------------------------ properties
const box = fc
  .tuple(fc.integer({ min: 0, max: 120 }), fc.integer({ min: 0, max: 120 }), fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 60 }))
  .map(([x, y, w, h]) => [x, y, x + w, y + h]);
// Few distinct scores, so ties are common.
const det = fc.tuple(box, fc.integer({ min: 0, max: 20 }).map((s) => s / 20), fc.integer({ min: 0, max: 3 }));

test('property: batched NMS output is a sorted subset, kept boxes of a class overlap <= threshold, dropped ones are explained', () => {
  fc.assert(
    fc.property(fc.array(det, { maxLength: 300, size: 'max' }), fc.constantFrom(0.3, 0.5, 0.7), (dets, thr) => {
      const boxes = Float32Array.from(dets.flatMap((d) => d[0]));
      const scores = Float32Array.from(dets.map((d) => d[1]));
      const labels = Int32Array.from(dets.map((d) => d[2]));
      const keep = batchedNms(boxes, scores, labels, thr);
      const n = dets.length;
      assert.equal(new Set(keep).size, keep.length);
      for (const i of keep) assert.ok(i >= 0 && i < n);
      for (let k = 1; k < keep.length; k++) {
        const a = keep[k - 1]!, b = keep[k]!;
        assert.ok(scores[a]! > scores[b]! || (scores[a] === scores[b] && a < b), 'sorted by score, ties by index');
      }
      const iou = boxIou(boxes, boxes);
      const kept = new Set(keep);
      for (const i of keep) for (const j of keep) if (i !== j && labels[i] === labels[j]) assert.ok(iou[i * n + j]! <= thr);
      for (let j = 0; j < n; j++) {
        if (kept.has(j)) continue;
        const by = keep.some((i) => labels[i] === labels[j] && iou[i * n + j]! > thr && (scores[i]! > scores[j]! || (scores[i] === scores[j] && i < j)));
        assert.ok(by, `box ${j} dropped without a better overlapping kept box`);
      }
    }),
    { numRuns: 40 },
  );
});

test('property: both batched paths equal a per-class reference (plain nms per label, merged by score)', () => {
  const reference = (boxes: Float32Array, scores: Float32Array, labels: Int32Array): number[] => {
    const out: number[] = [];
    for (const c of new Set(labels)) {
      const ids = Array.from(labels.keys()).filter((i) => labels[i] === c);
      const sub = nms(Float32Array.from(ids.flatMap((i) => Array.from(boxes.subarray(4 * i, 4 * i + 4)))), Float32Array.from(ids.map((i) => scores[i]!)), 0.5);
      for (const k of sub) out.push(ids[k]!);
    }
    return out.sort((a, b) => scores[b]! - scores[a]! || a - b);
  };
  fc.assert(
    fc.property(fc.array(det, { minLength: 900, maxLength: 1200 }), (dets) => {
      const boxes = Float32Array.from(dets.flatMap((d) => d[0]));
      const scores = Float32Array.from(dets.map((d) => d[1]));
      const labels = Int32Array.from(dets.map((d) => d[2]));
      assert.deepEqual(Array.from(batchedNms(boxes, scores, labels, 0.5)), reference(boxes, scores, labels));
    }),
    { numRuns: 10 },
  );
});
