"""torchvision side of `retinanet bench detect`: retinanet_resnet50_fpn (FrozenBN, 91 classes)
with the shared hash weights, eval mode, one HxW hash image, whole detect path (transform,
network, post-processing). Prints one JSON line: median/min ms and the detection count."""
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_compat import ensure_torchvision  # noqa: E402  (before torchvision: torch 2 + a CUDA torchvision wheel)

ensure_torchvision()
from torchvision.models import resnet50
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.models.detection.retinanet import RetinaNet
from torchvision.ops.feature_pyramid_network import LastLevelP6P7
from torchvision.ops.misc import FrozenBatchNorm2d

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts", "fixtures"))
from hash_weights import hash_uniform, hash_weight  # noqa: E402


def main():
    h, w, threads, runs = (int(v) for v in sys.argv[1:5])
    torch.set_num_threads(threads)
    backbone = _resnet_fpn_extractor(resnet50(weights=None, norm_layer=FrozenBatchNorm2d), 3, returned_layers=[2, 3, 4], extra_blocks=LastLevelP6P7(256, 256))
    model = RetinaNet(backbone, 91, min_size=min(h, w), max_size=max(h, w)).eval()
    model.load_state_dict({n: torch.from_numpy(hash_weight(n, list(t.shape))) for n, t in model.state_dict().items()})
    image = torch.from_numpy(hash_uniform("bench-image", 3 * h * w).astype(np.float32).reshape(3, h, w))
    times = []
    with torch.no_grad():
        for i in range(runs + 2):
            t0 = time.perf_counter()
            out = model([image])[0]
            if i >= 2:
                times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    print(json.dumps({"medianMs": times[len(times) // 2], "minMs": times[0], "threads": threads, "detections": len(out["scores"])}))


if __name__ == "__main__":
    main()
