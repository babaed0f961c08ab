/**
 * The focal loss family and the box regression losses, built as graph ops so the engine
 * differentiates them. All are elementwise (no reduction) unless stated; the RetinaNet loss
 * assembly (`retinanetLoss`) applies torchvision's normalisation.
 */
import { type Graph, GraphError, type Tensor } from '../engine/graph.js';
import * as op from '../engine/ops.js';
import { LOSS_TARGET_FEEDS, type LossTargetName } from './loss_targets.js';

export interface FocalLossOptions {
  /** Weight of positives; negatives get 1 - alpha. alpha < 0 disables the weighting. Default 0.25. */
  alpha?: number;
  /** Focusing parameter; 0 gives (alpha-balanced) cross-entropy. Default 2. */
  gamma?: number;
}

/** s = x for positives and -x for negatives (x_t in the paper's notation, with y in {-1, 1}). */
function signedLogit(x: Tensor, t: Tensor): Tensor {
  return op.mul(x, op.sub(op.add(t, t), 1));
}

function alphaWeight(t: Tensor, alpha: number): Tensor {
  // alpha_t = alpha * t + (1 - alpha) * (1 - t)
  return op.add(op.mul(t, 2 * alpha - 1), 1 - alpha);
}

/**
 * Sigmoid focal loss FL(p_t) = -alpha_t (1 - p_t)^gamma log(p_t), elementwise, for logits x and
 * binary targets t of the same shape (torchvision.ops.sigmoid_focal_loss with reduction 'none').
 *
 * Written in log space — -log(p_t) = softplus(-s) and (1 - p_t)^gamma = exp(-gamma softplus(s))
 * with s = x_t — so value and gradient stay finite for logits of any size and for gamma < 1,
 * where the textbook form's (1 - p_t)^(gamma - 1) overflows once p_t rounds to 1.
 */
export function sigmoidFocalLoss(x: Tensor, t: Tensor, opts: FocalLossOptions = {}): Tensor {
  const alpha = opts.alpha ?? 0.25;
  const gamma = opts.gamma ?? 2;
  if (gamma < 0) throw new GraphError(`focal loss: gamma must be >= 0, got ${gamma}`);
  const s = signedLogit(x, t);
  let loss = op.softplus(op.neg(s));
  if (gamma !== 0) loss = op.mul(loss, op.exp(op.mul(op.softplus(s), -gamma)));
  if (alpha >= 0) loss = op.mul(loss, alphaWeight(t, alpha));
  return loss;
}

/** Alpha-balanced cross-entropy: the focal loss with gamma = 0. */
export function alphaBalancedCE(x: Tensor, t: Tensor, alpha = 0.25): Tensor {
  return sigmoidFocalLoss(x, t, { alpha, gamma: 0 });
}

export interface FocalLossStarOptions {
  /** gamma* (sharpness); paper appendix A uses 2 (with beta 1) or 4 (with beta 0). */
  gammaStar?: number;
  beta?: number;
  /** Optional alpha balancing as in FL; default disabled (-1). */
  alpha?: number;
}

/**
 * FL* (paper, appendix A): p_t* = sigmoid(gamma* x_t + beta), loss = -log(p_t*) / gamma*,
 * elementwise, computed as softplus(-(gamma* x_t + beta)) / gamma*.
 */
export function focalLossStar(x: Tensor, t: Tensor, opts: FocalLossStarOptions = {}): Tensor {
  const gs = opts.gammaStar ?? 2;
  const beta = opts.beta ?? 1;
  if (gs <= 0) throw new GraphError(`FL*: gamma* must be > 0, got ${gs}`);
  const z = op.add(op.mul(signedLogit(x, t), gs), beta);
  let loss = op.div(op.softplus(op.neg(z)), gs);
  const alpha = opts.alpha ?? -1;
  if (alpha >= 0) loss = op.mul(loss, alphaWeight(t, alpha));
  return loss;
}

/** |pred - target|, elementwise. */
export function l1Loss(pred: Tensor, target: Tensor): Tensor {
  return op.abs(op.sub(pred, target));
}

/** torch's smooth_l1_loss elementwise: 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta. */
export function smoothL1Loss(pred: Tensor, target: Tensor, beta = 1 / 9): Tensor {
  if (beta <= 0) return l1Loss(pred, target);
  const d = op.sub(pred, target);
  const a = op.abs(d);
  const quadratic = op.mul(op.mul(d, d), 0.5 / beta);
  const linear = op.sub(a, 0.5 * beta);
  return op.where(op.less(a, beta), quadratic, linear);
}

