/**
 * Training past one machine through torchvision: the files of a PyTorch DistributedDataParallel
 * run of a RetinaNet config on a dataset. `torchTrainingFiles` returns, for a folder:
 *
 * - `train_torchvision.py`: builds torchvision's RetinaNet for `model.json`'s config (ResNet
 *   with FrozenBatchNorm2d, FPN with LastLevelP6P7 from P5 or C5, the head's conv count and
 *   GroupNorm, anchors, matcher thresholds, focal loss alpha/gamma, box loss, transform sizes)
 *   and trains it with `recipe.json`'s recipe (SGD, linear warmup, x0.1 steps, flips, scale
 *   jitter, clipping) on `dataset.json`, under `torchrun` (gloo on CPU, NCCL on GPUs). Rank 0
 *   saves `model.safetensors` with torchvision's state_dict names and a copy of `model.json`
 *   beside it: `retinanet detect --weights OUT/model.safetensors` loads it unchanged.
 * - `model.json`: the sidecar (config, class names, category ids) of the weights it saves.
 * - `recipe.json`, `dataset.json` (images as absolute paths, xyxy boxes in pixels, 0-based labels;
 *   crowd boxes left out, as in `retinanet train`).
 *
 * Weights travel both ways with no conversion: this project's safetensors use torchvision's
 * names, so `--init` starts the PyTorch run from them, and the PyTorch run's output loads here.
 * The script needs only torch and torchvision (safetensors are read and written by the script).
 */
import { InputError } from '../core/errors.js';
import type { DetectionDataset } from '../data/types.js';
import { type RetinaNetConfig, validateConfig } from '../model/config.js';
import type { TrainRecipe } from './recipe.js';

/** How long the PyTorch run is, and what it starts from. */
export interface TorchRunOptions {
  /** Iterations (global steps); overrides `epochs`. */
  iters?: number;
  /** Epochs over the dataset (default 12, as `retinanet train`). */
  epochs?: number;
  seed: number;
  /** Learning rate given by the user; otherwise 0.01 x global batch / 16 at run time (global batch = batch x processes). */
  lr?: number;
  /** Weights to start from (absolute path; safetensors or .pth with torchvision names). */
  init?: string;
  /** COCO category id per label, for the sidecar. */
  categoryIds: readonly number[];
}

/**
 * Throws InputError when torchvision's RetinaNet cannot express `cfg`: a ResNet stem other than
 * 64 channels (torchvision's is fixed), or the FL* loss (not in torchvision).
 */
export function checkTorchvisionConfig(cfg: RetinaNetConfig): void {
  validateConfig(cfg);
  if (cfg.backbone.baseWidth !== 64) throw new InputError(`config: backbone.baseWidth ${cfg.backbone.baseWidth} has no torchvision equivalent (its ResNets are 64 wide at the stem); use 64 to train with torchvision`);
  if (cfg.loss.classification === 'focal-star') throw new InputError("config: loss.classification 'focal-star' (FL*) is not in torchvision; use 'focal' or 'ce' to train with torchvision");
}

/** The files of a torchvision DDP run, by name (see the module comment). */
export function torchTrainingFiles(cfg: RetinaNetConfig, recipe: TrainRecipe, dataset: DetectionDataset, run: TorchRunOptions): Record<string, string> {
  checkTorchvisionConfig(cfg);
  if (cfg.numClasses < dataset.classNames.length) throw new InputError(`config: numClasses ${cfg.numClasses} is smaller than the dataset's ${dataset.classNames.length} classes`);
  const images = dataset.images.map((im) => {
    const boxes: number[][] = [];
    const labels: number[] = [];
    for (let k = 0; k < im.labels.length; k++) {
      if (im.crowd[k]) continue;
      boxes.push([im.boxes[4 * k]!, im.boxes[4 * k + 1]!, im.boxes[4 * k + 2]!, im.boxes[4 * k + 3]!]);
      labels.push(im.labels[k]!);
    }
    return { id: im.id, file: im.file, boxes, labels };
  });
  const sidecar = { config: cfg, classNames: cfg.classNames ?? dataset.classNames, categoryIds: [...run.categoryIds], trainedWith: 'torchvision (retinanet export-torch)' };
  const recipeJson = {
    batchSize: recipe.batchSize,
    lr: run.lr ?? null,
    momentum: recipe.momentum,
    weightDecay: recipe.weightDecay,
    warmupIters: recipe.warmupIters ?? null,
    warmupFactor: 0.001,
    steps: recipe.steps ?? null,
    clipGradNorm: recipe.clipGradNorm ?? null,
    flip: recipe.flip,
    minSizes: recipe.minSizes ?? null,
    iters: run.iters ?? null,
    epochs: run.iters === undefined ? (run.epochs ?? 12) : null,
    seed: run.seed,
    init: run.init ?? null,
  };
  return {
    'train_torchvision.py': TRAIN_SCRIPT,
    'model.json': JSON.stringify(sidecar, null, 2) + '\n',
    'recipe.json': JSON.stringify(recipeJson, null, 2) + '\n',
    'dataset.json': JSON.stringify({ classNames: dataset.classNames, categoryIds: dataset.categoryIds, images }) + '\n',
  };
}

