"""How the refine step should frame a face: one pass on the detector's box, a second pass of the model on
the first pass's landmarks, or a first pass of a fast model (the framer) and then the model.

For each face of a 300W-layout folder (default faces68/test/ytf; faces3d/aflw2000, which no model trained or
was chosen on, is the check that decided the default framer), the Haar detection nearest its landmarks, mapped
by Haar's box map; NME (inter-ocular) and failure rate of each way, for each main model. docs/benchmarks.md
quotes its output.

    python tools/framing.py [--folder faces3d/aflw2000] [--models hrnet68 hrnet68_w16] [--framers pfld68_fast pfld68]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from facemark.core.crop import crop_from_box, crop_from_landmarks
from facemark.evaluation.metrics import nme
from facemark.inference.detectors import build_detector, to_landmark_boxes
from facemark.inference.predictor import predict
from facemark.inference.runtime import OnnxLandmarkModel
from facemark.io.datasets import read_pts_folder

from _data import DATA


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["hrnet68", "hrnet68_w16"])
    ap.add_argument("--framers", nargs="+", default=["pfld68_fast", "pfld68"])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--folder", default="faces68/test/ytf", help="annotated faces under --data")
    a = ap.parse_args()
    det = build_detector("haar")
    nets = {m: OnnxLandmarkModel(m, threads=2, precision="fp32") for m in dict.fromkeys(a.models + a.framers)}
    errors: dict[str, list[float]] = {}
    for s in read_pts_folder(a.data / a.folder, 68):
        image = s.load_image()
        boxes, _ = det.detect(image)
        if not len(boxes):
            continue
        mapped = to_landmark_boxes(boxes, det.box_map)
        centre = s.landmarks.mean(0)
        box = mapped[np.argmin([np.linalg.norm((b[:2] + b[2:]) / 2 - centre) for b in mapped])]
        first = {m: predict(net, [image], [crop_from_box(box, net.input_size)])[0] for m, net in nets.items()}
        for model in a.models:
            net = nets[model]
            errors.setdefault(f"{model}, one pass", []).append(nme(first[model], s.landmarks, "iod")[0])
            for framer in a.framers + [model]:
                pts = predict(net, [image], [crop_from_landmarks(first[framer], net.input_size)])[0]
                label = f"{model}, framed by {'itself' if framer == model else framer}"
                errors.setdefault(label, []).append(nme(pts, s.landmarks, "iod")[0])
    print("| pipeline | faces | NME | FR@10% |\n|---|---|---|---|")
    for label, e in errors.items():
        e = np.array(e)
        print(f"| {label} | {len(e)} | {e.mean() * 100:.2f}% | {np.mean(e > 0.1) * 100:.2f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
