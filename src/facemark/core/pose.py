"""Head pose (yaw, pitch, roll in degrees) from 2D landmarks by solvePnP on PFLD's 14-point 3D template.

Any scheme with ``pose_points`` (the template's points in its own indices) has a head pose.

Axes and signs (image coordinates, as a viewer sees the picture):
- yaw > 0: the face turns towards the image's right side (the subject's own left),
- pitch > 0: the face tilts up,
- roll > 0: the face rotates counter-clockwise in the image.
A frontal, upright face is (0, 0, 0). Internally the rotation R maps the template (x right, y down, z away from
the camera) into the camera frame as R = Rz(-roll) @ Ry(-yaw) @ Rx(-pitch).
"""
from __future__ import annotations

import cv2
import numpy as np

from . import schemes
from .errors import ArgumentError
from .points import check_points, xy

# The seed's template (x towards the subject's left, y up, z towards the camera), keyed by iBUG-68 index.
# The seed lists both nostrils at x = -2.005628; the template is otherwise mirror-symmetric, so the subject's
# left nostril gets +2.005628 here.
_SEED_TEMPLATE = {
    26: (6.825897, 6.760612, 4.402142), 22: (1.330353, 7.122144, 6.903745),   # subject's left brow
    21: (-1.330353, 7.122144, 6.903745), 17: (-6.825897, 6.760612, 4.402142),  # subject's right brow
    45: (5.311432, 5.485328, 3.987654), 42: (1.789930, 5.393625, 4.413414),   # subject's left eye
    39: (-1.789930, 5.393625, 4.413414), 36: (-5.311432, 5.485328, 3.987654),  # subject's right eye
    35: (2.005628, 1.409845, 6.165652), 31: (-2.005628, 1.409845, 6.165652),  # nostrils
    54: (2.774015, -2.080775, 5.048531), 48: (-2.774015, -2.080775, 5.048531),  # mouth corners
    57: (0.000000, -3.116408, 6.097667), 8: (0.000000, -7.415691, 4.070434),  # lower lip, chin
}
TEMPLATE_INDICES_68: tuple[int, ...] = schemes.IBUG68.pose_points
# Subject's left is image right for a frontal face, so x is kept; y and z flip to image-down / into the scene.
TEMPLATE_3D = np.array([_SEED_TEMPLATE[i] for i in TEMPLATE_INDICES_68], dtype=np.float64) * [1.0, -1.0, -1.0]


def camera_matrix(width: float, height: float) -> np.ndarray:
    """A pinhole camera with focal length equal to the image width and the principal point at its centre."""
    return np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], dtype=np.float64)


def rotation_from_euler(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The template-to-camera rotation for angles in degrees (the module docstring gives the convention)."""
    a, b, c = np.deg2rad([-pitch, -yaw, -roll])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def euler_from_rotation(r: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a template-to-camera rotation; inverse of rotation_from_euler."""
    b = np.arcsin(np.clip(-r[2, 0], -1.0, 1.0))
    a = np.arctan2(r[2, 1], r[2, 2])
    c = np.arctan2(r[1, 0], r[0, 0])
    yaw, pitch, roll = -np.rad2deg(b), -np.rad2deg(a), -np.rad2deg(c)
    return float(yaw), float(pitch), float(roll)


def template_points(pts: np.ndarray, scheme: str | None = None) -> np.ndarray:
    """The 14 template points (x, y) of an (N, D) shape of ``scheme`` (default: the one with N points)."""
    s = schemes.scheme(scheme) if scheme is not None else schemes.scheme_for_points(np.shape(pts)[-2])
    if not s.pose_points:
        raise ValueError(f"scheme {s.name} has no head-pose template points")
    return xy(np.asarray(pts, dtype=np.float64))[list(s.pose_points)]


def solve_pose(points14: np.ndarray, width: float, height: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotation matrix and translation placing the template so it projects onto ``points14``."""
    pts = np.ascontiguousarray(points14, dtype=np.float64).reshape(-1, 1, 2)
    cam = camera_matrix(width, height)
    # Start from a frontal face at the depth its eye distance implies, so the solver settles on the right side.
    eye_px = max(np.linalg.norm(pts[7, 0] - pts[0, 0]), 1e-6)
    depth = width * np.linalg.norm(TEMPLATE_3D[7] - TEMPLATE_3D[0]) / eye_px
    centre = pts[:, 0].mean(axis=0)
    tvec = np.array([[(centre[0] - width / 2) * depth / width], [(centre[1] - height / 2) * depth / width],
                     [depth]])
    rvec = np.zeros((3, 1))
    ok, rvec, tvec = cv2.solvePnP(TEMPLATE_3D, pts, cam, None, rvec, tvec, useExtrinsicGuess=True,
                                  flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        raise ValueError("solvePnP failed for these landmarks")
    return cv2.Rodrigues(rvec)[0], tvec.reshape(3)


def head_pose(pts: np.ndarray, width: float, height: float, scheme: str | None = None) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of an (N, D) shape (of ``scheme``, default: by point count) in an image of
    the given size."""
    pts = check_points(pts, "pts")
    if not (width > 0 and height > 0):
        raise ArgumentError("width/height", f"an image has a positive size, not {width} x {height}")
    r, _ = solve_pose(template_points(pts, scheme), width, height)
    return euler_from_rotation(r)


def project_template(yaw: float, pitch: float, roll: float, width: float, height: float,
                     depth: float = 60.0) -> np.ndarray:
    """Project the 14-point template at a known pose: (14, 2) image points (for tests and demos)."""
    r = rotation_from_euler(yaw, pitch, roll)
    pts, _ = cv2.projectPoints(TEMPLATE_3D, cv2.Rodrigues(r)[0], np.array([0.0, 0.0, depth]),
                               camera_matrix(width, height), None)
    return pts.reshape(-1, 2)
