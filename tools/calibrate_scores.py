"""Calibrate a detector's raw scores to [0, 1] (Platt scaling), written to src/facemark/inference/box_maps.json.

Detectors whose raw score is not a probability (Haar's level weights, dlib's SVM margins) get
``score = 1 / (1 + exp(-(a * raw + b)))``, with a and b fitted by logistic regression of "this detection is a
face" (IoU >= 0.5 with an annotated face) on the raw score, over the completely annotated photos of
detect/roboflow_faces/valid and detect/masks part 1/5 (neither is a set docs/detection.md reports). A detector
whose fitted slope is not positive (its raw score does not rank faces there) is left raw.

    python tools/calibrate_scores.py --detectors haar
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from facemark.evaluation.detection import match
from facemark.evaluation.detector_fit import platt
from facemark.inference.detectors import BOX_MAPS_FILE, build_detector
from facemark.io.boxes import read_voc_folder, read_yolo, select_part
from facemark.io.images import read_image

from _data import DATA


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--detectors", nargs="+", default=["haar"])
    a = ap.parse_args()
    photos = read_yolo(DATA / "detect/roboflow_faces/valid") + select_part(read_voc_folder(DATA / "detect/masks"), "1/5")
    maps = json.loads(BOX_MAPS_FILE.read_text())
    for name in a.detectors:
        det = build_detector(name)
        det.calibrated = False
        raw, hit = [], []
        for p in photos:
            boxes, scores = det.detect(read_image(p.image))
            owner, _ = match(boxes, p.boxes, p.ignore, 0.5)
            raw += list(scores[owner != -2])
            hit += list(owner[owner != -2] >= 0)
        a_, b_ = platt(np.array(raw), np.array(hit, float))
        if a_ <= 0:   # a higher raw score is not more often a face here: no calibration keeps the ranking
            maps.get(name, {}).pop("score", None)
            print(f"{name}: slope {a_:.4f} <= 0 on {len(raw)} detections ({int(np.sum(hit))} faces): left raw")
            continue
        maps.setdefault(name, {})["score"] = {"a": round(a_, 5), "b": round(b_, 5), "detections": len(raw),
                                             "faces_among_them": int(np.sum(hit))}
        print(name, maps[name]["score"])
    BOX_MAPS_FILE.write_text(json.dumps(maps, indent=1) + "\n")


if __name__ == "__main__":
    main()
