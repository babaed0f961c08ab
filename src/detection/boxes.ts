/**
 * Box operations on flat typed arrays, bit-compatible with torchvision.ops.boxes in float32.
 *
 * A box array of N boxes is a `Float32Array` (or `Float64Array`) of length 4N; box i occupies
 * `[4i, 4i + 4)`. Unless a function says otherwise the layout is `[x1, y1, x2, y2]` in
 * input-image pixels. Results are `Float32Array`s computed with float32 rounding after every
 * arithmetic step (`Math.fround`), because that is what torch does on float32 tensors and the
 * golden fixtures compare to it bit for bit.
 */

/** A flat array of boxes, 4 numbers per box. */
export type BoxArray = Float32Array | Float64Array;

/** Box encodings understood by {@link boxConvert} (torchvision's `box_convert` names). */
export type BoxFormat = 'xyxy' | 'xywh' | 'cxcywh';

/** Image size as `[height, width]` in pixels (torchvision's order). */
export type ImageSize = readonly [height: number, width: number];

const f = Math.fround;

/** Number of boxes in a flat array; throws when the length is not a multiple of 4. */
export function numBoxes(boxes: ArrayLike<number>): number {
  if (boxes.length % 4 !== 0) throw new RangeError(`box array length ${boxes.length} is not a multiple of 4`);
  return boxes.length / 4;
}

/** Area of each xyxy box: `Float32Array` of length N, in square pixels. */
export function boxArea(boxes: BoxArray): Float32Array {
  const n = numBoxes(boxes);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const o = 4 * i;
    out[i] = f(f(boxes[o + 2]! - boxes[o]!) * f(boxes[o + 3]! - boxes[o + 1]!));
  }
  return out;
}

/**
 * Pairwise IoU of two xyxy box sets: row-major `Float32Array` of shape [N, M]
 * (`iou[i * M + j]` = IoU(boxes1[i], boxes2[j])), as torchvision's `box_iou`.
 */
export function boxIou(boxes1: BoxArray, boxes2: BoxArray): Float32Array {
  const n = numBoxes(boxes1);
  const m = numBoxes(boxes2);
  const area1 = boxArea(boxes1);
  const area2 = boxArea(boxes2);
  const out = new Float32Array(n * m);
  for (let i = 0; i < n; i++) {
    const ax1 = boxes1[4 * i]!, ay1 = boxes1[4 * i + 1]!, ax2 = boxes1[4 * i + 2]!, ay2 = boxes1[4 * i + 3]!;
    const a1 = area1[i]!;
    for (let j = 0; j < m; j++) {
      const o = 4 * j;
      const w = f(Math.min(ax2, boxes2[o + 2]!) - Math.max(ax1, boxes2[o]!));
      const h = f(Math.min(ay2, boxes2[o + 3]!) - Math.max(ay1, boxes2[o + 1]!));
      const inter = w > 0 && h > 0 ? f(w * h) : 0;
      out[i * m + j] = f(inter / f(f(a1 + area2[j]!) - inter));
    }
  }
  return out;
}

/**
 * Pairwise generalized IoU (Rezatofighi et al.), row-major [N, M], as torchvision's
 * `generalized_box_iou`. Values lie in [-1, 1].
 */
export function generalizedBoxIou(boxes1: BoxArray, boxes2: BoxArray): Float32Array {
  const n = numBoxes(boxes1);
  const m = numBoxes(boxes2);
  const area1 = boxArea(boxes1);
  const area2 = boxArea(boxes2);
  const out = new Float32Array(n * m);
  for (let i = 0; i < n; i++) {
    const ax1 = boxes1[4 * i]!, ay1 = boxes1[4 * i + 1]!, ax2 = boxes1[4 * i + 2]!, ay2 = boxes1[4 * i + 3]!;
    for (let j = 0; j < m; j++) {
      const o = 4 * j;
      const bx1 = boxes2[o]!, by1 = boxes2[o + 1]!, bx2 = boxes2[o + 2]!, by2 = boxes2[o + 3]!;
      const w = Math.max(0, f(Math.min(ax2, bx2) - Math.max(ax1, bx1)));
      const h = Math.max(0, f(Math.min(ay2, by2) - Math.max(ay1, by1)));
      const inter = f(w * h);
      const union = f(f(area1[i]! + area2[j]!) - inter);
      const iou = f(inter / union);
      const cw = Math.max(0, f(Math.max(ax2, bx2) - Math.min(ax1, bx1)));
      const ch = Math.max(0, f(Math.max(ay2, by2) - Math.min(ay1, by1)));
      const areaC = f(cw * ch);
      out[i * m + j] = f(iou - f(f(areaC - union) / areaC));
    }
  }
  return out;
}

