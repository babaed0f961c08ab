import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { Executable, Graph, type Tensor, grad, op } from '../../src/engine/index.js';
import { alphaBalancedCE, focalLossStar, giouLoss, l1Loss, lossTargetInputs, retinanetLoss, sigmoidFocalLoss, smoothL1Loss, decodeBoxes } from '../../src/detection/losses.js';
import { packLossTargets } from '../../src/detection/loss_targets.js';
import { assignTargets } from '../../src/detection/targets.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const here = path.dirname(fileURLToPath(import.meta.url));
const fx = JSON.parse(readFileSync(path.resolve(here, '../../../test/fixtures/detection/losses.json'), 'utf8'));

/** Evaluates scalar f(inputs) and its gradient w.r.t. the first input, in float32. */
async function valueAndGrad(shapes: number[][], values: number[][], f: (xs: Tensor[]) => Tensor): Promise<{ value: number; grad: Float32Array }> {
  const g = new Graph();
  const xs = shapes.map((s, i) => g.param(`x${i}`, s));
  const loss = f(xs);
  const [d] = grad(loss, [xs[0]!]);
  const exe = await Executable.create(g, [loss, d!], { threads: 1 });
  const out = await exe.run(new Map(values.map((v, i) => [`x${i}`, Float32Array.from(v)])));
  await exe.release();
  return { value: (out[0] as Float32Array)[0]!, grad: out[1] as Float32Array };
}

function close(actual: number, expected: number, rtol: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= rtol * Math.max(1, Math.abs(expected)), `${what}: ${actual} vs torchvision ${expected}`);
}

function allClose(actual: ArrayLike<number>, expected: readonly number[], rtol: number, atol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= atol + rtol * Math.abs(expected[i]!), `${what}[${i}]: ${actual[i]} vs torchvision ${expected[i]}`);
  }
}

for (const [ci, c] of (fx.focal as any[]).entries()) {
  for (const v of c.sigmoid_focal_loss as any[]) {
    test(`sigmoid focal loss case ${ci} (alpha ${v.alpha}, gamma ${v.gamma}) matches torchvision in value and gradient`, async () => {
      const r = await valueAndGrad([c.shape, c.shape], [c.logits, c.targets], ([x, t]) =>
        op.reduceSum(v.gamma === 0 && v.alpha >= 0 ? alphaBalancedCE(x!, t!, v.alpha) : sigmoidFocalLoss(x!, t!, { alpha: v.alpha, gamma: v.gamma })),
      );
      close(r.value, v.loss, 1e-5, 'loss');
      allClose(r.grad, v.grad_logits, 1e-4, 1e-6, 'grad');
      assert.ok(r.grad.every(Number.isFinite));
    });
  }
  test(`FL* case ${ci} (gamma* ${c.fl_star.gamma_star}, beta ${c.fl_star.beta}) matches the float64 reference`, async () => {
    const r = await valueAndGrad([c.shape, c.shape], [c.logits, c.targets], ([x, t]) =>
      op.reduceSum(focalLossStar(x!, t!, { gammaStar: c.fl_star.gamma_star, beta: c.fl_star.beta })),
    );
    close(r.value, c.fl_star.loss, 1e-5, 'loss');
    allClose(r.grad, c.fl_star.grad_logits, 1e-4, 1e-6, 'grad');
  });
}

test('focal loss stays finite in value and gradient for logits of +-100 and gamma < 1', async () => {
  const logits = [100, -100, 100, -100, 30, -30, 0, 88];
  const targets = [1, 0, 0, 1, 1, 0, 1, 0];
  for (const gamma of [0, 0.5, 1, 2, 5]) {
    const r = await valueAndGrad([[8], [8]], [logits, targets], ([x, t]) => op.reduceSum(sigmoidFocalLoss(x!, t!, { gamma })));
    assert.ok(Number.isFinite(r.value), `gamma ${gamma}: loss ${r.value}`);
    assert.ok(r.grad.every(Number.isFinite), `gamma ${gamma}: grad ${Array.from(r.grad)}`);
    // Confidently wrong logits cost about alpha_t * |x|: 0.75 * 100 + 0.25 * 100 + 0.75 * 88 = 166.
    assert.ok(r.value > 165 && r.value < 167, `gamma ${gamma}: loss ${r.value}`);
  }
});