/** The generic training script; everything specific to a run is in the JSON files beside it. */
const TRAIN_SCRIPT = String.raw`#!/usr/bin/env python3
"""RetinaNet training with torchvision and DistributedDataParallel, written by 'retinanet export-torch'.

The model is model.json's config built from torchvision's parts, the recipe is recipe.json's,
the data dataset.json's (all beside this file). Run on one machine:

    torchrun --nproc_per_node 8 train_torchvision.py                  # 8 GPUs (NCCL)
    torchrun --nproc_per_node 2 train_torchvision.py --device cpu     # CPU processes (gloo)

and on several: torchrun --nnodes N --node_rank R --master_addr HOST --master_port 29500 ...
Rank 0 writes OUT/model.safetensors (torchvision state_dict names) and OUT/model.json, which
'retinanet detect --weights OUT/model.safetensors' loads unchanged. Needs torch and torchvision.
"""
import argparse
import json
import math
import os
import random
import struct
import time
from functools import partial

import sys
import types

import torch
import torch.distributed as dist


def _nms_cpu(dets, scores, iou_threshold):
    """Greedy NMS (stable descending score order, IoU > threshold suppressed), as torchvision's kernel."""
    if dets.numel() == 0:
        return torch.empty((0,), dtype=torch.long)
    x1, y1, x2, y2 = dets.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    suppressed = torch.zeros(dets.shape[0], dtype=torch.bool)
    keep = []
    for i in torch.sort(scores, stable=True, descending=True).indices.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        inter = (torch.minimum(x2[i], x2) - torch.maximum(x1[i], x1)).clamp(min=0) * (torch.minimum(y2[i], y2) - torch.maximum(y1[i], y1)).clamp(min=0)
        suppressed |= inter / (areas[i] + areas - inter) > iou_threshold
    return torch.tensor(keep, dtype=torch.long)


def _import_torchvision():
    """torchvision; when its C++ extension does not load (a CUDA torchvision wheel on a CPU torch),
    with a Python CPU nms registered instead (training needs no other torchvision op)."""
    try:
        import torchvision

        return torchvision, None
    except RuntimeError as e:
        if "torchvision::" not in str(e):
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    for skipped in ("_meta_registrations", "_autograd_registrations"):
        sys.modules["torchvision." + skipped] = types.ModuleType("torchvision." + skipped)
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.impl("nms", _nms_cpu, "CPU")
    import torchvision
    import torchvision.extension

    torchvision.extension._has_ops = lambda: True
    return torchvision, lib


torchvision, _NMS_LIBRARY = _import_torchvision()
from PIL import Image, ImageOps
from torchvision.models import resnet
from torchvision.models.detection import RetinaNet
from torchvision.models.detection import retinanet as tv_retinanet
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.ops.feature_pyramid_network import LastLevelP6P7
from torchvision.ops.misc import Conv2dNormActivation, FrozenBatchNorm2d

HERE = os.path.dirname(os.path.abspath(__file__))


def read_json(name):
    with open(os.path.join(HERE, name)) as f:
        return json.load(f)


def build_model(cfg):
    """torchvision's RetinaNet for a retinanet-ts config (state_dict names as torchvision's)."""
    bb = cfg["backbone"]
    body = getattr(resnet, "resnet%d" % bb["depth"])(weights=None, norm_layer=partial(FrozenBatchNorm2d, eps=bb["bnEps"]))
    train_layers = ["layer4", "layer3", "layer2", "layer1", "conv1"][: bb["trainableLayers"]]
    if bb["trainableLayers"] == 5:
        train_layers.append("bn1")
    for name, p in body.named_parameters():
        if all(not name.startswith(layer) for layer in train_layers):
            p.requires_grad_(False)
    c5 = body.inplanes  # 2048 (ResNet-50/101) or 512 (ResNet-18/34)
    in_channels = [c5 // 4, c5 // 2, c5]
    ch = cfg["fpn"]["channels"]
    extra = LastLevelP6P7(c5 if cfg["fpn"]["p6From"] == "c5" else ch, ch)
    extra.use_P5 = cfg["fpn"]["p6From"] == "p5"
    backbone = BackboneWithFPN(body, {"layer2": "0", "layer3": "1", "layer4": "2"}, in_channels, ch, extra_blocks=extra)

    anchors = cfg["anchors"]
    generator = AnchorGenerator(tuple(tuple(s) for s in anchors["sizes"]), tuple(tuple(r) for r in anchors["aspectRatios"]))
    num_anchors = generator.num_anchors_per_location()[0]
    norm = partial(torch.nn.GroupNorm, 32) if cfg["head"]["groupNorm"] else None
    k = cfg["numClasses"]
    head = RetinaNetHead(ch, num_anchors, k, norm_layer=norm)
    for sub in (head.classification_head, head.regression_head):
        sub.conv = torch.nn.Sequential(*[Conv2dNormActivation(ch, ch, norm_layer=norm) for _ in range(cfg["head"]["convs"])])
        for m in sub.conv.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.normal_(m.weight, std=0.01)
                if m.bias is not None:
                    torch.nn.init.constant_(m.bias, 0)
    p = cfg["head"]["priorProbability"]
    torch.nn.init.constant_(head.classification_head.cls_logits.bias, -math.log((1 - p) / p))
    head.regression_head._loss_type = cfg["loss"]["box"]

    t, inf, loss = cfg["transform"], cfg["inference"], cfg["loss"]
    model = RetinaNet(
        backbone, k, min_size=t["minSize"], max_size=t["maxSize"], image_mean=t["mean"], image_std=t["std"],
        anchor_generator=generator, head=head, score_thresh=inf["scoreThresh"], nms_thresh=inf["nmsThresh"],
        detections_per_img=inf["detectionsPerImg"], fg_iou_thresh=loss["fgIouThresh"], bg_iou_thresh=loss["bgIouThresh"],
        topk_candidates=inf["topkCandidates"],
    )
    # The classification loss: focal with the config's alpha and gamma ('ce' is gamma 0).
    gamma = 0.0 if loss["classification"] == "ce" else loss["gamma"]
    tv_retinanet.sigmoid_focal_loss = partial(torchvision.ops.sigmoid_focal_loss, alpha=loss["alpha"], gamma=gamma)
    return model


SAFETENSORS_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64, "I64": torch.int64}


def read_weights(path):
    """A state_dict from safetensors (read here, no extra package) or a PyTorch .pth."""
    if not path.endswith(".safetensors"):
        sd = torch.load(path, map_location="cpu", weights_only=True)
        return sd.get("model", sd) if isinstance(sd, dict) else sd
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:e]), dtype=SAFETENSORS_DTYPES[info["dtype"]]) if e > b else torch.empty(0, dtype=SAFETENSORS_DTYPES[info["dtype"]])
        out[name] = t.reshape(info["shape"]).clone()
    return out


def write_safetensors(path, state, metadata):
    """state_dict -> safetensors (float32), written atomically."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, t in state.items():
        b = t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def load_init(model, path, log):
    """Starts from weights with torchvision names; tensors of another shape (a new class count) keep their init."""
    state = read_weights(path)
    own = model.state_dict()
    fit = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(k for k in state if k not in fit)
    missing = sorted(k for k in own if k not in fit and not k.endswith("num_batches_tracked"))
    model.load_state_dict(fit, strict=False)
    log("init from %s: %d tensors loaded, %d skipped (%s), %d kept their initialisation (%s)" % (path, len(fit), len(skipped), ", ".join(skipped[:4]), len(missing), ", ".join(missing[:4])))


class Manifest(torch.utils.data.Dataset):
    def __init__(self, manifest, flip):
        self.images = manifest["images"]
        self.flip = flip

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        im = self.images[i]
        # Pillow (a torchvision dependency), EXIF orientation applied as retinanet-ts applies it.
        with Image.open(im["file"]) as pil:
            rgb = ImageOps.exif_transpose(pil).convert("RGB")
            img = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8).reshape(rgb.height, rgb.width, 3).permute(2, 0, 1).float() / 255
        boxes = torch.tensor(im["boxes"], dtype=torch.float32).reshape(-1, 4)
        labels = torch.tensor(im["labels"], dtype=torch.int64)
        if self.flip and random.random() < 0.5:
            img = img.flip(-1)
            w = img.shape[-1]
            boxes = torch.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], dim=1)
        return img, {"boxes": boxes, "labels": labels, "image_id": im["id"]}


def collate(batch):
    return tuple(zip(*batch))


def main():
    ap = argparse.ArgumentParser(description="RetinaNet training with torchvision + DDP (written by retinanet export-torch)")
    ap.add_argument("--out", default=os.path.join(HERE, "out"), help="output folder (default: out/ beside this script)")
    ap.add_argument("--iters", type=int, help="global steps (default: recipe.json)")
    ap.add_argument("--batch", type=int, help="images per process and step (default: recipe.json)")
    ap.add_argument("--lr", type=float, help="learning rate (default: recipe.json, else 0.01 x global batch / 16)")
    ap.add_argument("--init", help="start from these weights, safetensors or .pth with torchvision names (default: recipe.json)")
    ap.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when available")
    ap.add_argument("--workers", type=int, default=2, help="data loader processes per training process")
    ap.add_argument("--log-every", type=int, default=20)
    args = ap.parse_args()

    sidecar, recipe, manifest = read_json("model.json"), read_json("recipe.json"), read_json("dataset.json")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    # Under torchrun (WORLD_SIZE set) always DistributedDataParallel, also with one process.
    distributed = "WORLD_SIZE" in os.environ
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = 0
    if distributed:
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
        rank = dist.get_rank()
    if device == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))

    def log(msg):
        if rank == 0:
            print(msg, flush=True)

    seed = recipe["seed"]
    torch.manual_seed(seed)
    random.seed(seed + rank)
    cfg = dict(sidecar["config"])
    if recipe["minSizes"]:
        cfg["transform"] = dict(cfg["transform"], minSize=tuple(recipe["minSizes"]))
    model = build_model(cfg)
    init = args.init or recipe["init"]
    if init:
        load_init(model, init, log)
    model.to(device)
    ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[torch.cuda.current_device()] if device == "cuda" else None) if distributed else model

    data = Manifest(manifest, recipe["flip"])
    batch = args.batch or recipe["batchSize"]
    sampler = torch.utils.data.distributed.DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=len(data) >= world) if distributed else torch.utils.data.RandomSampler(data)
    loader = torch.utils.data.DataLoader(data, batch_size=batch, sampler=sampler, num_workers=args.workers, collate_fn=collate, drop_last=len(data) >= batch * world)
    per_epoch = max(1, len(loader))
    iters = args.iters if args.iters is not None else recipe["iters"] if recipe["iters"] is not None else max(1, round(recipe["epochs"] * per_epoch))
    lr = args.lr or recipe["lr"] or 0.01 * batch * world / 16
    warmup = recipe["warmupIters"] if recipe["warmupIters"] is not None else min(500, iters // 10)
    steps = recipe["steps"] or [iters * 2 // 3, iters * 8 // 9]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, momentum=recipe["momentum"], weight_decay=recipe["weightDecay"])

    def factor(it):
        f = 0.1 ** sum(1 for s in steps if it >= s)
        if it < warmup:
            a = it / warmup
            f *= recipe["warmupFactor"] * (1 - a) + a
        return f

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    log("training %s (%d classes) on %d images: %d iterations of %d x %d process(es) on %s%s, lr %g" % (cfg["name"], cfg["numClasses"], len(data), iters, batch, world, device, " (DDP, %s)" % dist.get_backend() if distributed else "", lr))
    ddp.train()
    it, epoch, t0 = 0, 0, time.time()
    while it < iters:
        if distributed:
            sampler.set_epoch(epoch)
        for images, targets in loader:
            if it >= iters:
                break
            images = [i.to(device) for i in images]
            targets = [{k: (v.to(device) if torch.is_tensor(v) else v) for k, v in t.items()} for t in targets]
            losses = ddp(images, targets)
            loss = sum(losses.values())
            opt.zero_grad()
            loss.backward()
            if recipe["clipGradNorm"]:
                torch.nn.utils.clip_grad_norm_(params, recipe["clipGradNorm"])
            opt.step()
            sched.step()
            it += 1
            if it % args.log_every == 0 or it == iters:
                log("iter %d/%d loss %.4f (%s) lr %.2e %.2f s/iter" % (it, iters, loss.item(), ", ".join("%s %.4f" % (k, v.item()) for k, v in losses.items()), opt.param_groups[0]["lr"], (time.time() - t0) / it))
        epoch += 1
    if rank == 0:
        os.makedirs(args.out, exist_ok=True)
        state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
        target = os.path.join(args.out, "model.safetensors")
        write_safetensors(target, state, {"arch": sidecar["config"]["name"], "num_classes": str(sidecar["config"]["numClasses"])})
        with open(os.path.join(args.out, "model.json"), "w") as f:
            json.dump(dict(sidecar, iteration=iters, processes=world), f, indent=2)
        log("saved %s (+ model.json): retinanet detect --weights %s" % (target, target))
    if distributed:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
`;