/**
 * Clamps xyxy boxes to the image: x to [0, width], y to [0, height]. Returns a new array;
 * the input is untouched. NaN coordinates stay NaN, as with `torch.clamp`.
 */
export function clipBoxesToImage(boxes: BoxArray, size: ImageSize): Float32Array {
  const out = Float32Array.from(boxes);
  clipBoxesInPlace(out, size);
  return out;
}

/** In-place variant of {@link clipBoxesToImage}, for callers that own the buffer. */
export function clipBoxesInPlace(boxes: Float32Array, size: ImageSize): void {
  const [height, width] = size;
  for (let k = 0; k < boxes.length; k++) {
    const lim = (k & 1) === 0 ? width : height;
    const v = boxes[k]!;
    boxes[k] = v < 0 ? 0 : v > lim ? lim : v;
  }
}

/**
 * Indices (ascending) of the boxes whose width and height are both >= minSize pixels,
 * as torchvision's `remove_small_boxes`.
 */
export function removeSmallBoxes(boxes: BoxArray, minSize: number): Int32Array {
  const n = numBoxes(boxes);
  const keep: number[] = [];
  for (let i = 0; i < n; i++) {
    const o = 4 * i;
    if (f(boxes[o + 2]! - boxes[o]!) >= minSize && f(boxes[o + 3]! - boxes[o + 1]!) >= minSize) keep.push(i);
  }
  return Int32Array.from(keep);
}

/**
 * Converts between box encodings (`xyxy` corners, `xywh` corner + size, `cxcywh` centre + size),
 * following torchvision's `box_convert` (non-xyxy pairs go through xyxy). Returns a new array.
 */
export function boxConvert(boxes: BoxArray, inFmt: BoxFormat, outFmt: BoxFormat): Float32Array {
  let cur: Float32Array = Float32Array.from(boxes);
  if (inFmt === outFmt) return cur;
  if (inFmt !== 'xyxy') cur = toXyxy(cur, inFmt);
  if (outFmt !== 'xyxy') cur = fromXyxy(cur, outFmt);
  return cur;
}

function toXyxy(b: Float32Array, fmt: 'xywh' | 'cxcywh'): Float32Array {
  const out = new Float32Array(b.length);
  for (let o = 0; o < b.length; o += 4) {
    const p = b[o]!, q = b[o + 1]!, w = b[o + 2]!, h = b[o + 3]!;
    if (fmt === 'xywh') {
      out[o] = p;
      out[o + 1] = q;
      out[o + 2] = f(p + w);
      out[o + 3] = f(q + h);
    } else {
      const hw = f(0.5 * w), hh = f(0.5 * h);
      out[o] = f(p - hw);
      out[o + 1] = f(q - hh);
      out[o + 2] = f(p + hw);
      out[o + 3] = f(q + hh);
    }
  }
  return out;
}

function fromXyxy(b: Float32Array, fmt: 'xywh' | 'cxcywh'): Float32Array {
  const out = new Float32Array(b.length);
  for (let o = 0; o < b.length; o += 4) {
    const x1 = b[o]!, y1 = b[o + 1]!, x2 = b[o + 2]!, y2 = b[o + 3]!;
    const w = f(x2 - x1), h = f(y2 - y1);
    if (fmt === 'xywh') {
      out[o] = x1;
      out[o + 1] = y1;
    } else {
      out[o] = f(f(x1 + x2) / 2);
      out[o + 1] = f(f(y1 + y2) / 2);
    }
    out[o + 2] = w;
    out[o + 3] = h;
  }
  return out;
}
