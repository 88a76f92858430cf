"""Build the 3D shape model of the 68 iBUG points (src/facemark/core/shape68.npz) from AFLW2000-3D.

Each face's fitted 3D points (``pt3d_68``) are rotated back to the frontal pose by its own annotated pose,
centred and scaled to unit RMS radius: shapes in one frame, the frame where AFLW2000-3D's pose is zero. The
model is their mean plus a linear basis: expression directions (the principal directions of the part of the
shapes that the file's expression coefficients ``Exp_Para`` explain, by least squares) and identity directions
(the principal directions of the rest).

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

from facemark.core.pose import euler_from_rotation, rotation_from_euler
from facemark.core.shape3d import MODEL_FILE, N_POINTS, FitSettings, ShapeModel, fit_shape
from facemark.io.datasets import read_aflw2000

from _data import DATA


def principal(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k leading unit directions of the rows of ``x`` (zero-mean) and their standard deviations."""
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    return vt[:k], s[:k] / np.sqrt(len(x))


def frontal_shapes(samples) -> np.ndarray:
    """(F, 68, 3) shapes in the frontal frame, centred, unit RMS radius."""
    out = []
    for s in samples:
        q = s.landmarks_3d - s.landmarks_3d.mean(axis=0)
        c = q @ rotation_from_euler(s.pose["yaw"], s.pose["pitch"], s.pose["roll"])   # R^T q per point
        out.append(c / np.sqrt((c ** 2).sum(axis=1).mean()))
    return np.array(out)


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
    shapes = frontal_shapes(build)
    mean = shapes.mean(axis=0)
    mean /= np.sqrt((mean ** 2).sum(axis=1).mean())
    dev = (shapes - mean).reshape(len(shapes), -1)
    exp = np.stack([s.expression for s in build])
    exp = np.concatenate([exp, np.ones((len(exp), 1))], axis=1)
    explained = exp @ np.linalg.lstsq(exp, dev, rcond=None)[0]
    b_exp, s_exp = principal(explained - explained.mean(axis=0), args.expression)
    b_id, s_id = principal(dev - explained, args.identity)
    model = ShapeModel(mean, np.concatenate([b_exp, b_id]).reshape(-1, N_POINTS, 3),
                       np.concatenate([s_exp, s_id]), args.expression)
    np.savez_compressed(MODEL_FILE, mean=mean.astype(np.float32), basis=model.basis.astype(np.float32),
                        std=model.std.astype(np.float32), n_expression=np.int32(args.expression))
    report = {"faces": {"build": len(build), "validation": len(check)},
              "variance_explained": float(((explained - explained.mean(0)) ** 2).sum() / (dev ** 2).sum()),
              "pose_mae_from_annotated_2d": {
                  f"outline {w}, noise {n}": {"build": round(pose_mae(model, build, FitSettings(w, n)), 3),
                                              "validation": round(pose_mae(model, check, FitSettings(w, n)), 3)}
                  for w, n in ((1.0, 0.015), (0.3, 0.015), (0.1, 0.015), (0.05, 0.2))}}
    print(json.dumps(report, indent=1))
    print(f"wrote {MODEL_FILE}")


if __name__ == "__main__":
    main()
