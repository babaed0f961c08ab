/**
 * Anchor-relative box encoding (R-CNN deltas), identical to torchvision's `BoxCoder` in float32.
 * Deltas are `[dx, dy, dw, dh]` per box: centre offsets in units of the anchor size and log size
 * ratios, each multiplied by its weight.
 */
import { type BoxArray, numBoxes } from './boxes.js';

const f = Math.fround;

/** Weights `[wx, wy, ww, wh]`; RetinaNet uses all ones, Faster R-CNN heads `[10, 10, 5, 5]`. */
export type BoxCoderWeights = readonly [number, number, number, number];

/** torchvision's default clamp on decoded dw/dh: exp(dw) never exceeds 1000/16. */
export const BBOX_XFORM_CLIP = Math.log(1000 / 16);

/** Encoder/decoder of box regression deltas relative to anchors. */
export class BoxCoder {
  readonly weights: BoxCoderWeights;
  readonly bboxXformClip: number;

  constructor(weights: BoxCoderWeights = [1, 1, 1, 1], bboxXformClip: number = BBOX_XFORM_CLIP) {
    this.weights = weights;
    this.bboxXformClip = bboxXformClip;
  }

  /**
   * Regression targets of `gt` boxes w.r.t. `anchors` (both N xyxy boxes, box i paired with
   * box i): `Float32Array` of 4N deltas. Mirrors `BoxCoder.encode_single(gt, anchors)`.
   */
  encode(gt: BoxArray, anchors: BoxArray): Float32Array {
    const n = numBoxes(gt);
    if (numBoxes(anchors) !== n) throw new RangeError('encode: gt and anchors must have the same length');
    const out = new Float32Array(4 * n);
    for (let i = 0; i < n; i++) this.encodeAt(gt, i, anchors, i, out, i);
    return out;
  }

  /** Encodes gt box `gi` against anchor `ai`, writing 4 deltas at box slot `oi` of `out`. */
  encodeAt(gt: BoxArray, gi: number, anchors: BoxArray, ai: number, out: Float32Array, oi: number): void {
    const [wx, wy, ww, wh] = this.weights;
    const a = 4 * ai, g = 4 * gi, o = 4 * oi;
    const exW = f(anchors[a + 2]! - anchors[a]!);
    const exH = f(anchors[a + 3]! - anchors[a + 1]!);
    const exCx = f(anchors[a]! + f(0.5 * exW));
    const exCy = f(anchors[a + 1]! + f(0.5 * exH));
    const gtW = f(gt[g + 2]! - gt[g]!);
    const gtH = f(gt[g + 3]! - gt[g + 1]!);
    const gtCx = f(gt[g]! + f(0.5 * gtW));
    const gtCy = f(gt[g + 1]! + f(0.5 * gtH));
    out[o] = f(f(f(wx) * f(gtCx - exCx)) / exW);
    out[o + 1] = f(f(f(wy) * f(gtCy - exCy)) / exH);
    out[o + 2] = f(f(ww) * f(Math.log(f(gtW / exW))));
    out[o + 3] = f(f(wh) * f(Math.log(f(gtH / exH))));
  }

  /**
   * Boxes from deltas: `relCodes` (4N) applied to `anchors` (N xyxy boxes) gives N xyxy boxes.
   * dw/dh are clamped at `bboxXformClip` before exp. Mirrors `BoxCoder.decode_single`.
   */
  decode(relCodes: BoxArray, anchors: BoxArray): Float32Array {
    const n = numBoxes(anchors);
    if (numBoxes(relCodes) !== n) throw new RangeError('decode: relCodes and anchors must have the same length');
    const out = new Float32Array(4 * n);
    for (let i = 0; i < n; i++) this.decodeAt(relCodes, i, anchors, i, out, i);
    return out;
  }

  /** Decodes deltas at box slot `ri` against anchor `ai`, writing the box at slot `oi` of `out`. */
  decodeAt(relCodes: BoxArray, ri: number, anchors: BoxArray, ai: number, out: Float32Array, oi: number): void {
    const [wx, wy, ww, wh] = this.weights;
    const clip = f(this.bboxXformClip);
    const a = 4 * ai, r = 4 * ri, o = 4 * oi;
    const widths = f(anchors[a + 2]! - anchors[a]!);
    const heights = f(anchors[a + 3]! - anchors[a + 1]!);
    const ctrX = f(anchors[a]! + f(0.5 * widths));
    const ctrY = f(anchors[a + 1]! + f(0.5 * heights));
    const dx = f(relCodes[r]! / f(wx));
    const dy = f(relCodes[r + 1]! / f(wy));
    let dw = f(relCodes[r + 2]! / f(ww));
    let dh = f(relCodes[r + 3]! / f(wh));
    // A comparison (not Math.min) so that NaN propagates like torch.clamp.
    if (dw > clip) dw = clip;
    if (dh > clip) dh = clip;
    const predCx = f(f(dx * widths) + ctrX);
    const predCy = f(f(dy * heights) + ctrY);
    const halfW = f(0.5 * f(f(Math.exp(dw)) * widths));
    const halfH = f(0.5 * f(f(Math.exp(dh)) * heights));
    out[o] = f(predCx - halfW);
    out[o + 1] = f(predCy - halfH);
    out[o + 2] = f(predCx + halfW);
    out[o + 3] = f(predCy + halfH);
  }
}
