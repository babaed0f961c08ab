"""torchvision side of `retinanet bench train-step`: retinanet_resnet50_fpn layout (FrozenBN,
trainable_backbone_layers=3), or with a 7th argument (retinanet-ts's config JSON) the from-scratch
GroupNorm ResNet-18 of bench/scratch_torchvision.py; K classes, SGD step (momentum 0.9, wd 1e-4) on a batch of N hash
images with deterministic boxes. Prints one JSON line: median/min step ms and peak RSS (MB)."""
import json
import os
import resource
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
from hash_weights import hash_uniform  # noqa: E402


def build_model(size, classes):
    """retinanet_resnet50_fpn's layout (FrozenBN, trainable_backbone_layers=3), random init, train mode."""
    backbone = _resnet_fpn_extractor(resnet50(weights=None, norm_layer=FrozenBatchNorm2d), 3, returned_layers=[2, 3, 4], extra_blocks=LastLevelP6P7(256, 256))
    return RetinaNet(backbone, classes, min_size=size, max_size=size).train()


def main():
    n, size, classes, threads, runs = (int(v) for v in sys.argv[1:6])
    boxes = json.loads(sys.argv[6])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if len(sys.argv) > 7:
        # A from-scratch GroupNorm model: retinanet-ts's config, built as bench scratch builds it.
        from scratch_torchvision import build
        model = build(json.loads(sys.argv[7]), classes).train()
    else:
        model = build_model(size, classes)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.001, momentum=0.9, weight_decay=1e-4)
    images = [torch.from_numpy(hash_uniform(f"train-image-{i}", 3 * size * size).astype(np.float32).reshape(3, size, size)) for i in range(n)]
    targets = [{"boxes": torch.tensor(b["boxes"], dtype=torch.float32).reshape(-1, 4), "labels": torch.tensor(b["labels"], dtype=torch.int64)} for b in boxes]
    times = []
    for i in range(runs + 2):
        t0 = time.perf_counter()
        losses = model(images, targets)
        loss = losses["classification"] + losses["bbox_regression"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 2:
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"timesMs": times, "medianMs": times[len(times) // 2], "minMs": times[0], "threads": threads, "peakRssMb": rss_mb, "loss": float(loss)}))


if __name__ == "__main__":
    main()
