"""torchvision side of `retinanet bench scratch` (bench/scratch.ts): trains torchvision's
RetinaNet (0.14 from Debian here; the torch 2.x images have 0.2x) from scratch with the recipe
retinanet-ts chose, for the same wall-clock budget, then writes COCO detections of the
held-out images.

Everything comes from a JSON spec written by bench/scratch.ts, so both sides read the same
annotations through the same reader and are scored on the same ids:
  config   retinanet-ts's RetinaNetConfig: backbone depth 18, baseWidth, norm ('frozen_bn' or
           'group_norm': torchvision's ResNet with norm_layer=GroupNorm, the groups of
           src/nn/layers.ts groupNormGroups), FPN channels and norm, P6 from C5, head convs and
           GroupNorm, anchor sizes, min/max size
  recipe   batch, lr, clip, flip, minSizes (scale jitter: torchvision's transform draws a short
           side per image from the tuple), seconds (the budget), threads, seed
  train    [{file, boxes: [[x1, y1, x2, y2]...], labels: [0-based]}]
  eval     [{file, id}] and categories [{id, name}] (label k -> categories[k].id)

The run's length follows the budget as `retinanet train --time-budget` does
(src/train/time_budget.ts): after each step the length is refitted as steps done plus the time
left over the median of the last 25 step times (the first, slower step left out); warmup is a
tenth of the length (at most 500), the x0.1 points 2/3 and 8/9 of it, frozen once the first one
is reached; the run stops when less than half a step of time is left.

    /usr/bin/python3 bench/scratch_torchvision.py SPEC.json OUT_DIR
"""
import functools
import json
import os
import random
import statistics
import sys
import time

import torch
from PIL import Image
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_compat import ensure_torchvision  # noqa: E402  (before torchvision: torch 2 + a CUDA torchvision wheel)

torchvision = ensure_torchvision()
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.retinanet import RetinaNet, RetinaNetHead
from torchvision.models.resnet import BasicBlock, ResNet
from torchvision.ops.feature_pyramid_network import LastLevelP6P7
from torchvision.ops.misc import FrozenBatchNorm2d
import torchvision.transforms.functional as TF


