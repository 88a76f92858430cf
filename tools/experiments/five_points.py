"""Issue 35's 5-point comparison on faces5's test faces (MTFL, 2,995 80x80 crops), in one run: NME over the
distance between the eye centres, failure rate at 10%.

- a 5-point model (DCNN: ``runs/dcnn5/export/dcnn5.onnx``) on crops framed from the ground-truth points, the
  protocol it was trained with;
- the 5 points of facemark's detectors (``facemark``, ``mtcnn``) on the photo, the detection nearest the truth;
- 68-point models through the Landmarker (the ``facemark`` detector's boxes), converted to the five points
  (eye centres = mean of each eye's six points).
A face a detector misses counts as a failure (its error is infinite, so the mean is over the faces found and
the failure rate over all).
    python tools/experiments/five_points.py --five runs/dcnn5/export/dcnn5.onnx --models hrnet68_pose hrnet68 \
        [--limit N] > docs/runs/five_points.jsonl"""
import argparse
import json
import sys

import numpy as np

sys.path.insert(0, "tools")
from _data import DATA  # noqa: E402

from facemark.core.schemes import convert  # noqa: E402
from facemark.evaluation.protocols import predict_with_landmark_boxes  # noqa: E402
from facemark.inference.detectors import build_detector  # noqa: E402
from facemark.inference.landmarker import Landmarker  # noqa: E402
from facemark.inference.runtime import OnnxLandmarkModel  # noqa: E402
from facemark.io.datasets import read_mtfl  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--five", nargs="*", default=[], help="5-point models (onnx with card)")
p.add_argument("--models", nargs="*", default=[], help="68-point models, through the Landmarker")
p.add_argument("--detectors", nargs="*", default=["facemark", "mtcnn"])
p.add_argument("--limit", type=int, default=0)
a = p.parse_args()
faces = read_mtfl(DATA / "faces5" / "new_testing.txt", DATA / "faces5")
faces = faces[:a.limit] if a.limit else faces
gt = np.array([s.landmarks[:, :2] for s in faces])
iod = np.linalg.norm(gt[:, 0] - gt[:, 1], axis=1)
images = [s.load_image() for s in faces]


def report(name: str, protocol: str, pred: list) -> None:
    err = np.array([np.inf if q is None else np.linalg.norm(q - g, axis=1).mean() / d
                    for q, g, d in zip(pred, gt, iod)])
    found = np.isfinite(err)
    print(json.dumps({"model": name, "protocol": protocol, "n": len(err), "found": int(found.sum()),
                      "nme": float(err[found].mean()), "fr": float(np.mean(err > 0.1)), "norm": "eye centres",
                      "threshold": 0.1}), flush=True)


def nearest(candidates, truth):
    if candidates is None or len(candidates) == 0:
        return None
    centre = truth.mean(axis=0)
    return min(candidates, key=lambda c: np.linalg.norm(np.asarray(c).mean(axis=0) - centre))


for path in a.five:
    net = OnnxLandmarkModel(path, threads=1)
    report(net.card.name, "crops from the ground-truth points", list(predict_with_landmark_boxes(net, faces)))
for name in a.detectors:
    det = build_detector(name)
    report(f"detector {name}", "detector on the photo", [nearest(det.detect_points(im)[2], g)
                                                       for im, g in zip(images, gt)])
for name in a.models:
    lm = Landmarker(name, "facemark", threads=1)
    report(name, "Landmarker (facemark detector), 68 -> 5 points",
           [nearest([convert(f.landmarks[:, :2], "five") for f in lm.detect(im)], g) for im, g in zip(images, gt)])
