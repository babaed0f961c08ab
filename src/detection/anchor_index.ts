/**
 * Spatial index over a fixed anchor set, so that IoU against a gt box only visits the anchors
 * that overlap it. Anchors are grouped by exact size; each group is sorted by (y1, x1) into
 * rows, so a gt box costs two binary searches per row in range. Works for any anchor set;
 * it is fast when many anchors share a size (a grid, as {@link anchorsForImage} produces).
 */
import { type BoxArray, numBoxes } from './boxes.js';
import type { SparseIou } from './matcher.js';

const f = Math.fround;

interface SizeGroup {
  w: number;
  h: number;
  /** Float32 area shared by the group's anchors. */
  area: number;
  /** Distinct y1 values, ascending. */
  rowY: Float64Array;
  /** Row r holds members [rowStart[r], rowStart[r+1]) of `ids`/`x1`, sorted by x1. */
  rowStart: Int32Array;
  x1: Float64Array;
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
    const members = groupBySize(anchors, this.areas);
    this.groups = members.map((ids) => buildGroup(anchors, this.areas, ids));
  }

  /**
   * IoU of each gt box (M xyxy boxes) with the anchors it overlaps, in torchvision's float32
   * arithmetic. Pairs are grouped by gt in gt order; within a gt their order is unspecified.
   *
   * With `pruneBelow` set, an anchor-size group is skipped for a gt when its IoU upper bound
   * (from the two box shapes) is below both `pruneBelow` and the best IoU already found for that
   * gt: those pairs cannot change a match decided at `pruneBelow` (the matcher's low
   * threshold) nor tie a gt's best IoU. The result is then flagged `pruned`, and the matcher
   * asks {@link AnchorIndex.argmaxIou} for the few anchors where the full argmax matters.
   */
  sparseIou(gt: BoxArray, pruneBelow?: number): SparseIou {
    const m = numBoxes(gt);
    const start = new Int32Array(m + 1);
    const out: PairBuffer = { anchor: new Int32Array(4096), iou: new Float32Array(4096), len: 0 };
    const bounds = new Float64Array(this.groups.length);
    const byBound = new Int32Array(this.groups.length);
    for (let j = 0; j < m; j++) {
      const g = 4 * j;
      const gx1 = gt[g]!, gy1 = gt[g + 1]!, gx2 = gt[g + 2]!, gy2 = gt[g + 3]!;
      const gArea = f(f(gx2 - gx1) * f(gy2 - gy1));
      if (pruneBelow === undefined) {
        for (const grp of this.groups) this.scanGroup(grp, gx1, gy1, gx2, gy2, gArea, out);
      } else {
        this.orderGroups(f(gx2 - gx1), f(gy2 - gy1), gArea, bounds, byBound);
        let highest = 0;
        for (let k = 0; k < byBound.length; k++) {
          // Margin: float32 rounding can lift an IoU a few ulp above the exact bound.
          const bound = bounds[byBound[k]!]! * (1 + 1e-5);
          if (bound < pruneBelow && bound < highest) break;
          const from = out.len;
          this.scanGroup(this.groups[byBound[k]!]!, gx1, gy1, gx2, gy2, gArea, out);
          for (let p = from; p < out.len; p++) if (out.iou[p]! > highest) highest = out.iou[p]!;
        }
      }
      start[j + 1] = out.len;
    }
    return {
      numGt: m,
      numAnchors: this.numAnchors,
      start,
      anchor: out.anchor.subarray(0, out.len),
      iou: out.iou.subarray(0, out.len),
      ...(pruneBelow === undefined ? {} : { pruned: true }),
    };
  }

  /**
   * Group indices by decreasing IoU upper bound against a gt of size gw x gh: the IoU when the
   * intersection is as large as the two shapes allow, min(w) * min(h).
   */
  private orderGroups(gw: number, gh: number, gArea: number, bounds: Float64Array, byBound: Int32Array): void {
    for (let k = 0; k < this.groups.length; k++) {
      const grp = this.groups[k]!;
      const inter = Math.min(grp.w, gw) * Math.min(grp.h, gh);
      bounds[k] = inter / (grp.area + gArea - inter);
      byBound[k] = k;
    }
    byBound.sort((p, q) => bounds[q]! - bounds[p]!);
  }

  /** Appends (anchor, IoU) for every anchor of `grp` overlapping the gt box. */
  private scanGroup(grp: SizeGroup, gx1: number, gy1: number, gx2: number, gy2: number, gArea: number, out: PairBuffer): void {
    const a = this.anchors;
    const areas = this.areas;
    // Overlap needs y1 in (gy1 - h, gy2) and x1 in (gx1 - w, gx2); widen by a hair so float
    // rounding in w/h can never exclude a true overlap (the exact test below decides).
    const slackX = 1e-6 * (Math.abs(gx1) + grp.w) + 1e-9;
    const slackY = 1e-6 * (Math.abs(gy1) + grp.h) + 1e-9;
    const q0 = lowerBound(grp.rowY, 0, grp.rowY.length, gy1 - grp.h - slackY);
    const q1 = lowerBound(grp.rowY, q0, grp.rowY.length, gy2);
    for (let q = q0; q < q1; q++) {
      const lo = grp.rowStart[q]!, hi = grp.rowStart[q + 1]!;
      const r0 = lowerBound(grp.x1, lo, hi, gx1 - grp.w - slackX);
      const r1 = lowerBound(grp.x1, r0, hi, gx2);
      if (out.len + (r1 - r0) > out.anchor.length) grow(out, out.len + (r1 - r0));
      for (let r = r0; r < r1; r++) {
        const id = grp.ids[r]!;
        const o = 4 * id;
        const w = f(Math.min(gx2, a[o + 2]!) - Math.max(gx1, a[o]!));
        const h = f(Math.min(gy2, a[o + 3]!) - Math.max(gy1, a[o + 1]!));
        if (!(w > 0 && h > 0)) continue;
        const inter = f(w * h);
        out.anchor[out.len] = id;
        out.iou[out.len++] = f(inter / f(f(gArea + areas[id]!) - inter));
      }
    }
  }

  /**
   * Index of the gt box (M xyxy boxes) with the highest IoU with anchor `id`, the first one on
   * ties and 0 when none overlaps: torch's `max(dim=0)` over one column of the IoU matrix.
   */
  argmaxIou(gt: BoxArray, id: number): number {
    const a = this.anchors;
    const o = 4 * id;
    let best = 0, arg = 0;
    for (let j = 0; j < gt.length >> 2; j++) {
      const g = 4 * j;
      const w = f(Math.min(gt[g + 2]!, a[o + 2]!) - Math.max(gt[g]!, a[o]!));
      const h = f(Math.min(gt[g + 3]!, a[o + 3]!) - Math.max(gt[g + 1]!, a[o + 1]!));
      if (!(w > 0 && h > 0)) continue;
      const inter = f(w * h);
      const gArea = f(f(gt[g + 2]! - gt[g]!) * f(gt[g + 3]! - gt[g + 1]!));
      const v = f(inter / f(f(gArea + this.areas[id]!) - inter));
      if (v > best) {
        best = v;
        arg = j;
      }
    }
    return arg;
  }
}

