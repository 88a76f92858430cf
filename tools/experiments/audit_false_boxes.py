"""Audit a validation set's false boxes by eye (issue 15): the crowd photos leave faces unannotated, so a
detector that finds them is charged false boxes it did not make, and a threshold rule on "false boxes per
photo" favours detectors that miss such faces.

It runs several detectors on the photos and gathers every box scored at least ``--min-score`` that
overlaps no annotated face (IoU < 0.3 with each and not half inside one, ``core.detection.overlaps``: a box
on an annotated face drawn a little differently is a framing error, not an unannotated face), merged across
detectors (IoU >= 0.5: one region, its best-scored box), numbered, and drawn as tiles (the region red,
annotated faces green, with some context) into montage PNGs beside a JSON of the regions, for a person to
judge which are real faces. Every region is shown the same way whichever detector found it. With
``--every-false``, the regions are instead every box the evaluation counts false (``evaluate_detector``:
matched to no face of at least 20 px at IoU 0.5), framing errors included. The audits are in
docs/detection.md.

    python tools/experiments/audit_false_boxes.py --weights shipped runs/detector_v4/export/facemark_det.onnx \\
        --min-score 0.4 --out-dir audit
    python tools/experiments/audit_false_boxes.py --set detect/masks --format voc --part 0/5 --min-score 0.45 \\
        --every-false --out-dir audit_masks
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from facemark.core.crop import crop_from_box
from facemark.core.detection import iou, overlaps
from facemark.inference.detectors import SingleShotDetector
from facemark.evaluation.detection import match
from facemark.io.boxes import PhotoBoxes
from facemark.io.images import read_image, write_image
from facemark.io.boxes import BOX_FORMATS
from facemark.training.detect_data import read_photos

from _data import DATA

TILE, COLUMNS, ROWS = 112, 10, 5


def _tile(image: np.ndarray, box: np.ndarray, annotated: np.ndarray, number: int) -> np.ndarray:
    """The region with half its size of context around it, annotated faces green, the region red, its number."""
    crop = crop_from_box(box, TILE, scale=2.0)
    tile = crop.warp(image)
    for b, colour in [*((g, (0, 200, 0)) for g in annotated), (box, (255, 0, 0))]:
        p = crop.to_crop(np.reshape(b, (2, 2))).round().astype(int)
        cv2.rectangle(tile, tuple(p[0]), tuple(p[1]), colour, 1)
    cv2.putText(tile, str(number), (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1)
    return tile


def false_boxes(boxes: np.ndarray, photo: PhotoBoxes, min_face: float = 20.0) -> np.ndarray:
    """Which detections ``evaluate_detector`` counts false: at least ``min_face`` px, matched to no face."""
    big = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) >= min_face
    gt = photo.boxes
    ignore = photo.ignore | (np.minimum(gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]) < min_face)
    owner = np.zeros(len(boxes), int)
    owner[big] = match(boxes[big], gt, ignore, 0.5)[0]
    return big & (owner == -1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", nargs="+", default=["shipped"], help="detector .onnx files ('shipped': the package's)")
    ap.add_argument("--set", default="detect/roboflow_faces/valid", help="a photo folder under the data root")
    ap.add_argument("--format", default="yolo", choices=BOX_FORMATS.names(), help="its annotation format")
    ap.add_argument("--part", default="", help="K/N: only these photos (select_part)")
    ap.add_argument("--every-false", action="store_true", help="every box the evaluation counts false")
    ap.add_argument("--min-score", type=float, default=0.4)
    ap.add_argument("--out-dir", required=True)
    a = ap.parse_args()
    photos = read_photos([{"format": a.format, "path": a.set, "part": a.part}], DATA)
    detectors = [SingleShotDetector(None if w == "shipped" else w, min_score=a.min_score) for w in a.weights]
    regions, tiles = [], []
    for photo in photos:
        image = read_image(photo.image)
        found = np.zeros((0, 5))
        for det in detectors:
            boxes, scores = det.detect(image)
            if a.every_false:
                keep = false_boxes(boxes, photo)
                boxes, scores = boxes[keep], scores[keep]
            elif len(boxes) and len(photo.boxes):
                keep = ~overlaps(boxes, photo.boxes).any(axis=1)
                boxes, scores = boxes[keep], scores[keep]
            for b, s in zip(boxes, scores):
                same = np.flatnonzero(iou(b[None], found[:, :4])[0] >= 0.5) if len(found) else []
                if len(same):
                    if s > found[same[0], 4]:
                        found[same[0]] = [*b, s]
                else:
                    found = np.vstack([found, [*b, s]])
        for b in found:
            regions.append({"photo": photo.image.relative_to(DATA).as_posix(), "box": np.round(b[:4], 1).tolist(),
                            "score": round(float(b[4]), 3)})
            tiles.append(_tile(image, b[:4], photo.boxes, len(regions) - 1))
    out = Path(a.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "regions.json").write_text(json.dumps({"command": "python tools/experiments/audit_false_boxes.py " +
                                                  " ".join(sys.argv[1:]), "regions": regions}, indent=0) + "\n")
    per_page = COLUMNS * ROWS
    for page in range(0, len(tiles), per_page):
        chunk = tiles[page:page + per_page]
        chunk += [np.zeros_like(tiles[0])] * (-len(chunk) % COLUMNS)
        write_image(out / f"page{page // per_page}.png",
                    np.vstack([np.hstack(chunk[i:i + COLUMNS]) for i in range(0, len(chunk), COLUMNS)]))
    print(f"{len(photos)} photos, {len(regions)} regions without an annotated face -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
