"""Face profiling: re-render a training face turned out of plane, as 300W-LP was made from 300W.

The 68 annotated points are lifted to 3D by the shape-model fit (x, y as annotated, z from the fit); a forehead
row (the brows raised along the face's own up axis), a ring around the face at the mean depth of the jaw outline and
the image border (fixed) complete a mesh. The points turn about the camera's vertical axis through the face's
centre (and, for a tilt, about its horizontal axis) and project orthographically; every triangle of the source mesh is then warped to its turned place,
farthest first, so the near cheek and the nose cover what they hide. The new labels are the turned 3D points
(x, y, z): points that turn out of sight keep where the 3D face puts them, as in 300W-LP, and each point's
visibility says whether it stays in sight: hidden where a nearer part of the turned mesh covers it (the far
cheek's outline behind the nose and the near cheek), the label a visibility head trains on.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..core.mesh import in_sight, piecewise_affine, triangles
from ..core.pose import euler_from_rotation, fit_landmarks, rotation_from_euler
from ..core.points import xy
from ..core.shape3d import ANNOTATED, ShapeFit

BROWS = tuple(range(17, 27))
JAW = tuple(range(17))
FOREHEAD_RISE = 0.45     # forehead row above the brows, in model units (the mean shape has unit RMS radius)
RING_SCALE = 1.35        # ring of anchors around the face, relative to the face's extent


def _anchors(pts3: np.ndarray, rotation: np.ndarray, scale: float, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Extra 3D points (forehead row, ring) and the fixed 2D image border."""
    up = -rotation[:, 1] * scale                     # the face's up axis in the image frame (model y is down)
    forehead = pts3[list(BROWS)] + FOREHEAD_RISE * up
    face = np.concatenate([pts3, forehead])
    centre = face[:, :2].mean(axis=0)
    radius = np.abs(face[:, :2] - centre).max() * RING_SCALE
    ang = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    ring = np.column_stack([centre + radius * np.column_stack([np.cos(ang), np.sin(ang)]),
                            np.full(len(ang), pts3[list(JAW), 2].mean())])
    e = side - 1.0
    border = np.array([[0, 0], [e / 2, 0], [e, 0], [e, e / 2], [e, e], [e / 2, e], [0, e], [0, e / 2]])
    return np.concatenate([forehead, ring]), border


def lift(pts: np.ndarray) -> ShapeFit:
    """The shape-model fit of annotated points that profiling turns (``turn_for`` and ``profile`` share it)."""
    return fit_landmarks(xy(pts), "ibug68", ANNOTATED)


def turn_for(pts: np.ndarray, rng: np.random.Generator, max_turn: float, max_yaw: float = 90.0,
             fit: ShapeFit | None = None) -> float:
    """A random turn (degrees) away from the frontal view: towards the side the face already shows (either side
    for a near-frontal face), 15 degrees to ``max_turn``, ending within ``max_yaw``. ``fit``: ``lift(pts)``."""
    yaw = euler_from_rotation((fit or lift(pts)).rotation[0])[0]
    side = np.sign(yaw) if abs(yaw) > 5 else rng.choice([-1.0, 1.0])
    turn = rng.uniform(15.0, max_turn)
    return float(side * min(turn, max(0.0, max_yaw - abs(yaw))))


def profile(image: np.ndarray, pts: np.ndarray, yaw: float, pitch: float = 0.0,
            fit: ShapeFit | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``image`` (square pre-crop) with its face turned by ``yaw`` degrees (> 0: towards the image's right) and
    tilted by ``pitch`` degrees (> 0: up), the face's points in the new image: (68, 3) with z away from the
    camera, 0 at the points' mean (or (68, 2) for 2D input), and (68,) booleans: which points stay in sight.
    ``fit``: ``lift(pts)``, when already made."""
    fit = fit or lift(pts)
    pts3 = np.concatenate([xy(pts), fit.points[0, :, 2:]], axis=1)
    extra, border = _anchors(pts3, fit.rotation[0], float(fit.scale[0]), image.shape[0])
    src3 = np.concatenate([pts3, extra])
    centre = np.append(pts3[:, :2].mean(axis=0), 0.0)
    turned = (src3 - centre) @ rotation_from_euler(yaw, pitch, 0.0).T + centre
    src2 = np.concatenate([src3[:, :2], border])
    dst2 = np.concatenate([turned[:, :2].clip(0, image.shape[0] - 1), border])
    depth = np.concatenate([turned[:, 2], np.full(len(border), np.inf)])
    tri = triangles(src2, image.shape[0])
    tri = tri[np.argsort(-depth[tri].mean(axis=1), kind="stable")]   # farthest first
    mapx, mapy, label = piecewise_affine(dst2[tri], src2[tri], image.shape[:2])
    out = cv2.remap(image, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    new = turned[:len(pts3)].copy()
    seen = in_sight(new, dst2[tri], depth[tri], label)
    new[:, 2] -= new[:, 2].mean()
    return out, new[:, :np.shape(pts)[-1]], seen
