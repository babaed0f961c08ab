"""torchvision side of the BCCD comparison (docs/results.md): the same recipe as
`retinanet train --config bench/bccd_config.json` — ResNet-18 (FrozenBatchNorm, all stages
trainable), FPN 128 channels with P6 from C5, two-conv GroupNorm heads, default anchors, short
side 480 / long side 640, SGD momentum 0.9, weight decay 1e-4, linear warmup, x0.1 at 2/3 and
8/9, gradient clipping, horizontal flips, from scratch — then detections on the test split as
COCO results (ids from a ground-truth JSON written by our reader, so both sides are scored by
the same evaluator).

    /usr/bin/python3 bench/bccd_torchvision.py BCCD_ROOT TEST_GT.json OUT_DIR ITERS [THREADS] [LR] [SEED]
"""
import functools
import json
import math
import os
import random
import sys
import time
import xml.etree.ElementTree as ET

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_compat import ensure_torchvision  # noqa: E402  (before torchvision: torch 2 + a CUDA torchvision wheel)

ensure_torchvision()
from torchvision.models import resnet18
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.retinanet import RetinaNet, RetinaNetHead
from torchvision.ops.feature_pyramid_network import LastLevelP6P7
from torchvision.ops.misc import FrozenBatchNorm2d
import torchvision.transforms.functional as TF


def read_voc(root, split, class_ids):
    ids = [l.strip() for l in open(os.path.join(root, "ImageSets", "Main", f"{split}.txt")) if l.strip()]
    items = []
    for i in ids:
        tree = ET.parse(os.path.join(root, "Annotations", f"{i}.xml"))
        boxes, labels = [], []
        for obj in tree.findall("object"):
            name = obj.find("name").text.strip()
            bb = obj.find("bndbox")
            x1, y1, x2, y2 = (float(bb.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
            if x2 > x1 and y2 > y1 and name in class_ids:
                boxes.append([x1, y1, x2, y2])
                labels.append(class_ids[name])
        items.append((os.path.join(root, "JPEGImages", f"{i}.jpg"), boxes, labels))
    return items


def main():
    root, gt_file, out_dir, iters = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    threads = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    lr = float(sys.argv[6]) if len(sys.argv) > 6 else 0.01
    seed = int(sys.argv[7]) if len(sys.argv) > 7 else 0
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    random.seed(seed)
    os.makedirs(out_dir, exist_ok=True)
    gt = json.load(open(gt_file))
    cats = sorted(gt["categories"], key=lambda c: c["id"])
    class_ids = {c["name"]: k for k, c in enumerate(cats)}
    train = read_voc(root, "train", class_ids)

    body = resnet18(weights=None, norm_layer=FrozenBatchNorm2d)
    backbone = BackboneWithFPN(body, {"layer2": "0", "layer3": "1", "layer4": "2"}, [128, 256, 512], 128, extra_blocks=LastLevelP6P7(512, 128))
    head = RetinaNetHead(128, 9, len(cats), norm_layer=functools.partial(torch.nn.GroupNorm, 32))
    head.classification_head.conv = torch.nn.Sequential(*list(head.classification_head.conv)[:2])
    head.regression_head.conv = torch.nn.Sequential(*list(head.regression_head.conv)[:2])
    model = RetinaNet(backbone, len(cats), min_size=480, max_size=640, head=head).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=1e-4)
    warmup, steps = min(100, iters // 10), (iters * 2 // 3, iters * 8 // 9)

    def lr_at(it):
        f = 0.1 ** sum(it >= s for s in steps)
        if it < warmup:
            a = it / warmup
            f *= 0.001 * (1 - a) + a
        return lr * f

    images = {p: TF.to_tensor(Image.open(p).convert("RGB")) for p, _, _ in train}
    order, log = [], []
    t0 = time.perf_counter()
    for it in range(iters):
        if not order:
            order = list(range(len(train)))
            random.shuffle(order)
        batch = [train[order.pop()] for _ in range(2) if order] or [train[0]]
        imgs, targets = [], []
        for path, boxes, labels in batch:
            img = images[path]
            b = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
            if random.random() < 0.5:
                img = img.flip(-1)
                w = img.shape[-1]
                b = torch.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], 1)
            imgs.append(img)
            targets.append({"boxes": b, "labels": torch.tensor(labels, dtype=torch.int64)})
        for g in opt.param_groups:
            g["lr"] = lr_at(it)
        losses = model(imgs, targets)
        loss = losses["classification"] + losses["bbox_regression"]
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        log.append({"iter": it, "loss_cls": float(losses["classification"]), "loss_box": float(losses["bbox_regression"]), "time": time.perf_counter() - t0})
        if it % 50 == 0:
            print(json.dumps(log[-1]), file=sys.stderr, flush=True)
    train_s = time.perf_counter() - t0

    model.eval()
    by_name = {im["file_name"]: im["id"] for im in gt["images"]}
    dets = []
    with torch.no_grad():
        for im in gt["images"]:
            path = os.path.join(root, "JPEGImages", os.path.basename(im["file_name"]))
            out = model([TF.to_tensor(Image.open(path).convert("RGB"))])[0]
            for b, s, l in zip(out["boxes"].tolist(), out["scores"].tolist(), out["labels"].tolist()):
                dets.append({"image_id": im["id"], "category_id": cats[l]["id"], "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "score": s})
    json.dump(dets, open(os.path.join(out_dir, "detections.json"), "w"))
    json.dump(log, open(os.path.join(out_dir, "log.json"), "w"))
    print(json.dumps({"iters": iters, "train_seconds": train_s, "detections": len(dets), "final_loss_cls": log[-1]["loss_cls"], "final_loss_box": log[-1]["loss_box"]}))


if __name__ == "__main__":
    main()
