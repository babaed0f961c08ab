"""Timing helper shared by the *_torchvision.py detection benchmarks (mirrors bench/detection_common.ts)."""
import time


def time_fn(fn, runs=30, warmup=5):
    for _ in range(warmup):
        fn()
    t = []
    for _ in range(runs):
        s = time.perf_counter()
        fn()
        t.append((time.perf_counter() - s) * 1000.0)
    t.sort()
    return {"medianMs": t[len(t) // 2], "minMs": t[0], "runs": runs}
