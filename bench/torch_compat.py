"""Imported first by every *_torchvision.py benchmark script.

pip's torchvision 0.28 wheel is a CUDA build: on the CPU torch 2.13 its C++ extension does not
load, so the `torchvision::nms` operator is missing (torchvision's import then fails while
registering its meta kernels) and `torchvision.ops.nms` refuses to run. The model code itself is
pure PyTorch. `ensure_torchvision()` registers a small CPU `torchvision::nms` (greedy NMS in the
order of a stable descending sort of the scores, suppressing IoU > threshold, as torchvision's
C++ kernel does) before torchvision is imported, and tells torchvision its ops are there. With a
torchvision whose extension loads (Debian's 0.14), it does nothing.
"""
import sys
import types

import torch


def _nms_cpu(dets, scores, iou_threshold):
    if dets.numel() == 0:
        return torch.empty((0,), dtype=torch.long)
    x1, y1, x2, y2 = dets.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    order = torch.sort(scores, stable=True, descending=True).indices
    suppressed = torch.zeros(dets.shape[0], dtype=torch.bool)
    keep = []
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        xx1 = torch.maximum(x1[i], x1)
        yy1 = torch.maximum(y1[i], y1)
        xx2 = torch.minimum(x2[i], x2)
        yy2 = torch.minimum(y2[i], y2)
        inter = (xx2 - xx1).clamp(min=0) * (yy2 - yy1).clamp(min=0)
        iou = inter / (areas[i] + areas - inter)
        suppressed |= iou > iou_threshold
    return torch.tensor(keep, dtype=torch.long)


_library = None


def _forget_torchvision():
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]


def ensure_torchvision():
    """Makes `import torchvision` and `torchvision.ops.nms` work on this torch (see the module doc)."""
    global _library
    try:
        import torchvision  # its C++ ops load: Debian's 0.14, or a wheel built for this torch

        return torchvision
    except RuntimeError as e:  # "operator torchvision::... does not exist": the extension did not load
        if "torchvision::" not in str(e):
            raise
    _forget_torchvision()
    # The fake-tensor and autograd registrations need every C++ op; detection models need none of
    # them (they are for torch.compile and the roi ops' backward), so they are left out.
    for skipped in ("_meta_registrations", "_autograd_registrations"):
        sys.modules["torchvision." + skipped] = types.ModuleType("torchvision." + skipped)
    _library = torch.library.Library("torchvision", "DEF")
    _library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _library.impl("nms", _nms_cpu, "CPU")
    import torchvision
    import torchvision.extension

    torchvision.extension._has_ops = lambda: True
    return torchvision


def versions():
    """torch and torchvision versions, and whether torchvision's own C++ ops loaded."""
    tv = ensure_torchvision()
    return {"torch": torch.__version__, "torchvision": tv.__version__, "nms": "native" if _library is None else "python (registered here)"}


if __name__ == "__main__":
    import json

    print(json.dumps(versions()))
