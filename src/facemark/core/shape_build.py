"""Building the 3D shape model of ``core.shape3d`` from fitted 3D faces (``tools/build_shape_model.py`` runs it
on one half of AFLW2000-3D and writes ``shape68.npz``).

Each face's 3D points are rotated back to the frontal pose by its own annotated pose, centred and scaled to
unit RMS radius: shapes in one frame. The model is their mean plus a linear basis: expression directions (the
principal directions of the part of the shapes that the faces' expression coefficients explain, by least
squares) and identity directions (the principal directions of the rest).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .pose import rotation_from_euler
from .shape3d import N_POINTS, ShapeModel


def principal(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k leading unit directions of the rows of ``x`` (zero-mean) and their standard deviations."""
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    return vt[:k], s[:k] / np.sqrt(len(x))


def frontal_shapes(points: np.ndarray, poses: np.ndarray) -> np.ndarray:
    """(F, 68, 3) shapes in the frontal frame, centred, unit RMS radius, from (F, 68, 3) points in the camera
    frame and (F, 3) yaw, pitch, roll in degrees."""
    out = []
    for p, (yaw, pitch, roll) in zip(points, poses):
        c = (p - p.mean(axis=0)) @ rotation_from_euler(yaw, pitch, roll)   # R^T q per point
        out.append(c / np.sqrt((c ** 2).sum(axis=1).mean()))
    return np.array(out)


def build_shape_model(points: np.ndarray, poses: np.ndarray, expression: np.ndarray, n_expression: int,
                      n_identity: int) -> tuple[ShapeModel, float]:
    """The model of (F, 68, 3) fitted faces with (F, 3) poses and (F, E) expression coefficients, and the share
    of the shapes' variance the expression coefficients explain."""
    shapes = frontal_shapes(points, poses)
    mean = shapes.mean(axis=0)
    mean /= np.sqrt((mean ** 2).sum(axis=1).mean())
    dev = (shapes - mean).reshape(len(shapes), -1)
    exp = np.concatenate([expression, np.ones((len(expression), 1))], axis=1)
    explained = exp @ np.linalg.lstsq(exp, dev, rcond=None)[0]
    b_exp, s_exp = principal(explained - explained.mean(axis=0), n_expression)
    b_id, s_id = principal(dev - explained, n_identity)
    model = ShapeModel(mean, np.concatenate([b_exp, b_id]).reshape(-1, N_POINTS, 3),
                       np.concatenate([s_exp, s_id]), n_expression)
    share = float(((explained - explained.mean(axis=0)) ** 2).sum() / (dev ** 2).sum())
    return model, share


def save_shape_model(model: ShapeModel, path: Path) -> None:
    """Write ``model`` as ``shape3d.shape_model`` reads it (float32)."""
    np.savez_compressed(path, mean=model.mean.astype(np.float32), basis=model.basis.astype(np.float32),
                        std=model.std.astype(np.float32), n_expression=np.int32(model.n_expression))
