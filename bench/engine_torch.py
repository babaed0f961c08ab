"""PyTorch reference for `retinanet bench engine`: 3x3 conv 256->256 on 1x64x64, forward and
backward (dX + dW), GFLOP/s on the given thread count. Prints one JSON object."""
import json
import sys
import time

import torch


def best_time(fn, reps):
    fn()
    fn()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    c, h, w = 256, 64, 64
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x = torch.randn(1, c, h, w, requires_grad=True)
    weight = torch.randn(c, c, 3, 3, requires_grad=True)
    dy = torch.randn(1, c, h, w)
    flops = 2.0 * c * c * 9 * h * w

    def fwd():
        with torch.no_grad():
            torch.nn.functional.conv2d(x, weight, padding=1)

    y = torch.nn.functional.conv2d(x, weight, padding=1)

    def bwd():
        torch.autograd.grad(y, [x, weight], dy, retain_graph=True)

    tf = best_time(fwd, reps)
    tb = best_time(bwd, reps)
    print(json.dumps({
        "torch_version": torch.__version__,
        "threads": threads,
        "conv_fwd_s": tf,
        "conv_bwd_s": tb,
        "conv_fwd_gflops": flops / tf / 1e9,
        "conv_bwd_gflops": 2 * flops / tb / 1e9,
    }))


if __name__ == "__main__":
    main()
