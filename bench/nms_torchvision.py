"""torchvision side of bench/nms.ts: times batched_nms on the boxes the Node script wrote."""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_compat import ensure_torchvision  # noqa: E402  (before torchvision: torch 2 + a CUDA torchvision wheel)

ensure_torchvision()
from torchvision.ops import batched_nms

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_timing import time_fn  # noqa: E402

d, n, thr, threads = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
if threads > 0:
    torch.set_num_threads(threads)
boxes = torch.from_numpy(np.fromfile(os.path.join(d, "boxes.f32"), dtype="<f4").reshape(n, 4))
scores = torch.from_numpy(np.fromfile(os.path.join(d, "scores.f32"), dtype="<f4"))
idxs = torch.from_numpy(np.fromfile(os.path.join(d, "idxs.i32"), dtype="<i4").astype(np.int64))
with torch.inference_mode():
    keep = batched_nms(boxes, scores, idxs, thr)
    t = time_fn(lambda: batched_nms(boxes, scores, idxs, thr))
t["threads"] = torch.get_num_threads()
t["keep"] = keep.tolist()
print(json.dumps(t))
