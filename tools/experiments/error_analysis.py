"""Where the NME of 68-point models on faces68/test/ytf comes from: per-region error, the smallest per-face
error, how much a per-point bias explains, and what averaging the models (with and without flipping) gives.

    python tools/experiments/error_analysis.py --models pfld68 checkpoints/zoo/pipnet_mbv2x05_128.onnx
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from facemark.core.schemes import scheme_for_points
from facemark.evaluation.metrics import nme, normaliser
from facemark.evaluation.protocols import predict_with_landmark_boxes
from facemark.inference.runtime import OnnxLandmarkModel
from facemark.io.datasets import read_pts_folder

from _data import DATA



def report(name: str, pred: np.ndarray, gt: np.ndarray) -> None:
    d = (pred - gt) / normaliser(gt, "iod")[:, None, None]
    per_point = np.linalg.norm(d, axis=2).mean(0)
    unbiased = np.linalg.norm(d - d.mean(0), axis=2).mean()
    regions = ", ".join(f"{r} {per_point[list(idx)].mean() * 100:.2f}%"
                        for r, idx in scheme_for_points(gt.shape[1]).regions.items())
    e = nme(pred, gt, "iod")
    print(f"{name}: NME {e.mean() * 100:.2f}%, smallest per face {e.min() * 100:.2f}%, "
          f"without each point's mean error {unbiased * 100:.2f}%; {regions}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", required=True, help="shipped names or .onnx paths")
    ap.add_argument("--data", type=Path, default=DATA)
    a = ap.parse_args()
    samples = read_pts_folder(a.data / "faces68/test/ytf")
    gt = np.array([s.landmarks for s in samples])
    preds = []
    for model in a.models:
        for flip in (False, True):
            pred = predict_with_landmark_boxes(OnnxLandmarkModel(model, threads=1, flip=flip, precision="fp32"), samples)
            report(f"{model}{' --flip' if flip else ''}", pred, gt)
            preds.append(pred)
    report(f"mean of the {len(preds)} predictions", np.mean(preds, axis=0), gt)
    return 0


if __name__ == "__main__":
    sys.exit(main())
