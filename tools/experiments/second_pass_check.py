"""The validation check of the detector's second pass (docs/detection.md, **Small faces in large photos**):
roboflow_faces/valid's 640 px photos put in the situation of a 1024 px photo at the default 640 px (the same
ratio, 1.6): a first pass at 400 px and a second at the photos' own size, for each ``fine_below``, against one
pass at 400 px and, for scale, one pass at 640 px; ``facemark`` (0.5) and ``facemark_any`` (0.6, NMS IoU 0.3).
Then ``facemark``'s second pass with its own threshold (``fine_score``) against one pass at lower thresholds.

    python tools/experiments/second_pass_check.py [--weights X.onnx] > docs/runs/second_pass_check.jsonl
"""
from __future__ import annotations

import argparse
import json
import sys

from facemark.evaluation.detection import evaluate_detector
from facemark.inference.detectors import AnyAngleDetector, SingleShotDetector
from facemark.io.boxes import read_yolo

from _data import DATA

KEYS = ("recall", "recall_iou30", "ap", "false_per_photo", "ms_per_photo")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", help="detector .onnx (with its .json card); default: the shipped one")
    a = ap.parse_args()
    photos = read_yolo(DATA / "detect/roboflow_faces/valid")
    for cls in (SingleShotDetector, AnyAngleDetector):
        for below in (0, 48, 64, 96):
            det = cls(a.weights, max_side=400, fine_side=640, fine_below=below, fine_score=0)
            r = evaluate_detector(det, photos)
            print(json.dumps({"detector": cls.name, "max_side": 400, "fine_side": 640, "fine_below": below,
                              **{k: r[k] for k in KEYS}}), flush=True)
        r = evaluate_detector(cls(a.weights, max_side=640, fine_below=0), photos)
        print(json.dumps({"detector": cls.name, "max_side": 640, "fine_below": 0, **{k: r[k] for k in KEYS}}),
              flush=True)
    for below in (64, 96):
        for fine_score in (0.55, 0.6, 0.65):
            det = SingleShotDetector(a.weights, max_side=400, fine_side=640, fine_below=below, fine_score=fine_score)
            r = evaluate_detector(det, photos)
            print(json.dumps({"detector": "facemark", "max_side": 400, "fine_side": 640, "fine_below": below,
                              "fine_score": fine_score, **{k: r[k] for k in KEYS}}), flush=True)
    for score in (0.45, 0.4):
        r = evaluate_detector(SingleShotDetector(a.weights, max_side=400, min_score=score, fine_below=0), photos)
        print(json.dumps({"detector": "facemark", "max_side": 400, "fine_below": 0, "min_score": score,
                          **{k: r[k] for k in KEYS}}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
