"""Build the 3D shape model of the 68 iBUG points (src/facemark/core/shape68.npz) from AFLW2000-3D.

``core.shape_build.build_shape_model`` on each face's fitted 3D points (``pt3d_68``), its annotated pose and its
expression coefficients (``Exp_Para``): shapes in the frame where AFLW2000-3D's pose is zero.

Only one half of the faces builds the model (the even positions in file-name order, angles within 99 degrees);
the other half is validation. The script prints the head-pose MAE of the fit on the annotated 2D points (the
pose method alone) at several fit settings on both halves (``shape3d.ANNOTATED`` and ``PREDICTED`` were
chosen on the building half; ``tools/experiments/pose_settings.py`` scores them on a model's landmarks).

    python tools/build_shape_model.py [--aflw2000 DIR] [--expression 10] [--identity 30]
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from facemark.core.pose import euler_from_rotation
from facemark.core.shape3d import MODEL_FILE, FitSettings, ShapeModel, fit_shape
from facemark.core.shape_build import build_shape_model, save_shape_model
from facemark.io.datasets import read_aflw2000

from _data import DATA


def pose_mae(model: ShapeModel, samples, settings: FitSettings) -> float:
    fit = fit_shape(np.stack([s.landmarks for s in samples]), settings, model)
    got = np.array([euler_from_rotation(r) for r in fit.rotation])
    want = np.array([[s.pose["yaw"], s.pose["pitch"], s.pose["roll"]] for s in samples])
    return float(np.abs(got - want).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--aflw2000", default=str(DATA / "faces3d" / "aflw2000"))
    ap.add_argument("--expression", type=int, default=10)
    ap.add_argument("--identity", type=int, default=30)
    args = ap.parse_args()

    samples = sorted(read_aflw2000(args.aflw2000), key=lambda s: s.image.name)
    kept = [s for s in samples if max(abs(v) for v in s.pose.values()) <= 99]
    build = [s for i, s in enumerate(kept) if i % 2 == 0]
    check = [s for i, s in enumerate(kept) if i % 2 == 1]
    model, share = build_shape_model(np.stack([s.landmarks_3d for s in build]),
                                     np.array([[s.pose["yaw"], s.pose["pitch"], s.pose["roll"]] for s in build]),
                                     np.stack([s.expression for s in build]), args.expression, args.identity)
    save_shape_model(model, MODEL_FILE)
    report = {"faces": {"build": len(build), "validation": len(check)},
              "variance_explained": share,
              "pose_mae_from_annotated_2d": {
                  f"outline {w}, noise {n}": {"build": round(pose_mae(model, build, FitSettings(w, n)), 3),
                                              "validation": round(pose_mae(model, check, FitSettings(w, n)), 3)}
                  for w, n in ((1.0, 0.015), (0.3, 0.015), (0.1, 0.015), (0.05, 0.2))}}
    print(json.dumps(report, indent=1))
    print(f"wrote {MODEL_FILE}")


if __name__ == "__main__":
    main()
