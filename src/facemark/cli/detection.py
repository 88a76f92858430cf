"""``facemark evaluate-detect``: a detector on photos with annotated face boxes."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..core.errors import DataError, FacemarkError
from ..inference.detectors import DEFAULT_DETECTOR, DETECTORS
from ..inference.runtime import DEFAULT_MODEL
from ..io.boxes import BOX_FORMATS
from .base import command



def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("annotations", type=Path, help="a folder (VOC XML, YOLO split, 300W scenes) or a list/XML file "
                                                  "(WIDER, FDDB, dlib imglab)")
    p.add_argument("--format", choices=("auto", *BOX_FORMATS.names()), default="auto",
                   help="annotation format (default: from the files)")
    p.add_argument("--images", type=Path, help="WIDER / FDDB: the folder their image paths are relative to")
    p.add_argument("--detector", default=DEFAULT_DETECTOR, choices=DETECTORS.names(),
                   help=f"detector (default {DEFAULT_DETECTOR})")
    p.add_argument("--weights", type=Path, help="facemark / facemark_any: an exported detector .onnx with its card "
                                                "(a candidate) instead of the shipped one")
    p.add_argument("--min-score", type=float, help="facemark / facemark_any: score threshold (default: the shipped one)")
    p.add_argument("--min-face", type=float, default=20.0, help="faces smaller than this (pixels) are not scored")
    p.add_argument("--size-by", choices=("side", "area"), default="side",
                   help="a face's size for --min-face and the size bands: its box's shorter side (default) or "
                        "sqrt(w * h) (WIDER FACE's bands)")
    p.add_argument("--part", default="", help="K/N: only the photos at positions K mod N in file-name order "
                                              "(-K/N: all others), e.g. a held-out part")
    p.add_argument("--model", default=DEFAULT_MODEL, help="landmark model for the NME of found faces")
    p.add_argument("--json", action="store_true", help="print one JSON object")


@command("evaluate-detect", _args)
def _evaluate_detect(a: argparse.Namespace) -> int:
    """Recall at IoU 0.5 and 0.3, AP, false boxes per photo, ms per photo and landmark NME of a detector."""
    from ..evaluation.detection import evaluate_detector
    from ..inference.landmarker import Landmarker
    from ..io import boxes

    fmt = boxes.guess_box_format(a.annotations) if a.format == "auto" else a.format
    photos = boxes.read_boxes(a.annotations, fmt, a.images)
    if a.part:
        try:
            photos = boxes.select_part(photos, a.part)
        except ValueError:
            raise DataError(a.annotations, f"--part {a.part!r}: expected K/N or -K/N") from None
    if not photos:
        raise DataError(a.annotations, "no annotated photos")
    settings = {k: v for k, v in (("weights", a.weights), ("min_score", a.min_score)) if v is not None}
    if settings and a.detector not in ("facemark", "facemark_any"):
        raise FacemarkError(f"--weights / --min-score: for facemark's own detectors, not {a.detector}")
    detector = DETECTORS.build(a.detector, **settings)
    lm = Landmarker(a.model, detector, threads=1) if any(p.landmarks is not None for p in photos) else None
    report = {"detector": a.detector, "format": fmt,
              **evaluate_detector(detector, photos, a.min_face, lm, scenes=fmt == "scenes", size=a.size_by)}
    if a.json:
        print(json.dumps(report))
        return 0
    print(f"{a.detector} on {a.annotations} ({fmt}): {report['photos']} photos, {report['faces']} faces of at least "
          f"{a.min_face:g} px")
    ap = "-" if report["ap"] is None else f"{report['ap']:.3f}"
    print(f"  recall@0.5 {report['recall']:.3f}   recall@0.3 {report['recall_iou30']:.3f}   AP@0.5 {ap}")
    print(f"  false boxes per photo {report['false_per_photo']:.2f}   ms per photo (1 thread) {report['ms_per_photo']:.1f}")
    bands = "   ".join(f"{k} px {v['recall']:.2f} ({v['faces']})" for k, v in report["recall_by_size"].items())
    print(f"  recall by face size ({'sqrt(w * h)' if a.size_by == 'area' else 'shorter side'}): {bands}")
    if report["landmark_nme"] is not None:
        print(f"  landmark NME (iod) of {report['landmark_faces']} found faces {report['landmark_nme'] * 100:.2f}%")
    return 0
