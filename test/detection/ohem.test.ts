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

test('OHEM hook: the step trains on exactly the chosen anchors, with the losses the hook scored them by', async () => {
  // End to end on a tiny model: the host losses the hook ranks by must be the graph's per-anchor
  // losses (same anchor order, same label encoding, current parameters), so the step's
  // classification loss equals the sum of the chosen anchors' host losses times the batch's
  // per-image normaliser. A mismatch here would mean OHEM mines examples by the wrong losses.
  const { generateSynthetic, SYNTHETIC_CLASSES } = await import('../../src/data/synthetic.js');
  const { memorySource } = await import('../../src/data/source.js');
  const { demoConfig } = await import('../../src/train/demo_config.js');
  const { RetinaNet } = await import('../../src/model/model.js');
  const { Trainer } = await import('../../src/train/trainer.js');
  const { OhemHook } = await import('../../src/train/ohem.js');
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const path = await import('node:path');
  type Hook = import('../../src/train/trainer.js').TrainHook;
  const size = 64;
  const source = memorySource(generateSynthetic({ count: 4, seed: 7, imageSize: size, minObjectSize: 8, maxObjectSize: 40 }), SYNTHETIC_CLASSES);
  const cfg = demoConfig(size);
  cfg.loss = { ...cfg.loss, classification: 'ce', alpha: 0.5, gamma: 0 };
  const model = new RetinaNet(cfg, 4);
  const ohem = new OhemHook({ batchSize: 16, nmsThresh: 0.7, alpha: 0.5, gamma: 0 });
  const expected: number[] = [];
  const got: number[] = [];
  const chosen: number[] = [];
  const check: Hook = {
    async beforeForward(t, batch) {
      const [n] = batch.shape;
      const a = batch.anchors.length / 4;
      const k = t.model.config.numClasses;
      const { clsLogits } = await t.model.forward(batch.images, batch.shape, 1, true);
      const { labels, valid, normalizer } = batch.targets;
      let sum = 0;
      let count = 0;
      for (let b = 0; b < n; b++) {
        const l = anchorLosses(clsLogits.subarray(b * a * k, (b + 1) * a * k), labels.subarray(b * a, (b + 1) * a), k, 0.5, 0);
        for (let i = 0; i < a; i++) {
          if (valid[b * a + i]! > 0) {
            sum += l[i]! * normalizer[b]!;
            count++;
          }
        }
      }
      expected.push(sum);
      chosen.push(count);
    },
    afterLoss(_t, losses) {
      got.push(losses.classification);
    },
  };
  const outDir = mkdtempSync(path.join(tmpdir(), 'retinanet-ohem-test-'));
  const r = await new Trainer(model, source, { iters: 3, batchSize: 2, lr: 0.01, warmupIters: 1, flip: true, padTo: 32, seed: 1, threads: 1, outDir, checkpointEvery: 100, valEvery: 100, hooks: [ohem, check] }).run();
  await model.dispose();
  assert.equal(r.stopped, 'done');
  assert.equal(got.length, 3);
  for (let s = 0; s < 3; s++) {
    assert.ok(chosen[s]! > 0 && chosen[s]! <= 2 * 16, `step ${s}: ${chosen[s]} anchors chosen for 2 images of B 16`);
    assert.ok(Math.abs(got[s]! - expected[s]!) <= 1e-4 * Math.max(1, expected[s]!), `step ${s}: graph ${got[s]} vs host ${expected[s]}`);
  }
  assert.equal(ohem.totals.steps, 3);
  assert.equal(ohem.totals.positives + ohem.totals.negatives, chosen.reduce((x, y) => x + y, 0));
});
