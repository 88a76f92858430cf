"""The zoo's second validation set (issue 36): NME (normalised by the landmarks' box, as AFLW2000-3D is reported)
of each model on the even half of faces3d/aflw2000 (the odd half stays held out), crops from the ground-truth
landmarks' box, fp32, with the model's own decoder or the ones named.
    python tools/experiments/zoo_aflw.py MODEL.onnx ... [--decoders argmax soft_argmax decimal] > docs/runs/zoo36_aflw.jsonl"""
import argparse
import json
import sys

import numpy as np

sys.path.insert(0, "tools")
from _data import aflw2000_half  # noqa: E402

from facemark.core.codecs import decoders_of  # noqa: E402
from facemark.evaluation.metrics import nme, summary  # noqa: E402
from facemark.evaluation.protocols import predict_with_landmark_boxes  # noqa: E402
from facemark.inference.runtime import OnnxLandmarkModel, load_card  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("models", nargs="+")
p.add_argument("--decoders", nargs="*", default=[])
a = p.parse_args()
faces = aflw2000_half("even")
gt = np.array([s.landmarks[:, :2] for s in faces])
for model in a.models:
    offered = decoders_of(load_card(model)[0].codec["name"])
    for decoder in [d for d in a.decoders if d in offered] or [None]:
        net = OnnxLandmarkModel(model, threads=2, decoder=decoder, precision="fp32")
        errors = nme(predict_with_landmark_boxes(net, faces), gt, "box")
        print(json.dumps({"model": net.card.name, "decoder": decoder or net.card.codec.get("decoder"),
                          "data": "aflw2000 even half", **summary(errors, "box")}), flush=True)
