/**
 * Training-target assignment for one image: match anchors to gt boxes and encode the
 * regression targets of the foreground anchors, as `RetinaNet.compute_loss` and its heads do.
 */
import { AnchorIndex } from './anchor_index.js';
import { BoxCoder, type BoxCoderWeights } from './box_coder.js';
import { type BoxArray, type ImageSize, numBoxes } from './boxes.js';
import { type MatcherOptions, matchSparse } from './matcher.js';

/** Options of {@link assignTargets}. */
export interface AssignOptions extends MatcherOptions {
  /** `[height, width]`: gt boxes are clipped to it first; boxes left empty are dropped. */
  imageSize?: ImageSize;
  /** Box coder weights; RetinaNet uses `[1, 1, 1, 1]`. */
  weights?: BoxCoderWeights;
  /**
   * Prebuilt index of `anchors`. Without it one is built on first use and cached per anchor
   * array (so anchor arrays must not be modified afterwards).
   */
  index?: AnchorIndex;
  /** Receives a message for each gt box that was clipped or dropped. Default: `process.emitWarning`. */
  onWarning?: (message: string) => void;
}

/** Targets of one image with N anchors, F of them foreground. */
export interface AssignedTargets {
  /**
   * Per anchor (length N): index into the caller's `gtBoxes`, or -1 (background,
   * `BELOW_LOW_THRESHOLD`) or -2 (ignored, `BETWEEN_THRESHOLDS`).
   */
  matchedIdxs: Int32Array;
  /** Indices of the foreground anchors (matched >= 0), ascending; length F. */
  foreground: Int32Array;
  /** Class label of each foreground anchor (from `gtLabels`); length F. */
  labels: Int32Array;
  /** Encoded deltas `[dx, dy, dw, dh]` of each foreground anchor's gt box; length 4F. */
  regressionTargets: Float32Array;
  /** Indices of the gt boxes that survived clean-up (ascending). */
  keptGt: Int32Array;
  /** The gt boxes actually matched against (clipped, empty ones removed), 4 * keptGt.length. */
  cleanGtBoxes: Float32Array;
}

/** Overhang past the image border (pixels) clipped without a warning: float rounding, not a label error. */
const CLIP_SILENT_PX = 1e-3;

/**
 * Drops non-finite and empty boxes (after clipping to `imageSize` when given) so the IoU never
 * sees a zero-area box (0/0 = NaN) or a box no anchor can match.
 */
export function sanitizeGtBoxes(
  gtBoxes: BoxArray,
  imageSize: ImageSize | undefined,
  warn: (message: string) => void,
): { boxes: Float32Array; kept: Int32Array } {
  const m = numBoxes(gtBoxes);
  const boxes = new Float32Array(4 * m);
  const kept = new Int32Array(m);
  let k = 0;
  for (let j = 0; j < m; j++) {
    let x1 = gtBoxes[4 * j]!, y1 = gtBoxes[4 * j + 1]!, x2 = gtBoxes[4 * j + 2]!, y2 = gtBoxes[4 * j + 3]!;
    const original = `[${x1}, ${y1}, ${x2}, ${y2}]`;
    if (imageSize !== undefined) {
      const [h, w] = imageSize;
      const c = (v: number, lim: number): number => (v < 0 ? 0 : v > lim ? lim : v);
      const cx1 = c(x1, w), cy1 = c(y1, h), cx2 = c(x2, w), cy2 = c(y2, h);
      if (cx1 !== x1 || cy1 !== y1 || cx2 !== x2 || cy2 !== y2) {
        // A box drawn to the border comes out of the float32 resize up to ~1e-5 px past it:
        // that is rounding, clipped without a word; a real overhang is reported.
        const overhang = Math.max(-x1, -y1, x2 - w, y2 - h);
        if (cx2 > cx1 && cy2 > cy1 && overhang > CLIP_SILENT_PX) warn(`gt box ${j} ${original} extends outside the ${w}x${h} image; clipped`);
        [x1, y1, x2, y2] = [cx1, cy1, cx2, cy2];
      }
    }
    if (!(x2 > x1 && y2 > y1) || ![x1, y1, x2, y2].every(Number.isFinite)) {
      warn(`gt box ${j} ${original} is empty, inverted, non-finite or outside the image; dropped`);
      continue;
    }
    boxes.set([x1, y1, x2, y2], 4 * k);
    kept[k++] = j;
  }
  return { boxes: boxes.slice(0, 4 * k), kept: kept.slice(0, k) };
}

const indexCache = new WeakMap<BoxArray, AnchorIndex>();

function cachedIndex(anchors: BoxArray): AnchorIndex {
  let index = indexCache.get(anchors);
  if (!index) indexCache.set(anchors, (index = new AnchorIndex(anchors)));
  return index;
}

const defaultWarn = (message: string): void => process.emitWarning(message, 'RetinaNetTargetWarning');

/**
 * Matches `anchors` (N xyxy boxes) to `gtBoxes` (M xyxy boxes, labels in `gtLabels`) with
 * torchvision's Matcher (IoU >= 0.5 foreground, < 0.4 background, low-quality matches on by
 * default) and encodes the foreground regression targets with `BoxCoder(weights)`.
 * An image without (valid) gt boxes gives all-background targets.
 */
export function assignTargets(
  anchors: BoxArray,
  gtBoxes: BoxArray,
  gtLabels: Int32Array,
  opts: AssignOptions = {},
): AssignedTargets {
  const n = numBoxes(anchors);
  if (gtLabels.length !== numBoxes(gtBoxes)) throw new RangeError('assignTargets: one label per gt box expected');
  const index = opts.index ?? cachedIndex(anchors);
  if (index.anchors !== anchors) throw new RangeError('assignTargets: opts.index was built for another anchor array');
  const { boxes: clean, kept } = sanitizeGtBoxes(gtBoxes, opts.imageSize, opts.onWarning ?? defaultWarn);

  const low = opts.lowThreshold ?? 0.4;
  const local = matchSparse(index.sparseIou(clean, low), opts, (a) => index.argmaxIou(clean, a));
  const matchedIdxs = new Int32Array(n);
  let numFg = 0;
  for (let i = 0; i < n; i++) {
    const v = local[i]!;
    matchedIdxs[i] = v >= 0 ? kept[v]! : v;
    if (v >= 0) numFg++;
  }
  const foreground = new Int32Array(numFg);
  const labels = new Int32Array(numFg);
  const regressionTargets = new Float32Array(4 * numFg);
  const coder = new BoxCoder(opts.weights ?? [1, 1, 1, 1]);
  for (let i = 0, k = 0; i < n; i++) {
    const v = local[i]!;
    if (v < 0) continue;
    foreground[k] = i;
    labels[k] = gtLabels[kept[v]!]!;
    coder.encodeAt(clean, v, anchors, i, regressionTargets, k);
    k++;
  }
  return { matchedIdxs, foreground, labels, regressionTargets, keptGt: kept, cleanGtBoxes: clean };
}
