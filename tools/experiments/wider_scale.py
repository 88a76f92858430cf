"""Issue 37: does input scale alone recover WIDER's small faces? facemark's detector on detect/wider_val (a
validation set) with each photo upscaled 1x, 1.5x and 2x before detection, at score thresholds 0.3-0.5: recall
at IoU 0.5 of faces >= 20 px (sqrt(w * h)), by size band, and false boxes per photo.

    python tools/experiments/wider_scale.py [--weights runs/x/export/facemark_det.onnx] > docs/runs/wider_scale.jsonl
"""
from __future__ import annotations

import argparse
import json

import cv2
import numpy as np

from facemark.evaluation.detection import evaluate_detector
from facemark.inference.detectors import SingleShotDetector
from facemark.io.boxes import read_boxes

from _data import DATA


class Upscaled(SingleShotDetector):
    """The detector on the photo enlarged ``up`` times (boxes and points mapped back)."""

    def __init__(self, up: float, **kwargs) -> None:
        super().__init__(max_side=int(640 * up), **kwargs)
        self.up = up

    def detect_points(self, image: np.ndarray):
        big = cv2.resize(image, None, fx=self.up, fy=self.up, interpolation=cv2.INTER_LINEAR) if self.up != 1 else image
        boxes, scores, points = super().detect_points(big)
        return boxes / self.up, scores, points / self.up


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", help="detector .onnx with its card (default: the shipped one)")
    a = ap.parse_args()
    photos = read_boxes(DATA / "detect" / "wider_val")
    for up in (1.0, 1.5, 2.0):
        for score in (0.3, 0.4, 0.5):
            r = evaluate_detector(Upscaled(up, weights=a.weights, min_score=score), photos, size="area")
            print(json.dumps({"upscale": up, "min_score": score, "recall": round(r["recall"], 3),
                              "false_per_photo": round(r["false_per_photo"], 2), "ms_per_photo": round(r["ms_per_photo"], 1),
                              "recall_by_size": {k: round(v["recall"], 2) for k, v in r["recall_by_size"].items()}}),
                  flush=True)


if __name__ == "__main__":
    main()
