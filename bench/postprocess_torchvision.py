"""torchvision side of bench/postprocess.ts: RetinaNet.postprocess_detections on the same head outputs."""
import json
import os
import sys
from types import SimpleNamespace

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_compat import ensure_torchvision  # noqa: E402  (before torchvision: torch 2 + a CUDA torchvision wheel)

ensure_torchvision()
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.retinanet import RetinaNet, _default_anchorgen

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_timing import time_fn  # noqa: E402

d, ph, pw, ih, iw, k, det, threads = sys.argv[1], *map(int, sys.argv[2:9])
if threads > 0:
    torch.set_num_threads(threads)
grids = [(-(-ph // s), -(-pw // s)) for s in (8, 16, 32, 64, 128)]
gen = _default_anchorgen()
anchors = gen(ImageList(torch.zeros(1, 3, ph, pw), [(ph, pw)]), [torch.zeros(1, 1, gh, gw) for gh, gw in grids])[0]
per_level = [gh * gw * 9 for gh, gw in grids]
a = anchors.shape[0]
logits = torch.from_numpy(np.fromfile(os.path.join(d, "logits.f32"), dtype="<f4").reshape(1, a, k))
deltas = torch.from_numpy(np.fromfile(os.path.join(d, "deltas.f32"), dtype="<f4").reshape(1, a, 4))
self_ = SimpleNamespace(
    score_thresh=0.05, nms_thresh=0.5, detections_per_img=det, topk_candidates=1000, box_coder=det_utils.BoxCoder((1.0, 1.0, 1.0, 1.0))
)
head = {"cls_logits": list(logits.split(per_level, dim=1)), "bbox_regression": list(deltas.split(per_level, dim=1))}
split_anchors = [list(anchors.split(per_level))]


def run():
    return RetinaNet.postprocess_detections(self_, head, split_anchors, [(ih, iw)])[0]


with torch.inference_mode():
    out = run()
    t = time_fn(run, runs=20, warmup=3)
t["threads"] = torch.get_num_threads()
t["boxes"] = out["boxes"].reshape(-1).tolist()
t["scores"] = out["scores"].tolist()
t["labels"] = out["labels"].tolist()
print(json.dumps(t))
