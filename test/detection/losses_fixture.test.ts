/**
 * Sanity checks of test/fixtures/detection/losses.json (consumed by the engine's loss tests):
 * shapes are consistent, the values are reproduced by a plain float64 host computation, and the
 * matched_idxs agree with this module's assignTargets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assignTargets } from '../../src/detection/index.js';
import { loadFixture } from './fixtures.js';

interface LossFixture {
  focal: {
    shape: [number, number];
    logits: number[];
    targets: number[];
    sigmoid_focal_loss: { alpha: number; gamma: number; loss: number; loss_f32: number; grad_logits: number[] }[];
    fl_star: { gamma_star: number; beta: number; loss: number; grad_logits: number[] };
  }[];
  box: {
    n: number;
    anchors: number[];
    gt_boxes: number[];
    target_deltas: number[];
    pred_deltas: number[];
    l1: { loss: number; grad_pred: number[] };
    smooth_l1: { beta: number; loss: number; grad_pred: number[] }[];
    giou: { eps: number; decoded_boxes: number[]; loss: number; grad_boxes: number[]; loss_via_deltas: number; grad_pred_deltas: number[] };
  };
  retinanet: {
    padded: [number, number];
    num_classes: number;
    num_anchors: number;
    anchors: number[];
    cls_logits: number[];
    bbox_regression: number[];
    targets: { boxes: number[]; labels: number[] }[];
    matched_idxs: number[][];
    box_loss_type: string;
    classification: number;
    bbox_regression_loss: number;
    grad_cls_logits: number[];
    grad_bbox_regression: number[];
  };
}
const fx = loadFixture<LossFixture>('losses.json');

const softplus = (x: number): number => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
/** torchvision.ops.sigmoid_focal_loss for one element, float64. */
function focal(x: number, y: number, alpha: number, gamma: number): number {
  const p = 1 / (1 + Math.exp(-x));
  const ce = y * softplus(-x) + (1 - y) * softplus(x);
  const pt = p * y + (1 - p) * (1 - y);
  const loss = ce * (1 - pt) ** gamma;
  return alpha >= 0 ? (alpha * y + (1 - alpha) * (1 - y)) * loss : loss;
}
const close = (a: number, e: number, rtol: number, what: string): void => assert.ok(Math.abs(a - e) <= rtol * Math.max(1, Math.abs(e)), `${what}: ${a} vs ${e}`);

test('losses.json: focal loss, FL* values reproduce on the host', () => {
  for (const c of fx.focal) {
    const n = c.shape[0] * c.shape[1];
    assert.equal(c.logits.length, n);
    assert.equal(c.targets.length, n);
    for (const v of c.sigmoid_focal_loss) {
      assert.equal(v.grad_logits.length, n);
      close(c.logits.reduce((s, x, i) => s + focal(x, c.targets[i]!, v.alpha, v.gamma), 0), v.loss, 1e-9, `focal a=${v.alpha} g=${v.gamma}`);
    }
    const { gamma_star: gs, beta } = c.fl_star;
    const flStar = c.logits.reduce((s, x, i) => s + softplus(-(gs * x * (2 * c.targets[i]! - 1) + beta)) / gs, 0);
    close(flStar, c.fl_star.loss, 1e-9, 'FL*');
  }
});

test('losses.json: L1, smooth L1 and GIoU values reproduce on the host', () => {
  const b = fx.box;
  const d = b.pred_deltas.map((p, i) => p - b.target_deltas[i]!);
  close(d.reduce((s, v) => s + Math.abs(v), 0), b.l1.loss, 1e-9, 'l1');
  for (const s of b.smooth_l1) {
    const v = d.reduce((acc, x) => acc + (Math.abs(x) < s.beta ? (0.5 * x * x) / s.beta : Math.abs(x) - 0.5 * s.beta), 0);
    close(v, s.loss, 1e-9, `smooth l1 beta ${s.beta}`);
  }
  let giou = 0;
  for (let i = 0; i < b.n; i++) {
    const [x1, y1, x2, y2] = b.giou.decoded_boxes.slice(4 * i, 4 * i + 4) as [number, number, number, number];
    const [g1, h1, g2, h2] = b.gt_boxes.slice(4 * i, 4 * i + 4) as [number, number, number, number];
    const inter = Math.max(0, Math.min(x2, g2) - Math.max(x1, g1)) * Math.max(0, Math.min(y2, h2) - Math.max(y1, h1));
    const union = (x2 - x1) * (y2 - y1) + (g2 - g1) * (h2 - h1) - inter;
    const areaC = (Math.max(x2, g2) - Math.min(x1, g1)) * (Math.max(y2, h2) - Math.min(y1, h1));
    giou += 1 - (inter / (union + b.giou.eps) - (areaC - union) / (areaC + b.giou.eps));
  }
  close(giou, b.giou.loss, 1e-9, 'giou');
  close(b.giou.loss_via_deltas, b.giou.loss, 1e-5, 'giou via deltas (float64 decode)');
});

test('losses.json: full RetinaNet loss case is consistent with assignTargets and reproduces', () => {
  const r = fx.retinanet;
  const a = r.num_anchors, k = r.num_classes;
  assert.equal(r.anchors.length, 4 * a);
  assert.equal(r.cls_logits.length, 2 * a * k);
  assert.equal(r.bbox_regression.length, 2 * a * 4);
  assert.equal(r.grad_cls_logits.length, 2 * a * k);
  assert.equal(r.grad_bbox_regression.length, 2 * a * 4);
  assert.equal(r.box_loss_type, 'l1');
  const anchors = Float32Array.from(r.anchors);
  let cls = 0, reg = 0;
  r.targets.forEach((t, img) => {
    const assigned = assignTargets(anchors, Float32Array.from(t.boxes), Int32Array.from(t.labels));
    assert.deepEqual(Array.from(assigned.matchedIdxs), r.matched_idxs[img]);
    const numFg = Math.max(1, assigned.foreground.length);
    let c = 0;
    for (let i = 0; i < a; i++) {
      const m = assigned.matchedIdxs[i]!;
      if (m === -2) continue;
      for (let j = 0; j < k; j++) {
        const y = m >= 0 && t.labels[m] === j ? 1 : 0;
        c += focal(r.cls_logits[(img * a + i) * k + j]!, y, 0.25, 2);
      }
    }
    cls += c / numFg;
    // The fixture encodes in float64, assignTargets in float32: hence the looser tolerance.
    let l = 0;
    assigned.foreground.forEach((i, f) => {
      for (let q = 0; q < 4; q++) l += Math.abs(r.bbox_regression[(img * a + i) * 4 + q]! - assigned.regressionTargets[4 * f + q]!);
    });
    reg += l / numFg;
  });
  close(cls / 2, r.classification, 1e-9, 'classification');
  close(reg / 2, r.bbox_regression_loss, 1e-6, 'bbox regression');
});
