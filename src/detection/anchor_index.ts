/**
 * Spatial index over a fixed anchor set, so that IoU against a gt box only visits the anchors
 * that overlap it. Anchors are grouped by exact size; each group is sorted by (x1, y1) into
 * columns, so a gt box costs two binary searches per column in range. Works for any anchor set;
 * it is fast when many anchors share a size (a grid, as {@link anchorsForImage} produces).
 */
import { type BoxArray, numBoxes } from './boxes.js';
import type { SparseIou } from './matcher.js';

const f = Math.fround;

interface SizeGroup {
  w: number;
  h: number;
  /** Distinct x1 values, ascending. */
  colX: Float64Array;
  /** Column c holds members [colStart[c], colStart[c+1]) of `ids`/`y1`, sorted by y1. */
  colStart: Int32Array;
  y1: Float64Array;
  ids: Int32Array;
}

/** First index in [lo, hi) whose value is >= `value` (arr ascending on that range). */
function lowerBound(arr: Float64Array, lo: number, hi: number, value: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (arr[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Reusable index of one anchor array (N xyxy boxes); build once per padded image size. */
export class AnchorIndex {
  readonly anchors: BoxArray;
  readonly numAnchors: number;
  /** Float32 areas, as torchvision's box_area computes them. */
  readonly areas: Float32Array;
  private readonly groups: SizeGroup[];

  constructor(anchors: BoxArray) {
    this.anchors = anchors;
    const n = (this.numAnchors = numBoxes(anchors));
    this.areas = new Float32Array(n);
    const bySize = new Map<string, number[]>();
    for (let i = 0; i < n; i++) {
      const o = 4 * i;
      const w = anchors[o + 2]! - anchors[o]!;
      const h = anchors[o + 3]! - anchors[o + 1]!;
      this.areas[i] = f(f(w) * f(h));
      const key = `${w},${h}`;
      const list = bySize.get(key);
      if (list) list.push(i);
      else bySize.set(key, [i]);
    }
    this.groups = [...bySize.values()].map((members) => {
      members.sort((a, b) => anchors[4 * a]! - anchors[4 * b]! || anchors[4 * a + 1]! - anchors[4 * b + 1]! || a - b);
      const first = 4 * members[0]!;
      const colX: number[] = [];
      const colStart: number[] = [];
      members.forEach((id, k) => {
        const x = anchors[4 * id]!;
        if (colX.length === 0 || colX[colX.length - 1] !== x) {
          colX.push(x);
          colStart.push(k);
        }
      });
      colStart.push(members.length);
      return {
        w: anchors[first + 2]! - anchors[first]!,
        h: anchors[first + 3]! - anchors[first + 1]!,
        colX: Float64Array.from(colX),
        colStart: Int32Array.from(colStart),
        y1: Float64Array.from(members, (id) => anchors[4 * id + 1]!),
        ids: Int32Array.from(members),
      };
    });
  }

  /**
   * IoU of each gt box (M xyxy boxes) with every anchor it overlaps, in torchvision's float32
   * arithmetic. Pairs are grouped by gt in gt order; within a gt their order is unspecified.
   */
  sparseIou(gt: BoxArray): SparseIou {
    const m = numBoxes(gt);
    const start = new Int32Array(m + 1);
    let cap = 1024;
    let anchor = new Int32Array(cap);
    let iou = new Float32Array(cap);
    let len = 0;
    const a = this.anchors;
    for (let j = 0; j < m; j++) {
      const g = 4 * j;
      const gx1 = gt[g]!, gy1 = gt[g + 1]!, gx2 = gt[g + 2]!, gy2 = gt[g + 3]!;
      const gArea = f(f(gx2 - gx1) * f(gy2 - gy1));
      for (const grp of this.groups) {
        // Overlap needs x1 in (gx1 - w, gx2) and y1 in (gy1 - h, gy2); widen by a hair so float
        // rounding in w/h can never exclude a true overlap (the exact test below decides).
        const slackX = 1e-6 * (Math.abs(gx1) + grp.w) + 1e-9;
        const slackY = 1e-6 * (Math.abs(gy1) + grp.h) + 1e-9;
        const c0 = lowerBound(grp.colX, 0, grp.colX.length, gx1 - grp.w - slackX);
        const c1 = lowerBound(grp.colX, c0, grp.colX.length, gx2);
        for (let c = c0; c < c1; c++) {
          const lo = grp.colStart[c]!, hi = grp.colStart[c + 1]!;
          const r0 = lowerBound(grp.y1, lo, hi, gy1 - grp.h - slackY);
          const r1 = lowerBound(grp.y1, r0, hi, gy2);
          for (let r = r0; r < r1; r++) {
            const id = grp.ids[r]!;
            const o = 4 * id;
            const w = f(Math.min(gx2, a[o + 2]!) - Math.max(gx1, a[o]!));
            const h = f(Math.min(gy2, a[o + 3]!) - Math.max(gy1, a[o + 1]!));
            if (!(w > 0 && h > 0)) continue;
            const inter = f(w * h);
            if (len === cap) {
              cap *= 2;
              const na = new Int32Array(cap);
              na.set(anchor);
              anchor = na;
              const ni = new Float32Array(cap);
              ni.set(iou);
              iou = ni;
            }
            anchor[len] = id;
            iou[len++] = f(inter / f(f(gArea + this.areas[id]!) - inter));
          }
        }
      }
      start[j + 1] = len;
    }
    return { numGt: m, numAnchors: this.numAnchors, start, anchor: anchor.subarray(0, len), iou: iou.subarray(0, len) };
  }
}
