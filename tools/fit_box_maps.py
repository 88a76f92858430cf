"""Fit each detector's box -> landmark-box mapping (src/facemark/box_maps.json).

Detectors frame faces differently from the landmark box the models were trained on. For each detection
matched to an annotated face we record the landmark box's centre shift (in detector box widths / heights)
and its longer side relative to sqrt(w * h) of the detector box; the mapping is their median. Fitted on
training crops (helen, and every 4th ytf frame), checked on faces68/test/ytf.

    python tools/fit_box_maps.py [--detectors haar yunet ...]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from facemark.core.crop import landmark_box
from facemark.inference.detectors import BOX_MAPS_FILE, build_detector, to_landmark_boxes
from facemark.core.errors import FacemarkError
from facemark.io.datasets import read_pts_folder

from _data import DATA


def iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def matches(detector, samples):
    """(detector box, landmark box) pairs: the best-overlapping detection of each annotated face."""
    pairs, missed = [], 0
    for s in samples:
        boxes, _ = detector.detect(s.load_image())
        gt = landmark_box(s.landmarks)
        best = max(boxes, key=lambda b: iou(b, gt), default=None)
        if best is None or iou(best, gt) < 0.25:
            missed += 1
            continue
        pairs.append((best, gt))
    return pairs, missed


def fit(pairs) -> dict[str, float]:
    d = np.array([p[0] for p in pairs])
    g = np.array([p[1] for p in pairs])
    w, h = d[:, 2] - d[:, 0], d[:, 3] - d[:, 1]
    dx = ((g[:, 0] + g[:, 2]) - (d[:, 0] + d[:, 2])) / 2 / w
    dy = ((g[:, 1] + g[:, 3]) - (d[:, 1] + d[:, 3])) / 2 / h
    scale = np.maximum(g[:, 2] - g[:, 0], g[:, 3] - g[:, 1]) / np.sqrt(w * h)
    return {"dx": round(float(np.median(dx)), 4), "dy": round(float(np.median(dy)), 4),
            "scale": round(float(np.median(scale)), 4)}


def check(pairs, mapping) -> float:
    """Median IoU between mapped detector boxes and squared landmark boxes."""
    d = to_landmark_boxes(np.array([p[0] for p in pairs]), mapping)
    out = []
    for m, (_, g) in zip(d, pairs):
        c, half = (g[:2] + g[2:]) / 2, max(g[2] - g[0], g[3] - g[1]) / 2
        out.append(iou(m, np.concatenate([c - half, c + half])))
    return float(np.median(out))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detectors", nargs="+", default=["haar"])
    ap.add_argument("--data", type=Path, default=DATA)
    a = ap.parse_args()
    train = read_pts_folder(a.data / "faces68/train/helen") + read_pts_folder(a.data / "faces68/train/ytf")[::4]
    test = read_pts_folder(a.data / "faces68/test/ytf")
    maps = json.loads(BOX_MAPS_FILE.read_text()) if BOX_MAPS_FILE.is_file() else {}
    for name in a.detectors:
        try:
            det = build_detector(name)
        except FacemarkError as e:
            print(f"skip {name}: {e}", file=sys.stderr)
            continue
        t = time.time()
        pairs, missed = matches(det, train)
        mapping = fit(pairs)
        test_pairs, test_missed = matches(det, test)
        maps.setdefault(name, {}).update({
            "map": mapping, "fitted_on": f"{len(pairs)} faces (helen + every 4th ytf train frame)",
            "missed_train": missed, "test_median_iou": round(check(test_pairs, mapping), 4),
            "test_median_iou_unmapped": round(check(test_pairs, {"dx": 0, "dy": 0, "scale": 1}), 4),
            "test_detected": f"{len(test_pairs)}/{len(test)}"})
        print(name, json.dumps(maps[name]), f"({time.time() - t:.0f}s)")
    BOX_MAPS_FILE.write_text(json.dumps(maps, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
