"""Head pose (yaw, pitch, roll in degrees) and 3D points from 2D landmarks, by fitting the 3D shape model
(``facemark.core.shape3d``) with a scaled-orthographic camera.

Any scheme with ``shape_points`` (its indices of the model's 68 iBUG points) has a head pose. The pose is the
face's own: it does not change when the face moves in the picture or the picture is resized.

Axes and signs (image coordinates, as a viewer sees the picture):
- yaw > 0: the face turns towards the image's right side (the subject's own left),
- pitch > 0: the face tilts up,
- roll > 0: the face rotates counter-clockwise in the image.
A frontal, upright face is (0, 0, 0). The rotation maps the model frame (x right, y down, z away from the camera)
to the camera's as R = Rx(-pitch) @ Ry(-yaw) @ Rz(-roll), the composition AFLW2000-3D and 300W-LP use; their yaw
and roll have the opposite sign (facemark yaw = -AFLW yaw, pitch = pitch, roll = -roll).
"""
from __future__ import annotations

import numpy as np

from . import schemes
from .errors import ArgumentError
from .points import check_points, xy
from .shape3d import ANNOTATED, N_POINTS, PREDICTED, FitSettings, ShapeFit, fit_shape, shape_model


def _axis(axis: int, a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    i, j = [k for k in range(3) if k != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r if axis != 1 else r.T   # the right-handed rotation about y has -sin in row z


def rotation_from_euler(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The model-to-camera rotation for angles in degrees (the module docstring gives the convention)."""
    y, p, r = np.deg2rad([yaw, pitch, roll])
    return _axis(0, -p) @ _axis(1, -y) @ _axis(2, -r)


def euler_from_rotation(r: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a model-to-camera rotation; inverse of rotation_from_euler."""
    b = np.arcsin(np.clip(r[0, 2], -1.0, 1.0))
    a = np.arctan2(-r[1, 2], r[2, 2])
    c = np.arctan2(-r[0, 1], r[0, 0])
    return float(-np.rad2deg(b)), float(-np.rad2deg(a)), float(-np.rad2deg(c))


def _scheme(pts: np.ndarray, scheme: str | None) -> schemes.Scheme:
    s = schemes.scheme(scheme) if scheme is not None else schemes.scheme_for_points(pts.shape[-2])
    if not s.shape_points:
        raise ValueError(f"scheme {s.name} has no 3D shape-model points: no head pose")
    return s


def fit_landmarks(pts: np.ndarray, scheme: str | None = None, settings: FitSettings = PREDICTED) -> ShapeFit:
    """The shape-model fit of (F, N, D) or (N, D) landmarks of ``scheme`` (default: by point count);
    ``settings``: ``shape3d.PREDICTED`` (a model's points) or ``shape3d.ANNOTATED``."""
    arr = check_points(pts, "pts")
    s = _scheme(arr, scheme)
    return fit_shape(xy(arr)[..., list(s.shape_points), :], settings)


def head_poses(pts: np.ndarray, scheme: str | None = None, settings: FitSettings = PREDICTED) -> np.ndarray:
    """(F, 3) yaw, pitch, roll in degrees of (F, N, D) landmarks (one fit per face, batched; ``settings`` as
    for ``fit_landmarks``)."""
    return np.array([euler_from_rotation(r) for r in fit_landmarks(pts, scheme, settings).rotation]).reshape(-1, 3)


def head_pose(pts: np.ndarray, scheme: str | None = None) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of one (N, D) shape of ``scheme`` (default: by point count)."""
    if np.ndim(pts) != 2:
        raise ArgumentError("pts", f"expected one face's (N, 2) or (N, 3) points, got shape {np.shape(pts)}")
    return tuple(head_poses(pts, scheme)[0])


def lift_3d(pts: np.ndarray) -> np.ndarray:
    """(..., 68, 3) points: the given annotated iBUG-68 x, y with the shape-model fit's depth z (pixels, away
    from the camera, 0 at the points' mean). Pseudo-3D labels for 2D-annotated faces."""
    arr = check_points(pts, "pts", N_POINTS)
    fit = fit_landmarks(arr, "ibug68", ANNOTATED)
    return np.concatenate([xy(arr), fit.points[..., 2:].reshape(*arr.shape[:-1], 1)], axis=-1)


def project_model(yaw: float, pitch: float, roll: float, scale: float = 100.0,
                  centre: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """The model's mean shape at a known pose: (68, 3) image points (x, y; z away from the camera), for tests
    and demos."""
    m = shape_model()
    pts = scale * m.mean @ rotation_from_euler(yaw, pitch, roll).T
    pts[:, :2] += centre
    pts[:, 2] -= pts[:, 2].mean()
    return pts

