"""The arithmetic of one `retinanet bench train-step` step, counted by torch's FlopCounterMode
(torch >= 2) on the same model as bench/train_step_torchvision.py: retinanet_resnet50_fpn layout,
FrozenBatchNorm, trainable_backbone_layers=3, K classes, batch N of SIZE x SIZE.

    venv-torch2/bin/python3 bench/train_step_flops.py [N SIZE CLASSES]

Prints one JSON line: forward GFLOP (a multiply-add counts 2) per part and in total, backward GFLOP in total
(torch attributes only the forward to modules: backbone body, FPN, heads). Divided by the conv rate
(`retinanet bench engine`) it gives the step's floor: the time a step would take if every
convolution ran at that rate and nothing else took time (docs/performance.md)."""
import json
import os
import sys

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_step_torchvision import build_model  # noqa: E402  (imports torch_compat before torchvision)

PARTS = {"backbone.body": "backbone body (ResNet-50)", "backbone.fpn": "FPN", "head.classification_head": "classification head", "head.regression_head": "regression head"}


def part_flops(counter):
    """GFLOP per part from the counter's module hierarchy (names like RetinaNet.backbone.body).
    Only the forward pass is attributed to modules; backward has its total alone."""
    by_module = counter.get_flop_counts()
    out = {label: sum(by_module.get("RetinaNet." + prefix, {}).values()) / 1e9 for prefix, label in PARTS.items()}
    out["total"] = counter.get_total_flops() / 1e9
    return out


def main():
    n, size, classes = (int(v) for v in (sys.argv[1:4] if len(sys.argv) >= 4 else (2, 512, 3)))
    torch.manual_seed(0)
    model = build_model(size, classes)
    images = [torch.rand(3, size, size) for _ in range(n)]
    targets = [{"boxes": torch.tensor([[40.0, 50.0, 200.0, 220.0], [300.0, 280.0, 380.0, 400.0]]), "labels": torch.tensor([1, 2])} for _ in range(n)]
    with FlopCounterMode(display=False) as fwd:
        losses = model(images, targets)
        loss = losses["classification"] + losses["bbox_regression"]
    with FlopCounterMode(display=False) as bwd:
        loss.backward()
    print(json.dumps({"batch": n, "size": size, "classes": classes, "torch": torch.__version__, "forward_gflop": part_flops(fwd), "backward_gflop": bwd.get_total_flops() / 1e9}))


if __name__ == "__main__":
    main()
