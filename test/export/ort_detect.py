"""Runs a model exported by `retinanet export` with Python's onnxruntime (for
test/export/python_ort.test.ts): no preprocessing here, the model takes the uint8 image as is.

usage: python ort_detect.py MODEL.onnx MANIFEST.json OUT.json
MANIFEST: [{"file": raw RGB bytes, "height": H, "width": W}, ...]
"""
import json
import sys

import numpy as np
import onnxruntime as ort

model, manifest, out = sys.argv[1:4]
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
meta = session.get_modelmeta().custom_metadata_map
results = []
with open(manifest) as f:
    items = json.load(f)
for item in items:
    image = np.fromfile(item["file"], dtype=np.uint8).reshape(item["height"], item["width"], 3)
    boxes, scores, labels = session.run(["boxes", "scores", "labels"], {"image": image})
    assert boxes.dtype == np.float32 and scores.dtype == np.float32 and labels.dtype == np.int64
    results.append({"boxes": boxes.reshape(-1).tolist(), "scores": scores.tolist(), "labels": labels.tolist()})
with open(out, "w") as f:
    json.dump({"onnxruntime": ort.__version__, "class_names": json.loads(meta["class_names"]), "results": results}, f)
