#!/usr/bin/env python3
"""Reference timing for bench/eval_coco.ts: pycocotools COCOeval (bbox) on the same files.

Usage: python3 bench/eval_coco_pycocotools.py GT.json DETS.json
Prints one JSON line: {"seconds": load+evaluate+accumulate+summarize, "evalSeconds": ..., "stats": [12 numbers]}.
"""
import contextlib, io, json, sys, time

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def main():
    gt_path, dets_path = sys.argv[1], sys.argv[2]
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        dt = gt.loadRes(dets_path)
        t1 = time.perf_counter()
        e = COCOeval(gt, dt, 'bbox')
        e.evaluate()
        e.accumulate()
        e.summarize()
    t2 = time.perf_counter()
    print(json.dumps({'seconds': t2 - t0, 'evalSeconds': t2 - t1, 'stats': e.stats.tolist()}))


if __name__ == '__main__':
    main()
