/**
 * The training graph: the network, the loss on the fed targets, and the gradient of the total
 * loss with respect to every trainable parameter, compiled for one batch shape.
 */
import { Executable } from '../engine/runtime.js';
import { Graph, type GraphOptions, type Tensor } from '../engine/graph.js';
import { grad } from '../engine/autodiff.js';
import { LOSS_TARGET_NAMES } from '../detection/loss_targets.js';
import { lossTargetInputs, retinanetLoss } from '../detection/losses.js';
import type { RetinaNet } from '../model/model.js';
import { buildRetinaNet } from '../model/retinanet.js';
import type { PreparedBatch } from './batches.js';

/** A compiled training graph; outputs are [loss_cls, loss_box, ...gradients of `names`]. */
export interface TrainExecutable {
  exe: Executable;
  /** Trainable parameter names, in the order of the gradient outputs. */
  names: string[];
  release(): Promise<void>;
}

/**
 * Compiles the training graph (losses + gradients of every trainable parameter) for a batch of
 * n images of h x w pixels with `numAnchors` anchors each. Frozen parameters are baked in as
 * constants: ONNX Runtime then folds the frozen BatchNorms into the frozen convs and picks its
 * constant-weight conv kernels for them. A change to a frozen value after compiling therefore
 * needs a new graph (the trainer never makes one).
 */
export function buildTrainGraph(
  model: RetinaNet,
  n: number,
  h: number,
  w: number,
  numAnchors: number,
  threads?: number,
  opts: Readonly<GraphOptions> = { fusedNorms: true },
): Promise<TrainExecutable> {
  const cfg = model.config;
  // Fused GroupNorms by default: a training graph is only ever run here, never exported.
  const g = new Graph(opts);
  const images = g.input('images', 'float32', [n, 3, h, w]);
  const out = buildRetinaNet(g, model.store, images, cfg);
  const targets = lossTargetInputs(g, n, numAnchors, cfg.loss.box);
  const loss = retinanetLoss(out.clsLogits, out.boxDeltas, targets, {
    classification: cfg.loss.classification,
    alpha: cfg.loss.alpha,
    gamma: cfg.loss.gamma,
    box: cfg.loss.box,
  });
  const names = model.store.trainableNames();
  const params: Tensor[] = names.map((nm) => g.inputs.get(nm)!);
  const grads = grad(loss.total, params);
  return Executable.create(g, [loss.classification, loss.box, ...grads], { threads, bake: model.store.frozenValues() }).then((exe) => ({ exe, names, release: () => exe.release() }));
}

/** Feeds of the training graph for one batch: parameters, images, loss targets and anchors. */
export function trainFeeds(model: RetinaNet, batch: PreparedBatch): Map<string, Float32Array | BigInt64Array> {
  const feeds = new Map<string, Float32Array | BigInt64Array>(model.store.values);
  feeds.set('images', batch.images);
  for (const name of LOSS_TARGET_NAMES) feeds.set(name, batch.targets[name]);
  feeds.set('anchors', batch.anchors);
  return feeds;
}

/**
 * L2 norm of all gradients together. Four partial sums: one running sum is bound by the latency
 * of a float64 add (~2x slower on 13M values).
 */
export function globalNorm(grads: readonly Float32Array[]): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  for (const g of grads) {
    const n4 = g.length - (g.length % 4);
    let i = 0;
    for (; i < n4; i += 4) {
      const a = g[i]!;
      const b = g[i + 1]!;
      const c = g[i + 2]!;
      const d = g[i + 3]!;
      s0 += a * a;
      s1 += b * b;
      s2 += c * c;
      s3 += d * d;
    }
    for (; i < g.length; i++) s0 += g[i]! * g[i]!;
  }
  return Math.sqrt(s0 + s1 + s2 + s3);
}
