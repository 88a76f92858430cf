"""Triangle meshes on image points: Delaunay triangles, the piecewise-affine warp that moves each triangle, and
which 3D points a nearer part of the mesh hides (a z-buffer at the points: the painter's order the warp uses).
Face profiling (``training.profile``) renders turned faces with them; the visibility check labels the
self-occlusion of AFLW2000-3D's fitted 3D faces with them.
"""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from .shape3d import shape_model

HIDDEN_DEPTH = 0.05      # a point is hidden behind a surface nearer than it by this share of the face's width


def in_sight(points: np.ndarray, tri2: np.ndarray, tri_depth: np.ndarray, label: np.ndarray) -> np.ndarray:
    """(P,) whether each 3D point (x, y in pixels, z away from the camera) is in sight: the triangle painted
    last at its pixel (``label``, an index into ``tri2`` (T, 3, 2) / ``tri_depth`` (T, 3)) is not nearer there
    than the point by more than ``HIDDEN_DEPTH`` of the points' width. Points over no triangle, or over one
    with a vertex at infinite depth (a fixed border), are in sight."""
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


def self_occlusion(points: np.ndarray) -> np.ndarray:
    """(P,) whether each of a face's 68 iBUG 3D points (x, y in pixels, z away from the camera) is in sight of
    the camera, with the face surface taken as the mesh of the points themselves: the triangles of the shape
    model's frontal mean face (``frontal_triangles``: a triangulation of the turned points would never overlap
    itself, so it could hide nothing), painted farthest first."""
    lo = np.floor(points[:, :2].min(axis=0)) - 2
    local = points - np.append(lo, 0.0)
    side = int(np.ceil(local[:, :2].max())) + 3
    tri = frontal_triangles()
    tri = tri[np.argsort(-local[tri, 2].mean(axis=1), kind="stable")]
    label = paint(local[tri, :2], (side, side))
    return in_sight(local, local[tri, :2], local[tri, 2], label)


@lru_cache(maxsize=1)
def frontal_triangles() -> np.ndarray:
    """(T, 3) Delaunay triangles of the shape model's mean face seen from the front: one surface for the 68
    iBUG points in any pose."""
    mean = shape_model().mean[:, :2]
    pix = (mean - mean.min(axis=0)) / np.ptp(mean, axis=0).max() * 500.0
    return triangles(pix, 501)


def paint(tri2: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) the index of the triangle (T, 3, 2) painted last at each pixel, in order (-1: none; degenerate
    triangles paint nothing)."""
    d = np.concatenate([tri2, np.ones((len(tri2), 3, 1))], axis=2)
    label = np.full(shape, -1, np.int32)
    polys = np.round(tri2 * 16).astype(np.int32)                   # 4 fractional bits (shift=4)
    for k in np.flatnonzero(np.abs(np.linalg.det(d)) >= 1e-6).tolist():
        cv2.fillConvexPoly(label, polys[k], k, cv2.LINE_8, 4)
    return label


def triangles(points: np.ndarray, side: int) -> np.ndarray:
    """Delaunay triangles (T, 3) of 2D points, as indices (those touching Subdiv2D's outer corners dropped)."""
    sub = cv2.Subdiv2D((-side, -side, 3 * side, 3 * side))
    sub.insert([(float(x), float(y)) for x, y in points])
    corners = sub.getTriangleList().reshape(-1, 2)
    dist = np.abs(corners[:, None, :] - points[None, :, :].astype(np.float32)).max(axis=2)
    idx = (len(points) - 1 - dist[:, ::-1].argmin(axis=1)).reshape(-1, 3)   # coinciding points: the last one
    found = (dist.min(axis=1) < 1e-3).reshape(-1, 3).all(axis=1)
    return idx[found].astype(np.int64)


def piecewise_affine(dst: np.ndarray, src: np.ndarray,
                      shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """remap() maps sending the pixels inside each triangle ``dst[k]`` (T, 3, 2) to their places in ``src[k]``
    (its inverse affine map), and the index of the triangle each pixel took (-1: none); a later triangle covers
    an earlier one, and pixels no triangle covers stay put."""
    d = np.concatenate([dst, np.ones((len(dst), 3, 1))], axis=2)
    keep = np.abs(np.linalg.det(d)) >= 1e-6                       # degenerate triangles cover nothing
    label = paint(dst, shape)
    a = np.zeros((len(dst), 3, 2))
    a[keep] = np.linalg.solve(d[keep], src[keep])                  # (T, 3, 2): [x, y, 1] @ a = source point
    mapy, mapx = np.indices(shape, dtype=np.float32)
    ys, xs = np.nonzero(label >= 0)
    ak = a[label[ys, xs]]
    mapx[ys, xs] = xs * ak[:, 0, 0] + ys * ak[:, 1, 0] + ak[:, 2, 0]
    mapy[ys, xs] = xs * ak[:, 0, 1] + ys * ak[:, 1, 1] + ak[:, 2, 1]
    return mapx, mapy, label
