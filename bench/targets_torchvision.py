"""torchvision side of bench/targets.ts: box_iou + Matcher + BoxCoder.encode_single for one image."""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_compat import ensure_torchvision  # noqa: E402  (before torchvision: torch 2 + a CUDA torchvision wheel)

ensure_torchvision()
from torchvision.models.detection import _utils as det_utils
from torchvision.ops import boxes as box_ops

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_timing import time_fn  # noqa: E402

d, n, m, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
if threads > 0:
    torch.set_num_threads(threads)
anchors = torch.from_numpy(np.fromfile(os.path.join(d, "anchors.f32"), dtype="<f4").reshape(n, 4))
gt = torch.from_numpy(np.fromfile(os.path.join(d, "gt.f32"), dtype="<f4").reshape(m, 4))
matcher = det_utils.Matcher(0.5, 0.4, allow_low_quality_matches=True)
coder = det_utils.BoxCoder((1.0, 1.0, 1.0, 1.0))


def run():
    matched = matcher(box_ops.box_iou(gt, anchors))
    fg = torch.where(matched >= 0)[0]
    return matched, coder.encode_single(gt[matched[fg]], anchors[fg])


with torch.inference_mode():
    matched, _ = run()
    t = time_fn(run, runs=20, warmup=3)
t["threads"] = torch.get_num_threads()
t["matched"] = matched.tolist()
print(json.dumps(t))