function coord(b: Tensor, i: number): Tensor {
  return op.slice(b, [i], [i + 1], [b.rank - 1]);
}

/**
 * Generalized IoU loss 1 - GIoU for boxes [..., 4] as (x1, y1, x2, y2), as
 * torchvision.ops.generalized_box_iou_loss (eps 1e-7); output [..., 1].
 */
export function giouLoss(pred: Tensor, target: Tensor, eps = 1e-7): Tensor {
  const [x1, y1, x2, y2] = [0, 1, 2, 3].map((i) => coord(pred, i)) as [Tensor, Tensor, Tensor, Tensor];
  const [x1g, y1g, x2g, y2g] = [0, 1, 2, 3].map((i) => coord(target, i)) as [Tensor, Tensor, Tensor, Tensor];
  const xk1 = op.max(x1, x1g);
  const yk1 = op.max(y1, y1g);
  const xk2 = op.min(x2, x2g);
  const yk2 = op.min(y2, y2g);
  const overlap = op.and(op.greater(yk2, yk1), op.greater(xk2, xk1));
  const inter = op.where(overlap, op.mul(op.sub(xk2, xk1), op.sub(yk2, yk1)), op.scalarLike(x1, 0));
  const union = op.sub(op.add(op.mul(op.sub(x2, x1), op.sub(y2, y1)), op.mul(op.sub(x2g, x1g), op.sub(y2g, y1g))), inter);
  const iou = op.div(inter, op.add(union, eps));
  const areaC = op.mul(op.sub(op.max(x2, x2g), op.min(x1, x1g)), op.sub(op.max(y2, y2g), op.min(y1, y1g)));
  const giou = op.sub(iou, op.div(op.sub(areaC, union), op.add(areaC, eps)));
  return op.sub(1, giou);
}

/** Box coder weights and clamp, as torchvision's BoxCoder((1, 1, 1, 1)) for RetinaNet. */
export interface DecodeOptions {
  weights?: readonly [number, number, number, number];
  clip?: number;
}

/**
 * In-graph BoxCoder.decode_single: deltas [..., 4] relative to anchors [..., 4] (broadcast)
 * -> boxes [..., 4] (x1, y1, x2, y2); used by the GIoU box loss.
 */
export function decodeBoxes(deltas: Tensor, anchors: Tensor, opts: DecodeOptions = {}): Tensor {
  const [wx, wy, ww, wh] = opts.weights ?? [1, 1, 1, 1];
  const clipValue = opts.clip ?? Math.log(1000 / 16);
  const widths = op.sub(coord(anchors, 2), coord(anchors, 0));
  const heights = op.sub(coord(anchors, 3), coord(anchors, 1));
  const cx = op.add(coord(anchors, 0), op.mul(0.5, widths));
  const cy = op.add(coord(anchors, 1), op.mul(0.5, heights));
  const dx = op.div(coord(deltas, 0), wx);
  const dy = op.div(coord(deltas, 1), wy);
  const dw = op.clip(op.div(coord(deltas, 2), ww), undefined, clipValue);
  const dh = op.clip(op.div(coord(deltas, 3), wh), undefined, clipValue);
  const pcx = op.add(op.mul(dx, widths), cx);
  const pcy = op.add(op.mul(dy, heights), cy);
  const pw = op.mul(op.exp(dw), widths);
  const ph = op.mul(op.exp(dh), heights);
  const hw = op.mul(0.5, pw);
  const hh = op.mul(0.5, ph);
  return op.concat([op.sub(pcx, hw), op.sub(pcy, hh), op.add(pcx, hw), op.add(pcy, hh)], deltas.rank - 1);
}

export type ClassificationLoss = 'focal' | 'ce' | 'focal-star';
export type BoxLoss = 'l1' | 'smooth_l1' | 'giou';

export interface RetinaNetLossOptions {
  classification?: ClassificationLoss;
  alpha?: number;
  gamma?: number;
  /** FL* parameters when classification is 'focal-star'. */
  gammaStar?: number;
  beta?: number;
  box?: BoxLoss;
  /** smooth L1 beta; torchvision uses 1/9. */
  smoothL1Beta?: number;
}

/**
 * Per-anchor training targets, fed as graph inputs (computed on the host by target assignment).
 * N images, A anchors, K classes.
 */
