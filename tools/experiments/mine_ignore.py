"""Ignore regions for a detector's training photos (issue 15, "negatives without lies"): the crowd and Roboflow
sets leave some background faces unannotated (and a face crop may show a neighbour's face), and a detector
trained on them learns those faces as background. First-round detectors run on every training photo of a
config; each detection scored at least ``--min-score`` that meets no annotated box (IoU < 0.3, and not half
inside one: an eye or a mouth of the annotated face) becomes an ignore region, neither face nor background,
for the next round: ``data.ignore_boxes`` in the config names the file written here. With ``--agree``, only
the regions every detector finds (each detector's own false boxes are a detector's hardest negatives: a
region found by one alone is as often one of those as a face).

    python tools/experiments/mine_ignore.py configs/experiments/detector_v4.yaml --min-score 0.4 0.7 --agree --out configs/experiments/detector_v4_ignore.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from facemark.core.detection import iou, overlaps
from facemark.inference.detectors import build_detector
from facemark.io.images import read_image
from facemark.training.detect_data import read_photos
from facemark.training.detect_train import DetectorConfig, check_photo_data, checked_values

from _data import DATA


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", help="a detector config: its data.train photos are mined")
    ap.add_argument("--detectors", nargs="+", default=["facemark", "mtcnn"], help="first-round detectors")
    ap.add_argument("--min-score", nargs="+", type=float, default=[0.4, 0.7],
                    help="each detector's score threshold (one per detector)")
    ap.add_argument("--agree", action="store_true",
                    help="only regions every detector finds (fewer of the first detector's own false boxes)")
    ap.add_argument("--out", required=True, help="JSON file of ignore boxes per photo")
    a = ap.parse_args()
    if len(a.min_score) != len(a.detectors):
        ap.error("--min-score: one threshold per detector")
    data = checked_values(Path(a.config), DetectorConfig, "detector")["data"]   # its ignore file may not exist yet
    check_photo_data(Path(a.config), {k: v for k, v in data.items() if k != "ignore_boxes"})
    detectors = [build_detector(n) for n in a.detectors]
    for det, s in zip(detectors, a.min_score):
        if hasattr(det, "min_score"):   # its own last threshold, if above ours
            det.min_score = min(det.min_score, s)
    photos = read_photos(data["train"], DATA)
    found, counts = {}, dict.fromkeys(a.detectors, 0)
    for photo in photos:
        image = read_image(photo.image)
        regions = np.zeros((0, 4))
        for k, (name, det, s) in enumerate(zip(a.detectors, detectors, a.min_score)):
            boxes, scores = det.detect(image)
            boxes = boxes[scores >= s]
            if len(boxes) and len(photo.boxes):
                boxes = boxes[~overlaps(boxes, photo.boxes).any(axis=1)]
            if a.agree and k > 0:    # keep the regions this detector confirms
                regions = regions[iou(regions, boxes).max(axis=1) >= 0.3] if len(boxes) else boxes
                counts[name] += len(regions)
                continue
            if len(boxes) and len(regions):    # add the regions this detector finds first
                boxes = boxes[iou(boxes, regions).max(axis=1) < 0.3]
            counts[name] += len(boxes)
            regions = np.concatenate([regions, boxes])
        if len(regions):
            h, w = image.shape[:2]
            regions = np.clip(regions, 0, [w, h, w, h])
            found[photo.image.relative_to(DATA).as_posix()] = np.round(regions, 1).tolist()
    weights = {n: {"min_score": s, "sha256": getattr(d, "card", {}).get("sha256")}
               for n, s, d in zip(a.detectors, a.min_score, detectors)}
    out = {"command": "python tools/experiments/mine_ignore.py " + " ".join(sys.argv[1:]), "config": a.config,
           "detectors": weights, "photos": found}
    Path(a.out).write_text(json.dumps(out, indent=0) + "\n")
    total = sum(len(v) for v in found.values())
    print(f"{len(photos)} photos; {total} ignore regions in {len(found)} photos (" +
          ", ".join(f"{n} {'kept' if a.agree and k else 'found'} {c}" for k, (n, c) in enumerate(counts.items()))
          + f") -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
