"""How the refine step should frame a face: one pass on the detector's box, a second pass of the model on
the first pass's landmarks, or a first pass of a fast model (the framer) and then the model.

For each face of a 300W-layout folder (default faces68/test/ytf; faces3d/aflw2000, which no model trained or
was chosen on, is the check that decides the defaults), the whole pipeline as ``Landmarker`` runs it with
``--detector`` (its box map, its crops turned upright by its eye points), the face nearest the annotation;
NME (inter-ocular) and failure rate of each way, for each main model. docs/benchmarks.md quotes its output.

    python tools/experiments/framing.py [--detector haar] [--folder faces3d/aflw2000] [--models hrnet68 hrnet68_w16]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from facemark.evaluation.metrics import nme
from facemark.inference.detectors import DEFAULT_DETECTOR, build_detector
from facemark.inference.landmarker import Landmarker
from facemark.io.datasets import read_pts_folder

from _data import DATA


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["hrnet68", "hrnet68_w16"])
    ap.add_argument("--framers", nargs="+", default=["pfld68_fast", "pfld68"])
    ap.add_argument("--detector", default=DEFAULT_DETECTOR, help=f"the detector (default {DEFAULT_DETECTOR})")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--folder", default="faces68/test/ytf", help="annotated faces under --data")
    a = ap.parse_args()
    det = build_detector(a.detector)
    ways = {}   # label -> the Landmarker that runs it (the detector's crops turned upright as in use)
    for model in a.models:
        ways[f"{model}, one pass"] = Landmarker(model, det, refine=False, threads=2, precision="fp32")
        for framer in a.framers + [None]:
            ways[f"{model}, framed by {framer or 'itself'}"] = Landmarker(model, det, refine=True, framer=framer,
                                                                          threads=2, precision="fp32")
    errors: dict[str, list[float]] = {}
    for s in read_pts_folder(a.data / a.folder, 68):
        image = s.load_image()
        centre = s.landmarks.mean(0)
        for label, lm in ways.items():
            faces = lm.detect(image)
            if not faces:
                break
            face = faces[int(np.argmin([np.linalg.norm(f.landmarks.mean(0) - centre) for f in faces]))]
            errors.setdefault(label, []).append(nme(face.landmarks, s.landmarks, "iod")[0])
    print(f"detector {a.detector}\n| pipeline | faces | NME | FR@10% |\n|---|---|---|---|")
    for label, e in errors.items():
        e = np.array(e)
        print(f"| {label} | {len(e)} | {e.mean() * 100:.2f}% | {np.mean(e > 0.1) * 100:.2f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