export interface RetinaNetTargets {
  /** int64 [N, A]: class index of the matched box for foreground anchors, -1 otherwise. */
  labels: Tensor;
  /** float [N, A]: 0 for anchors between the IoU thresholds (ignored), 1 otherwise. */
  valid: Tensor;
  /** float [N, A]: 1 for foreground anchors. */
  foreground: Tensor;
  /**
   * float [N, A, 4]: encoded regression targets (l1 / smooth_l1), or matched ground-truth boxes
   * in pixels (giou). Zero rows for non-foreground anchors.
   */
  boxTargets: Tensor;
  /** float [N]: 1 / (max(1, foreground anchors of image n) * N), torchvision's normalisation. */
  normalizer: Tensor;
  /** float [A, 4]: the anchors, needed to decode predictions for the GIoU loss. */
  anchors?: Tensor;
}

/**
 * Declares the RetinaNetTargets of a batch of N images with A anchors as graph inputs named
 * after their fields (`labels`, `valid`, `foreground`, `boxTargets`, `normalizer`, and
 * `anchors` when the box loss is GIoU), the names the trainer feeds.
 */
export function lossTargetInputs(g: Graph, n: number, numAnchors: number, box: BoxLoss = 'l1'): RetinaNetTargets {
  const input = (name: LossTargetName): Tensor => {
    const spec = LOSS_TARGET_FEEDS[name];
    return g.input(name, spec.dtype, spec.shape(n, numAnchors));
  };
  return {
    labels: input('labels'),
    valid: input('valid'),
    foreground: input('foreground'),
    boxTargets: input('boxTargets'),
    normalizer: input('normalizer'),
    anchors: box === 'giou' ? g.input('anchors', 'float32', [numAnchors, 4]) : undefined,
  };
}

/**
 * torchvision's RetinaNet loss: the classification loss summed over non-ignored anchors and all
 * classes, the box loss over foreground anchors, each divided per image by its number of
 * foreground anchors (at least 1), then averaged over the batch.
 * clsLogits: [N, A, K]; boxDeltas: [N, A, 4]. Returns scalar tensors.
 */
export function retinanetLoss(clsLogits: Tensor, boxDeltas: Tensor, t: RetinaNetTargets, opts: RetinaNetLossOptions = {}): { classification: Tensor; box: Tensor; total: Tensor } {
  const [n, a, k] = clsLogits.shape as [number, number, number];
  const g = clsLogits.graph;
  const classes = g.constant(BigInt64Array.from({ length: k }, (_, i) => BigInt(i)), [1, 1, k], 'int64');
  const onehot = op.cast(op.equal(op.unsqueeze(t.labels, [2]), classes), clsLogits.dtype);
  let perElement: Tensor;
  switch (opts.classification ?? 'focal') {
    case 'focal':
      perElement = sigmoidFocalLoss(clsLogits, onehot, { alpha: opts.alpha, gamma: opts.gamma });
      break;
    case 'ce':
      perElement = sigmoidFocalLoss(clsLogits, onehot, { alpha: opts.alpha, gamma: 0 });
      break;
    case 'focal-star':
      perElement = focalLossStar(clsLogits, onehot, { gammaStar: opts.gammaStar, beta: opts.beta, alpha: opts.alpha });
      break;
  }
  const perImageWeight = op.reshape(t.normalizer, [n, 1]);
  const clsPerAnchor = op.reduceSum(perElement, [2]);
  const classification = op.reduceSum(op.mul(op.mul(clsPerAnchor, t.valid), perImageWeight));

  let boxPerAnchor: Tensor;
  switch (opts.box ?? 'l1') {
    case 'l1':
      boxPerAnchor = op.reduceSum(l1Loss(boxDeltas, t.boxTargets), [2]);
      break;
    case 'smooth_l1':
      boxPerAnchor = op.reduceSum(smoothL1Loss(boxDeltas, t.boxTargets, opts.smoothL1Beta ?? 1 / 9), [2]);
      break;
    case 'giou': {
      if (!t.anchors) throw new GraphError('retinanetLoss: the giou box loss needs the anchors');
      const decoded = decodeBoxes(boxDeltas, op.reshape(t.anchors, [1, a, 4]));
      boxPerAnchor = op.reshape(giouLoss(decoded, t.boxTargets), [n, a]);
      break;
    }
  }
  const box = op.reduceSum(op.mul(op.mul(boxPerAnchor, t.foreground), perImageWeight));
  return { classification, box, total: op.add(classification, box) };
}