const box = fx.box;
test('L1 box loss matches torchvision', async () => {
  const r = await valueAndGrad([[box.n, 4], [box.n, 4]], [box.pred_deltas, box.target_deltas], ([p, t]) => op.reduceSum(l1Loss(p!, t!)));
  close(r.value, box.l1.loss, 1e-5, 'loss');
  allClose(r.grad, box.l1.grad_pred, 1e-5, 1e-6, 'grad');
});

for (const s of box.smooth_l1 as any[]) {
  test(`smooth L1 box loss (beta ${s.beta.toFixed(4)}) matches torchvision`, async () => {
    const r = await valueAndGrad([[box.n, 4], [box.n, 4]], [box.pred_deltas, box.target_deltas], ([p, t]) => op.reduceSum(smoothL1Loss(p!, t!, s.beta)));
    close(r.value, s.loss, 1e-5, 'loss');
    allClose(r.grad, s.grad_pred, 1e-4, 1e-6, 'grad');
  });
}

test('GIoU loss on boxes and through in-graph decoding matches torchvision', async () => {
  const onBoxes = await valueAndGrad([[box.n, 4], [box.n, 4]], [box.giou.decoded_boxes, box.gt_boxes], ([p, t]) => op.reduceSum(giouLoss(p!, t!)));
  close(onBoxes.value, box.giou.loss, 1e-5, 'loss');
  allClose(onBoxes.grad, box.giou.grad_boxes, 1e-3, 1e-6, 'grad');
  const viaDeltas = await valueAndGrad([[box.n, 4], [box.n, 4], [box.n, 4]], [box.pred_deltas, box.anchors, box.gt_boxes], ([d, a, t]) =>
    op.reduceSum(giouLoss(decodeBoxes(d!, a!), t!)),
  );
  close(viaDeltas.value, box.giou.loss_via_deltas, 1e-5, 'loss via deltas');
  // Box 2's deltas equal its target exactly, so its decoded box sits on the min/max kinks of
  // GIoU: float64 torch sees ties there, float32 rounding does not; any subgradient is right.
  const skip = (i: number): boolean => Math.floor(i / 4) === 2;
  allClose(
    Array.from(viaDeltas.grad).filter((_, i) => !skip(i)),
    (box.giou.grad_pred_deltas as number[]).filter((_, i) => !skip(i)),
    1e-3,
    1e-5,
    'grad via deltas',
  );
});

test('RetinaNet loss (focal + L1, per-image normalisation, batch mean) matches torchvision compute_loss', async () => {
  const r = fx.retinanet;
  const n = r.targets.length as number;
  const a = r.num_anchors as number;
  const k = r.num_classes as number;
  const anchors = Float32Array.from(r.anchors as number[]);
  const assigned = (r.targets as any[]).map((t) =>
    assignTargets(anchors, Float32Array.from(t.boxes.flat ? t.boxes.flat() : t.boxes), Int32Array.from(t.labels), { onWarning: () => undefined }),
  );
  assigned.forEach((t, i) => assert.deepEqual(Array.from(t.matchedIdxs), r.matched_idxs[i], `matched_idxs of image ${i}`));
  const feeds = packLossTargets(assigned, a, 'l1');

  const g = new Graph();
  const cls = g.param('cls', [n, a, k]);
  const reg = g.param('reg', [n, a, 4]);
  const targets = lossTargetInputs(g, n, a, 'l1');
  const loss = retinanetLoss(cls, reg, targets);
  const [dcls, dreg] = grad(loss.total, [cls, reg]);
  const exe = await Executable.create(g, [loss.classification, loss.box, dcls!, dreg!], { threads: 1 });
  const out = await exe.run({
    cls: Float32Array.from(r.cls_logits),
    reg: Float32Array.from(r.bbox_regression),
    labels: feeds.labels,
    valid: feeds.valid,
    foreground: feeds.foreground,
    boxTargets: feeds.boxTargets,
    normalizer: feeds.normalizer,
  });
  close((out[0] as Float32Array)[0]!, r.classification, 1e-5, 'classification loss');
  close((out[1] as Float32Array)[0]!, r.bbox_regression_loss, 1e-5, 'box loss');
  allClose(out[2] as Float32Array, r.grad_cls_logits, 1e-4, 1e-7, 'd/d cls_logits');
  allClose(out[3] as Float32Array, r.grad_bbox_regression, 1e-4, 1e-7, 'd/d bbox_regression');
});