def gn_groups(c):
    """src/nn/layers.ts groupNormGroups: 32, never fewer than 2 channels per group."""
    g = min(32, max(1, c // 2))
    while c % g:
        g -= 1
    return g


def group_norm(c):
    return nn.GroupNorm(gn_groups(c), c)


class ResNet18(ResNet):
    """torchvision's ResNet-18 (same modules, names and init) at any stem / first-stage width."""

    def __init__(self, width, norm_layer):
        nn.Module.__init__(self)
        self._norm_layer = norm_layer
        self.inplanes, self.dilation, self.groups, self.base_width = width, 1, 1, 64
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(BasicBlock, width, 2)
        self.layer2 = self._make_layer(BasicBlock, 2 * width, 2, stride=2)
        self.layer3 = self._make_layer(BasicBlock, 4 * width, 2, stride=2)
        self.layer4 = self._make_layer(BasicBlock, 8 * width, 2, stride=2)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.GroupNorm):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


def build(cfg, num_classes):
    bb, fpn, head_cfg = cfg["backbone"], cfg["fpn"], cfg["head"]
    if bb["depth"] != 18:
        raise SystemExit(f"scratch_torchvision.py builds ResNet-18 only, got depth {bb['depth']}")
    w = bb["baseWidth"]
    body = ResNet18(w, group_norm if bb["norm"] == "group_norm" else FrozenBatchNorm2d)
    ch = fpn["channels"]
    c5 = 8 * w
    extra = LastLevelP6P7(c5 if fpn["p6From"] == "c5" else ch, ch)
    backbone = BackboneWithFPN(body, {"layer2": "0", "layer3": "1", "layer4": "2"}, [2 * w, 4 * w, 8 * w], ch, extra_blocks=extra, norm_layer=group_norm if fpn["norm"] == "group_norm" else None)
    sizes = tuple(tuple(s) for s in cfg["anchors"]["sizes"])
    ratios = tuple(tuple(r) for r in cfg["anchors"]["aspectRatios"])
    anchors = AnchorGenerator(sizes, ratios)
    a = anchors.num_anchors_per_location()[0]
    head = RetinaNetHead(ch, a, num_classes, norm_layer=functools.partial(nn.GroupNorm, 32) if head_cfg["groupNorm"] else None)
    for sub in (head.classification_head, head.regression_head):
        sub.conv = nn.Sequential(*list(sub.conv)[: head_cfg["convs"]])
    t = cfg["transform"]
    return RetinaNet(backbone, num_classes, min_size=t["minSize"], max_size=t["maxSize"], image_mean=t["mean"], image_std=t["std"], anchor_generator=anchors, head=head, detections_per_img=cfg["inference"]["detectionsPerImg"])


class Budget:
    """src/train/time_budget.ts: the run's length and schedule fitted to the measured step time."""

    def __init__(self, seconds, window=25):
        # Before a steady step is timed the schedule is that of an uncapped run (warmup 500), as
        # `retinanet train --time-budget` without --iters starts.
        self.seconds, self.window, self.durations = seconds, window, []
        self.length, self.schedule, self.frozen = 1, 1_000_000_000, False

    def steady(self):
        return len(self.durations) > 1

    def step_seconds(self):
        steady = self.durations[1:] if self.steady() else self.durations
        return statistics.median(steady[-self.window :])

    def refit(self, done, elapsed):
        if not self.steady():
            self.length = done + 1 if elapsed < self.seconds else max(done, 1)
        else:
            self.length = done + max(0, round((self.seconds - elapsed) / max(self.step_seconds(), 1e-9)))
            if not self.frozen:
                self.schedule = self.length
                if done >= (self.schedule * 2) // 3:
                    self.frozen = True

    def lr(self, base, it):
        n = self.schedule
        warmup = min(500, n // 10)
        f = 0.1 ** sum(it >= s for s in ((n * 2) // 3, (n * 8) // 9))
        if it < warmup:
            a = it / warmup
            f *= 0.001 * (1 - a) + a
        return base * f


def main():
    spec_file, out_dir = sys.argv[1], sys.argv[2]
    spec = json.load(open(spec_file))
    cfg, recipe, train, cats = spec["config"], spec["recipe"], spec["train"], spec["categories"]
    torch.set_num_threads(recipe["threads"])
    torch.manual_seed(recipe["seed"])
    random.seed(recipe["seed"])
    os.makedirs(out_dir, exist_ok=True)
    model = build(cfg, len(cats))
    if recipe.get("minSizes"):
        model.transform.min_size = tuple(recipe["minSizes"])
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=recipe["lr"], momentum=0.9, weight_decay=1e-4)

    images = {t["file"]: TF.to_tensor(Image.open(t["file"]).convert("RGB")) for t in train}
    budget = Budget(recipe["seconds"])
    order, log = [], []
    t0 = time.perf_counter()
    it = 0
    while it < budget.length:
        s = time.perf_counter()
        if len(order) < recipe["batch"]:
            order = list(range(len(train)))
            random.shuffle(order)
        batch = [train[order.pop()] for _ in range(recipe["batch"])]
        imgs, targets = [], []
        for t in batch:
            img = images[t["file"]]
            b = torch.tensor(t["boxes"], dtype=torch.float32).reshape(-1, 4)
            if recipe["flip"] and random.random() < 0.5:
                img = img.flip(-1)
                w = img.shape[-1]
                b = torch.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], 1)
            imgs.append(img)
            targets.append({"boxes": b, "labels": torch.tensor(t["labels"], dtype=torch.int64)})
        for g in opt.param_groups:
            g["lr"] = budget.lr(recipe["lr"], it)
        losses = model(imgs, targets)
        loss = losses["classification"] + losses["bbox_regression"]
        opt.zero_grad()
        loss.backward()
        if recipe.get("clip"):
            torch.nn.utils.clip_grad_norm_(params, recipe["clip"])
        opt.step()
        it += 1
        budget.durations.append(time.perf_counter() - s)
        elapsed = time.perf_counter() - t0
        budget.refit(it, elapsed)
        log.append({"iter": it - 1, "loss_cls": losses["classification"].item(), "loss_box": losses["bbox_regression"].item(), "lr": opt.param_groups[0]["lr"], "time": elapsed})
        if it % 50 == 1:
            print(json.dumps(log[-1]), file=sys.stderr, flush=True)
    train_s = time.perf_counter() - t0
    del images

    model.eval()
    dets = []
    with torch.no_grad():
        for im in spec["eval"]:
            out = model([TF.to_tensor(Image.open(im["file"]).convert("RGB"))])[0]
            for b, s, l in zip(out["boxes"].tolist(), out["scores"].tolist(), out["labels"].tolist()):
                dets.append({"image_id": im["id"], "category_id": cats[l]["id"], "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "score": s})
    json.dump(dets, open(os.path.join(out_dir, "detections.json"), "w"))
    json.dump(log, open(os.path.join(out_dir, "log.json"), "w"))
    print(json.dumps({"torchvision": torchvision.__version__, "torch": torch.__version__, "iters": it, "train_seconds": train_s, "detections": len(dets), "final_loss_cls": log[-1]["loss_cls"], "final_loss_box": log[-1]["loss_box"]}))


if __name__ == "__main__":
    main()
