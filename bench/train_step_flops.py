"""The arithmetic of one `retinanet bench train-step` step, counted by torch's FlopCounterMode
(torch >= 2) on the same model as bench/train_step_torchvision.py: retinanet_resnet50_fpn layout,
FrozenBatchNorm, trainable_backbone_layers=3, K classes, batch N of SIZE x SIZE.

    venv-torch2/bin/python3 bench/train_step_flops.py [N SIZE CLASSES]

Prints one JSON line: forward and backward GFLOP (a multiply-add counts 2) in total and per part
(backbone body, FPN, classification head, regression head). Divided by the machine's conv rate
(`retinanet bench engine`) it gives the step's floor: the time a step would take if every
convolution ran at that rate and nothing else took time (docs/performance.md)."""
import json
import os
import sys

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_compat import ensure_torchvision  # noqa: E402  (before torchvision: torch 2 + a CUDA torchvision wheel)

ensure_torchvision()
from torchvision.models import resnet50  # noqa: E402
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor  # noqa: E402
from torchvision.models.detection.retinanet import RetinaNet  # noqa: E402
from torchvision.ops.feature_pyramid_network import LastLevelP6P7  # noqa: E402
from torchvision.ops.misc import FrozenBatchNorm2d  # noqa: E402

PARTS = {"backbone.body": "backbone body (ResNet-50)", "backbone.fpn": "FPN", "head.classification_head": "classification head", "head.regression_head": "regression head"}


def part_flops(counter):
    """GFLOP per part from the counter's module hierarchy (names like RetinaNet.backbone.body)."""
    by_module = counter.get_flop_counts()
    out = {}
    for prefix, label in PARTS.items():
        key = "RetinaNet." + prefix
        out[label] = sum(by_module.get(key, {}).values()) / 1e9
    out["total"] = counter.get_total_flops() / 1e9
    return out


def main():
    n, size, classes = (int(v) for v in (sys.argv[1:4] if len(sys.argv) >= 4 else (2, 512, 3)))
    torch.manual_seed(0)
    backbone = _resnet_fpn_extractor(resnet50(weights=None, norm_layer=FrozenBatchNorm2d), 3, returned_layers=[2, 3, 4], extra_blocks=LastLevelP6P7(256, 256))
    model = RetinaNet(backbone, classes, min_size=size, max_size=size).train()
    images = [torch.rand(3, size, size) for _ in range(n)]
    targets = [{"boxes": torch.tensor([[40.0, 50.0, 200.0, 220.0], [300.0, 280.0, 380.0, 400.0]]), "labels": torch.tensor([1, 2])} for _ in range(n)]
    with FlopCounterMode(display=False) as fwd:
        losses = model(images, targets)
        loss = losses["classification"] + losses["bbox_regression"]
    with FlopCounterMode(display=False) as bwd:
        loss.backward()
    print(json.dumps({"batch": n, "size": size, "classes": classes, "torch": torch.__version__, "forward_gflop": part_flops(fwd), "backward_gflop": part_flops(bwd)}))


if __name__ == "__main__":
    main()
