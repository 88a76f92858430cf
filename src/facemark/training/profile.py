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

from ..core.pose import euler_from_rotation, fit_landmarks, rotation_from_euler
from ..core.points import xy
from ..core.shape3d import ANNOTATED, ShapeFit

BROWS = tuple(range(17, 27))
JAW = tuple(range(17))
FOREHEAD_RISE = 0.45     # forehead row above the brows, in model units (the mean shape has unit RMS radius)
RING_SCALE = 1.35        # ring of anchors around the face, relative to the face's extent
HIDDEN_DEPTH = 0.05      # a point is hidden behind a surface nearer than it by this share of the face's width


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
    tri = _triangles(src2, image.shape[0])
    tri = tri[np.argsort(-depth[tri].mean(axis=1), kind="stable")]   # farthest first
    mapx, mapy, label = _piecewise_affine(dst2[tri], src2[tri], image.shape[:2])
    out = cv2.remap(image, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    new = turned[:len(pts3)].copy()
    seen = _in_sight(new, dst2[tri], depth[tri], label)
    new[:, 2] -= new[:, 2].mean()
    return out, new[:, :np.shape(pts)[-1]], seen


def _in_sight(points: np.ndarray, tri2: np.ndarray, tri_depth: np.ndarray, label: np.ndarray) -> np.ndarray:
    """(P,) whether each turned 3D point is in sight: the triangle painted last at its pixel (``label``, an
    index into ``tri2`` (T, 3, 2) / ``tri_depth`` (T, 3)) is not nearer there than the point by more than
    ``HIDDEN_DEPTH`` of the face's width. Points over the border ring or no triangle are in sight."""
    h, w = label.shape
    px = np.clip(np.round(points[:, :2]).astype(int), 0, [w - 1, h - 1])
    k = label[px[:, 1], px[:, 0]]
    seen = np.ones(len(points), bool)
    for i in np.flatnonzero(k >= 0):
        z = tri_depth[k[i]]
        if not np.isfinite(z).all():
            continue
        a = np.column_stack([tri2[k[i]], np.ones(3)])          # barycentric weights of the point in the triangle
        try:
            bary = np.linalg.solve(a.T, np.append(points[i, :2], 1.0))
        except np.linalg.LinAlgError:
            continue
        seen[i] = points[i, 2] <= bary @ z + HIDDEN_DEPTH * np.ptp(points[:, 0])
    return seen


def _triangles(points: np.ndarray, side: int) -> np.ndarray:
    """Delaunay triangles (T, 3) of 2D points, as indices (those touching Subdiv2D's outer corners dropped)."""
    sub = cv2.Subdiv2D((-side, -side, 3 * side, 3 * side))
    sub.insert([(float(x), float(y)) for x, y in points])
    corners = sub.getTriangleList().reshape(-1, 2)
    dist = np.abs(corners[:, None, :] - points[None, :, :].astype(np.float32)).max(axis=2)
    idx = (len(points) - 1 - dist[:, ::-1].argmin(axis=1)).reshape(-1, 3)   # coinciding points: the last one
    found = (dist.min(axis=1) < 1e-3).reshape(-1, 3).all(axis=1)
    return idx[found].astype(np.int64)


def _piecewise_affine(dst: np.ndarray, src: np.ndarray,
                      shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """remap() maps sending the pixels inside each triangle ``dst[k]`` (T, 3, 2) to their places in ``src[k]``
    (its inverse affine map), and the index of the triangle each pixel took (-1: none); a later triangle covers
    an earlier one, and pixels no triangle covers stay put."""
    d = np.concatenate([dst, np.ones((len(dst), 3, 1))], axis=2)
    keep = np.abs(np.linalg.det(d)) >= 1e-6                       # degenerate triangles cover nothing
    label = np.full(shape, -1, np.int32)
    polys = np.round(dst * 16).astype(np.int32)                    # 4 fractional bits (shift=4)
    for k in np.flatnonzero(keep).tolist():
        cv2.fillConvexPoly(label, polys[k], k, cv2.LINE_8, 4)
    a = np.zeros((len(dst), 3, 2))
    a[keep] = np.linalg.solve(d[keep], src[keep])                  # (T, 3, 2): [x, y, 1] @ a = source point
    mapy, mapx = np.indices(shape, dtype=np.float32)
    ys, xs = np.nonzero(label >= 0)
    ak = a[label[ys, xs]]
    mapx[ys, xs] = xs * ak[:, 0, 0] + ys * ak[:, 1, 0] + ak[:, 2, 0]
    mapy[ys, xs] = xs * ak[:, 0, 1] + ys * ak[:, 1, 1] + ak[:, 2, 1]
    return mapx, mapy, label
