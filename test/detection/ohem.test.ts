import { test } from 'node:test';
import assert from 'node:assert/strict';
import { selectHardExamples } from '../../src/detection/ohem.js';
import { anchorLosses, focalLossHost } from '../../src/train/ohem.js';

/** n boxes of side 10 on a row, `step` px apart (overlap grows as step shrinks). */
function rowBoxes(n: number, step: number): Float32Array {
  const b = new Float32Array(4 * n);
  for (let i = 0; i < n; i++) b.set([i * step, 0, i * step + 10, 10], 4 * i);
  return b;
}

test('OHEM without ratio: top-B by loss after greedy NMS on losses', () => {
  // Boxes 0,1 overlap heavily (IoU 0.82), 2 is apart, 3 overlaps 2 slightly (IoU 0.33).
  const boxes = new Float32Array([0, 0, 10, 10, 1, 0, 11, 10, 50, 0, 60, 10, 55, 0, 65, 10, 100, 0, 110, 10]);
  const losses = [5, 4, 3, 2, 1];
  const valid = [1, 1, 1, 1, 1];
  const pos = [0, 0, 0, 0, 0];
  // NMS 0.7: anchor 1 is suppressed by 0; the rest survive; B = 3 takes the 3 hardest survivors.
  assert.deepEqual([...selectHardExamples(losses, boxes, valid, pos, { batchSize: 3, nmsThresh: 0.7 })], [0, 2, 3]);
  // NMS 0.3 also suppresses 3 (IoU 0.33 with 2).
  assert.deepEqual([...selectHardExamples(losses, boxes, valid, pos, { batchSize: 3, nmsThresh: 0.3 })], [0, 2, 4]);
  // NMS off: plain top-B.
  assert.deepEqual([...selectHardExamples(losses, boxes, valid, pos, { batchSize: 3, nmsThresh: 1 })], [0, 1, 2]);
  // Ignored anchors never take part; B larger than the candidates takes all survivors.
  assert.deepEqual([...selectHardExamples(losses, boxes, [0, 1, 1, 1, 1], pos, { batchSize: 10, nmsThresh: 0.7 })], [1, 2, 3, 4]);
});

test('OHEM 1:3: at most B/4 positives, three negatives per positive taken', () => {
  const n = 40;
  const boxes = rowBoxes(n, 20); // disjoint: NMS removes nothing
  const losses = Array.from({ length: n }, (_, i) => n - i); // descending by index
  const valid = new Array<number>(n).fill(1);
  const pos = Array.from({ length: n }, (_, i) => (i % 10 === 9 ? 1 : 0)); // 4 positives: 9, 19, 29, 39
  const got = [...selectHardExamples(losses, boxes, valid, pos, { batchSize: 8, nmsThresh: 0.5, ratio: true })];
  // floor(8/4) = 2 positives (the hardest: 9, 19), then 6 negatives (the hardest: 0..5).
  assert.deepEqual(got, [9, 19, 0, 1, 2, 3, 4, 5]);
  // Without ratio the hard negatives crowd the positives out.
  assert.deepEqual([...selectHardExamples(losses, boxes, valid, pos, { batchSize: 8, nmsThresh: 0.5 })], [0, 1, 2, 3, 4, 5, 6, 7]);
  // No positives: no negatives either (the ratio has nothing to scale).
  assert.equal(selectHardExamples(losses, boxes, valid, new Array<number>(n).fill(0), { batchSize: 8, nmsThresh: 0.5, ratio: true }).length, 0);
  // Shape and argument errors are errors, not silent selections.
  assert.throws(() => selectHardExamples([1], boxes, [1], [0], { batchSize: 1, nmsThresh: 0.5 }), RangeError);
  assert.throws(() => selectHardExamples([NaN], new Float32Array(4), [1], [0], { batchSize: 1, nmsThresh: 0.5 }), /NaN/);
  assert.throws(() => selectHardExamples([1], new Float32Array(4), [1], [0], { batchSize: 0, nmsThresh: 0.5 }), /batchSize/);
});

test('host focal loss matches its definition; anchor losses sum over classes', () => {
  const sig = (x: number): number => 1 / (1 + Math.exp(-x));
  for (const [x, t, a, g] of [[1.3, 1, 0.25, 2], [-0.7, 0, 0.25, 2], [2, 0, -1, 0], [-3, 1, 0.75, 0.5]] as const) {
    const p = sig(x);
    const pt = t === 1 ? p : 1 - p;
    const at = a < 0 ? 1 : t === 1 ? a : 1 - a;
    const want = -at * (1 - pt) ** g * Math.log(pt);
    assert.ok(Math.abs(focalLossHost(x, t, a, g) - want) < 1e-12, `${x} ${t} ${a} ${g}`);
  }
  // Large logits stay finite.
  assert.ok(Number.isFinite(focalLossHost(200, 0, 0.25, 2)) && focalLossHost(200, 0, -1, 0) > 199);
  const logits = new Float32Array([0.5, -1, 2, -2, 0, 0]); // 3 anchors x 2 classes
  const labels = new BigInt64Array([1n, -1n, 0n]);
  const l = anchorLosses(logits, labels, 2, 0.25, 2);
  assert.ok(Math.abs(l[0]! - (focalLossHost(0.5, 0, 0.25, 2) + focalLossHost(-1, 1, 0.25, 2))) < 1e-6);
  assert.ok(Math.abs(l[1]! - (focalLossHost(2, 0, 0.25, 2) + focalLossHost(-2, 0, 0.25, 2))) < 1e-6);
  assert.ok(Math.abs(l[2]! - (focalLossHost(0, 1, 0.25, 2) + focalLossHost(0, 0, 0.25, 2))) < 1e-6);
});
