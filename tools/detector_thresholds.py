"""Choose facemark's detector thresholds on the validation photos (detect/roboflow_faces/valid, which no
reported table uses): recall@0.5 and false boxes per photo of ``facemark`` at each score threshold, and of
``facemark_any`` at each threshold and NMS IoU. The rule (docs/detection.md): the highest recall with at most
``--max-false`` false boxes per photo.

    python tools/detector_thresholds.py [--weights runs/detector_v2/facemark_det.onnx]
    python tools/detector_thresholds.py --weights runs/detector_cv/export/facemark_det.onnx --masks-part 1/5 [--by-set]

``--by-set`` prints, instead of the sweep, ``facemark``'s rows at 0.5-0.6 on each validation set alone (key ``set``).
``--samples`` adds to each ``facemark`` row whether the bundled sample photos show every face and no false one
at that threshold (the demo's check, tests/test_pipeline.py), and the rule then keeps only rows that pass it.
"""
from __future__ import annotations

import argparse
import json
import sys

from facemark.evaluation.detection import evaluate_detector
from facemark.evaluation.detector_fit import SAMPLE_FACES, choose_setting, sample_scores, threshold_sweep
from facemark.inference.detectors import SingleShotDetector
from facemark.io.boxes import read_voc_folder, read_yolo, select_part

from _data import DATA


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", help="detector .onnx (with its .json card); default: the shipped one")
    ap.add_argument("--max-false", type=float, default=0.15, help="false boxes per photo allowed")
    ap.add_argument("--masks-part", help="K/N: also the colour crowd photos of detect/masks at this part, for "
                                         "weights trained without it (configs/experiments/detector_cv.yaml: 1/5)")
    ap.add_argument("--by-set", action="store_true", help="instead: facemark's rows on each validation set alone")
    ap.add_argument("--samples", action="store_true", help="also check the bundled samples' faces at each threshold")
    a = ap.parse_args()
    sets = {"detect/roboflow_faces/valid": read_yolo(DATA / "detect/roboflow_faces/valid")}
    if a.masks_part:
        sets[f"detect/masks part {a.masks_part}"] = select_part(read_voc_folder(DATA / "detect/masks"), a.masks_part)
    photos = [p for ps in sets.values() for p in ps]
    if a.by_set:
        for score in (0.5, 0.55, 0.6):
            for name, ps in sets.items():
                r = evaluate_detector(SingleShotDetector(a.weights, min_score=score), ps)
                print(json.dumps({"detector": "facemark", "set": name, "min_score": score, "nms_iou": 0.4,
                                  **{k: r[k] for k in ("recall", "ap", "false_per_photo")}}))
        return 0
    on_samples = sample_scores(a.weights) if a.samples else None
    for name, scores in (on_samples or {}).items():
        print(f"{name}: face scores {', '.join(f'{v:.2f}' for v in scores)} (needs {SAMPLE_FACES[name]})",
              file=sys.stderr)
    rows = threshold_sweep(a.weights, photos, on_samples=on_samples)
    for r in rows:
        print(json.dumps({k: r[k] for k in ("detector", "min_score", "nms_iou", "recall", "ap", "false_per_photo",
                                            "samples_ok") if k in r}))
    for name in ("facemark", "facemark_any"):
        best = choose_setting(rows, name, a.max_false)
        print(f"{name}: " + (f"min_score {best['min_score']}, nms_iou {best['nms_iou']}: recall {best['recall']:.3f}, "
                             f"{best['false_per_photo']:.2f} false boxes per photo" if best else "no setting qualifies"),
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
