"""Fit each detector's box -> landmark-box mapping into src/facemark/inference/box_maps.json
(``evaluation.detector_fit``): fitted on training crops (helen, and every 4th ytf frame), checked on
faces68/test/ytf.

    python tools/fit_box_maps.py [--detectors haar yunet ...]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from facemark.core.errors import FacemarkError
from facemark.evaluation.detector_fit import fit_box_map, mapped_iou, matched_boxes
from facemark.inference.detectors import BOX_MAPS_FILE, build_detector
from facemark.io.datasets import read_pts_folder

from _data import DATA


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
        det_boxes, gt_boxes, missed = matched_boxes(det, train)
        mapping = fit_box_map(det_boxes, gt_boxes)
        test_det, test_gt, _ = matched_boxes(det, test)
        maps.setdefault(name, {}).update({
            "map": mapping, "fitted_on": f"{len(det_boxes)} faces (helen + every 4th ytf train frame)",
            "missed_train": missed, "test_median_iou": round(mapped_iou(test_det, test_gt, mapping), 4),
            "test_median_iou_unmapped": round(mapped_iou(test_det, test_gt, {"dx": 0, "dy": 0, "scale": 1}), 4),
            "test_detected": f"{len(test_det)}/{len(test)}"})
        print(name, json.dumps(maps[name]), f"({time.time() - t:.0f}s)")
    BOX_MAPS_FILE.write_text(json.dumps(maps, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
