"""Issue 37: where does the detector lose WIDER's small faces? For each face of detect/wider_val (>= 20 px by
sqrt(w * h)), the best face score of the cells at each stride whose centre lies inside the face's box (the
network's raw answer, before the threshold and NMS), by size band: its mean, and the share of faces where it
reaches the shipped threshold 0.5. A face no cell scores is one the network does not see; one it scores at a
stride its level range (``core.detection.LEVEL_RANGES``) does not assign is a training-target question.

    python tools/experiments/wider_strides.py [--weights runs/x/export/facemark_det.onnx] > docs/runs/wider_strides.json
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from facemark.core.detection import cells
from facemark.inference.detectors import SingleShotDetector, to_input
from facemark.io.boxes import read_boxes
from facemark.io.images import read_image

from _data import DATA

BANDS = ((20, 32), (32, 64), (64, 128), (128, 1e9))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", help="detector .onnx with its card (default: the shipped one)")
    a = ap.parse_args()
    det = SingleShotDetector(a.weights)
    best: dict[tuple, list] = {}
    for photo in read_boxes(DATA / "detect" / "wider_val"):
        image = read_image(photo.image)
        scale = min(1.0, det.max_side / max(image.shape[:2]))
        assert scale == 1.0, "wider_val photos are 416 px: no resizing"
        h, w = image.shape[:2]
        ph, pw = -(-h // 32) * 32, -(-w // 32) * 32
        padded = np.full((ph, pw, 3), 114, np.uint8)
        padded[:h, :w] = image
        out = det._run(to_input(padded[None]))
        grid = cells(ph, pw, det.strides)
        score = 1 / (1 + np.exp(-out[:, 0].astype(np.float64)))
        for box, ignored in zip(photo.boxes, photo.ignore):
            if ignored:
                continue
            size = float(np.sqrt(np.prod(box[2:] - box[:2])))
            band = next((b for b in BANDS if b[0] <= size < b[1]), None)
            if band is None:
                continue
            inside = ((grid.centres >= box[:2]) & (grid.centres <= box[2:])).all(axis=1)
            for stride in det.strides:
                on = inside & (grid.strides == stride)
                best.setdefault((band, stride), []).append(float(score[on].max()) if on.any() else 0.0)
    report = {f"{lo}-{hi if hi < 1e9 else ''} px": {
        f"stride {s}": {"faces": len(v := best[(lo, hi), s]), "mean_best_score": round(float(np.mean(v)), 3),
                        "share_at_0.5": round(float(np.mean(np.array(v) >= 0.5)), 3)} for s in sorted(det.strides)}
        for lo, hi in BANDS if ((lo, hi), det.strides[0]) in best}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