interface PairBuffer {
  anchor: Int32Array;
  iou: Float32Array;
  len: number;
}

function grow(out: PairBuffer, need: number): void {
  const cap = Math.max(need, 2 * out.anchor.length);
  const anchor = new Int32Array(cap);
  anchor.set(out.anchor.subarray(0, out.len));
  const iou = new Float32Array(cap);
  iou.set(out.iou.subarray(0, out.len));
  out.anchor = anchor;
  out.iou = iou;
}

/**
 * Anchor ids grouped by exact (width, height), each group in input order. A linear scan over the
 * groups seen so far beats a Map keyed by doubles while there are few sizes (45 for RetinaNet).
 */
function groupBySize(anchors: BoxArray, areas: Float32Array): Int32Array[] {
  const n = areas.length;
  const ws: number[] = [], hs: number[] = [], counts: number[] = [];
  const groupOf = new Int32Array(n);
  let last = 0;
  for (let i = 0; i < n; i++) {
    const o = 4 * i;
    const w = anchors[o + 2]! - anchors[o]!;
    const h = anchors[o + 3]! - anchors[o + 1]!;
    areas[i] = f(f(w) * f(h));
    let g = -1;
    // Anchors come in repeating cycles of sizes: try the successor of the last group first.
    const guess = last + 1 < ws.length ? last + 1 : 0;
    if (guess < ws.length && ws[guess] === w && hs[guess] === h) g = guess;
    else for (let k = 0; k < ws.length; k++) if (ws[k] === w && hs[k] === h) { g = k; break; }
    if (g < 0) {
      g = ws.length;
      ws.push(w);
      hs.push(h);
      counts.push(0);
    }
    groupOf[i] = g;
    counts[g]!++;
    last = g;
  }
  const groups = counts.map((c) => new Int32Array(c));
  const fill = new Int32Array(counts.length);
  for (let i = 0; i < n; i++) groups[groupOf[i]!]![fill[groupOf[i]!]!++] = i;
  return groups;
}

/** One size group sorted into rows; the sort is skipped when the ids already are in (y1, x1) order. */
function buildGroup(anchors: BoxArray, areas: Float32Array, ids: Int32Array): SizeGroup {
  const y = (id: number): number => anchors[4 * id + 1]!;
  const x = (id: number): number => anchors[4 * id]!;
  let sorted = true;
  for (let k = 1; k < ids.length && sorted; k++) {
    const a = ids[k - 1]!, b = ids[k]!;
    sorted = y(a) < y(b) || (y(a) === y(b) && x(a) <= x(b));
  }
  if (!sorted) ids.sort((a, b) => y(a) - y(b) || x(a) - x(b) || a - b);
  const rowY: number[] = [];
  const rowStart: number[] = [];
  for (let k = 0; k < ids.length; k++) {
    const v = y(ids[k]!);
    if (rowY.length === 0 || rowY[rowY.length - 1] !== v) {
      rowY.push(v);
      rowStart.push(k);
    }
  }
  rowStart.push(ids.length);
  const first = 4 * ids[0]!;
  return {
    w: anchors[first + 2]! - anchors[first]!,
    h: anchors[first + 3]! - anchors[first + 1]!,
    area: areas[ids[0]!]!,
    rowY: Float64Array.from(rowY),
    rowStart: Int32Array.from(rowStart),
    x1: Float64Array.from(ids, x),
    ids,
  };
}
