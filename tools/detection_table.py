"""The detector table of docs/detection.md: every available detector on the shared detection sets, in one run.

Recall at IoU 0.5 (and 0.3), AP@0.5 where the annotations are complete, false boxes per photo and ms per photo
(1 thread) for faces of at least 20 px (``facemark evaluate-detect`` for each pair), plus the landmark NME of
the found faces on 300W scenes; detect/masks is scored on its held-out part (every 5th photo), and the
detectors named by ``--rotated`` also on every photo turned by 90, 180 and 270 degrees. YuNet runs when
FACEMARK_YUNET names its model file (for comparison only).

    FACEMARK_YUNET=../shared/anchors/face_detection_yunet_2023mar.onnx python tools/detection_table.py
    python tools/detection_table.py --detectors facemark --weights RUN/export/facemark_det.onnx --min-score S
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from facemark.core.errors import FacemarkError
from facemark.evaluation.detection import evaluate_detector
from facemark.inference.detectors import DETECTORS, build_detector
from facemark.inference.landmarker import Landmarker
from facemark.io.boxes import read_scenes, read_voc_folder, read_yolo, select_part

from _data import DATA

# (reader, 300W scenes?, part): detect/masks' every 5th photo is the part configs/experiments/detector.yaml leaves out
SETS = {"faces68/scenes/afw": (read_scenes, True, ""), "detect/masks": (read_voc_folder, False, "0/5"),
        "detect/roboflow_faces/test": (read_yolo, False, "")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detectors", nargs="+", default=DETECTORS.names())
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--rotated", nargs="*", default=["facemark"],
                    help="detectors also run on every photo turned by 90, 180 and 270 degrees")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    ap.add_argument("--weights", help="other weights for facemark and facemark_any (a trained candidate)")
    ap.add_argument("--min-score", type=float, help="their threshold (default: each one's own)")
    a = ap.parse_args()
    rows = []
    for name in a.detectors:
        own = {k: v for k, v in (("weights", a.weights), ("min_score", a.min_score)) if v is not None}
        try:
            det = build_detector(name, **(own if name in ("facemark", "facemark_any") else {}))
        except FacemarkError as e:
            print(f"skipping {name}: {e}", file=sys.stderr)
            continue
        for folder, (read, scenes, part) in SETS.items():
            photos = select_part(read(a.data / folder), part)
            lm = Landmarker(detector=det, threads=1) if scenes else None
            for quarters in (0, 1, 2, 3) if name in a.rotated else (0,):
                row = {"detector": name, "set": folder + (f" (part {part})" if part else ""),
                       "rotation": 90 * quarters,
                       **evaluate_detector(det, photos, 20.0, lm, scenes=scenes, quarters=quarters)}
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    print("| detector | photos turned | photos | faces | recall@0.5 | recall@0.3 | AP@0.5 | false boxes / photo | "
          "ms / photo | landmark NME of found faces |\n|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ap_ = "-" if r["ap"] is None else f"{r['ap']:.3f}"
        nme = "-" if r["landmark_nme"] is None else f"{r['landmark_nme'] * 100:.2f}% ({r['landmark_faces']})"
        print(f"| {r['detector']} on {r['set']} | {r['rotation']} | {r['photos']} | {r['faces']} | {r['recall']:.3f} | "
              f"{r['recall_iou30']:.3f} | {ap_} | {r['false_per_photo']:.2f} | {r['ms_per_photo']:.0f} | {nme} |")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
