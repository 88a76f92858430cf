"""Score shape-model fit settings (``facemark.core.shape3d.FitSettings``) on a model's landmarks: head-pose MAE
on the model-building half of AFLW2000-3D (the half ``tools/build_shape_model.py`` builds from; the other half
is printed for reference, not for choosing), faces cropped from their annotated landmarks' box.

    python tools/experiments/pose_settings.py --model runs/hrnet68_lp/export/hrnet68_lp.onnx
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from facemark.core.pose import euler_from_rotation
from facemark.core.shape3d import FitSettings, fit_shape
from facemark.evaluation.protocols import predict_with_landmark_boxes
from facemark.inference.runtime import OnnxLandmarkModel
from facemark.io.datasets import FaceSample, read_aflw2000

from _data import DATA

GRID = [(w, n) for w in (0.3, 0.1, 0.05, 0.03, 0.01) for n in (0.015, 0.05, 0.2, 1.0, 3.0, 10.0)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--aflw2000", default=str(DATA / "faces3d" / "aflw2000"))
    a = ap.parse_args()
    faces = sorted(read_aflw2000(a.aflw2000), key=lambda s: s.image.name)
    faces = [s for s in faces if max(abs(v) for v in s.pose.values()) <= 99]
    pred = predict_with_landmark_boxes(OnnxLandmarkModel(a.model, precision="fp32"),
                                       [FaceSample(s.image, s.landmarks) for s in faces])
    want = np.array([[s.pose["yaw"], s.pose["pitch"], s.pose["roll"]] for s in faces])
    halves = {"build": np.arange(len(faces)) % 2 == 0, "validation": np.arange(len(faces)) % 2 == 1}
    for w, n in GRID:
        rot = fit_shape(pred, FitSettings(w, n)).rotation
        err = np.abs(np.array([euler_from_rotation(r) for r in rot]) - want).mean(axis=1)
        print(json.dumps({"outline_weight": w, "noise": n, **{k: round(float(err[m].mean()), 3) for k, m in halves.items()}}))


if __name__ == "__main__":
    main()
