"""The Active Appearance Model (Cootes, Edwards and Taylor 1998; fitted as Matthews and Baker 2004 do): the
ASM's shape model plus a model of the whole face's appearance, fitted by analysis by synthesis.

- **Frame**: the mean shape (``core.asm``'s point distribution) drawn ``FRAME`` pixels wide; its Delaunay
  mesh (the shape model's frontal triangles, ``core.mesh``) maps every frame pixel inside the face to a
  triangle and barycentric weights, so a shape gives a piecewise-affine warp from the frame to the image.
- **Appearance**: each training face warped into the frame as image gradient orientations (``orientations``:
  the classic grey levels, even normalised, fitted unseen people poorly), its mean A0 and principal
  components keeping ``APPEARANCE`` of the variance.
- **Shape parameters**: the four similarity directions of the mean shape (scale-rotation and translation)
  and the shape modes, orthonormalised together, so pose and shape are one linear basis.
- **Fitting**: the project-out inverse compositional algorithm. The steepest-descent images (the gradient of
  A0 times the warp's Jacobian for each basis direction) are computed once, with the appearance components
  projected out, and so is their Hessian; each iteration warps the image into the frame with the current
  shape, solves for the parameter step from the projected-out error, and composes the inverse of that step
  with the current warp (its first-order form: the frame's vertices moved back by the step, mapped through
  the current warp's triangles). The shape is then kept plausible (``core.asm.constrain``). Coarse to fine:
  ``LEVELS`` frames, each half the previous width.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .asm import ActiveShapeModel, constrain, point_distribution
from .mesh import frontal_triangles, paint

# settings chosen on a quarter of the HELEN training faces held out (tools/experiments/classical_try.py aam --set ...)
FRAME = 64          # width in pixels of the finest frame's mean face
LEVELS = 3          # frames, each half the previous width; fitting runs coarsest first
ITERATIONS = 15     # fitting iterations per level (at most: a step that does not lower the error ends it)
APPEARANCE = 0.3    # share of the appearance variance the kept components explain (projected out of the
                    # error; more leaves the steepest-descent images too little to see)
BLUR = 1.0          # Gaussian blur of the grey crop, in finest-frame pixels
STEPS = (1.0, 0.5, 0.25)  # step sizes tried along each Gauss-Newton step (the error must fall, else stop)
SHAPE_MODES = 10   # shape modes fitted (the point distribution's first ones)
DAMPING = 0.3       # added to the Hessian's diagonal, times its mean: the step stays small where the error is
                    # ambiguous


@dataclass(frozen=True)
class Frame:
    """One frame: ``vertices`` (V, 2) the mean face in frame pixels, ``pixels`` (P, 2) the frame pixels inside the
    mesh, ``corners`` (P, 3) the vertices of their triangle, ``bary`` (P, 3) their barycentric weights, ``shape``
    (H, W) its size."""

    vertices: np.ndarray
    pixels: np.ndarray
    corners: np.ndarray
    bary: np.ndarray
    shape: tuple[int, int]


def make_frame(mean: np.ndarray, triangles: np.ndarray, width: int) -> Frame:
    """The frame of a (V, 2) unit-RMS mean shape drawn ``width`` pixels wide (2 pixels of margin)."""
    lo = mean.min(axis=0)
    scale = (width - 5) / np.ptp(mean[:, 0])
    vertices = (mean - lo) * scale + 2.0
    h, w = int(np.ceil(vertices[:, 1].max())) + 3, width
    label = paint(vertices[triangles], (h, w))
    ys, xs = np.nonzero(label >= 0)
    pixels = np.stack([xs, ys], axis=1).astype(np.float64)
    tri = label[ys, xs]
    corners = triangles[tri]
    t = np.concatenate([vertices[corners], np.ones((len(tri), 3, 1))], axis=2)  # rows [x y 1] per corner
    bary = np.linalg.solve(np.swapaxes(t, 1, 2), np.concatenate([pixels, np.ones((len(tri), 1))], axis=1)[..., None])[..., 0]
    return Frame(vertices, pixels, corners, bary, (h, w))


def warp_to_frame(image: np.ndarray, shape: np.ndarray, frame: Frame) -> np.ndarray:
    """(C * P,) the (H, W, C) feature image sampled (bilinear) at the frame's pixels carried onto the image by the
    piecewise-affine warp whose vertices are at ``shape`` (V, 2, image pixels), channel after channel."""
    at = np.einsum("pk,pkd->pd", frame.bary, shape[frame.corners]).astype(np.float32)
    out = cv2.remap(image, at[:, None, 0].copy(), at[:, None, 1].copy(), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(len(at), -1).T.ravel()


def orientations(crop: np.ndarray, blur: float) -> np.ndarray:
    """(H, W, 2) image gradient orientations (cos, sin) of the blurred grey crop: the IGO features of
    Tzimiropoulos et al. 2012, unit vectors that ignore lighting and contrast (a grey-level appearance model
    fitted to unseen people drifts away from the face here: ``docs/results.md``)."""
    grey = cv2.GaussianBlur(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), blur)
    gx, gy = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    angle = np.arctan2(gy, gx)
    return np.stack([np.cos(angle), np.sin(angle)], axis=-1)


@dataclass(frozen=True)
class AppearanceLevel:
    """One level's model: its frame, mean appearance ``a0`` (P,), components ``a`` (M, P) orthonormal, and the
    fitting's precomputed ``descent`` (K, P) (projected-out steepest-descent images) and inverse Hessian (K, K)."""

    frame: Frame
    a0: np.ndarray
    a: np.ndarray
    descent: np.ndarray
    inv_hessian: np.ndarray


@dataclass(frozen=True)
class ActiveAppearanceModel:
    """A built AAM for ``size`` x ``size`` crops: the point distribution (``mean``, ``modes``, ``sd``), the mean
    shape ``init`` (N, 2, crop pixels), the mesh ``triangles``, one ``AppearanceLevel`` per frame, finest first,
    and the ``starter`` whose answer the fit starts from (an ASM: the AAM "with good initialisation" of the
    literature; None: from ``init``)."""

    size: int
    mean: np.ndarray
    modes: np.ndarray
    sd: np.ndarray
    init: np.ndarray
    triangles: np.ndarray
    levels: list[AppearanceLevel]
    starter: ActiveShapeModel | None = None

    @property
    def input_size(self) -> int:
        return self.size

    def fit(self, crop: np.ndarray, start: np.ndarray | None = None) -> np.ndarray:
        """(N, 2) the points of the face in an RGB uint8 crop, fitted from ``start`` (default: the starter's
        answer, or the mean shape)."""
        if start is None:
            start = self.init if self.starter is None else self.starter.fit(crop)
        shape = start.astype(np.float64)
        for lv in reversed(self.levels):
            scale = lv.frame.vertices.std() / shape.std()            # image pixels -> this frame's pixels
            image = orientations(crop, max(BLUR / scale, 0.5))
            basis = shape_basis(lv.frame.vertices, self.modes)
            error = self._residual(image, shape, lv)
            for _ in range(ITERATIONS):
                step = lv.inv_hessian @ (lv.descent @ error)                       # (K,)
                best = None
                for size in STEPS:    # a line search along the step: the error must fall
                    moved = lv.frame.vertices - size * np.tensordot(step, basis, axes=1)   # the inverse step
                    candidate = constrain(compose(moved, lv.frame.vertices, shape, self.triangles),
                                          self.mean, self.modes, self.sd)
                    residual = self._residual(image, candidate, lv)
                    if best is None or residual @ residual < best[1] @ best[1]:
                        best = (candidate, residual)
                if best[1] @ best[1] >= error @ error:
                    break
                shape, error = best
        return shape

    @staticmethod
    def _residual(image: np.ndarray, shape: np.ndarray, lv: AppearanceLevel) -> np.ndarray:
        """The appearance error of ``shape`` with the appearance components projected out (what the fit lowers)."""
        e = warp_to_frame(image, shape, lv.frame) - lv.a0
        return e - (e @ lv.a.T) @ lv.a

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """(B, S, S, 3) RGB uint8 crops -> (B, N, 2) points in crop pixels (a ``CropPredictor``)."""
        return np.stack([self.fit(c) for c in crops]) if len(crops) else np.zeros((0, len(self.mean), 2))

    def save(self, path: Path) -> None:
        arrays = {"kind": np.array("aam"), "size": np.int32(self.size), "mean": self.mean, "modes": self.modes,
                  "sd": self.sd, "init": self.init, "triangles": self.triangles}
        for k, lv in enumerate(self.levels):
            arrays.update({f"a0_{k}": lv.a0.astype(np.float32), f"a_{k}": lv.a.astype(np.float16),
                           f"width_{k}": np.int32(lv.frame.shape[1])})
        if self.starter is not None:
            arrays.update({f"start_{k}": v for k, v in self.starter.arrays().items()})
        np.savez_compressed(path, **arrays)

    @classmethod
    def from_arrays(cls, z) -> "ActiveAppearanceModel":
        mean, modes, tris = z["mean"], z["modes"], z["triangles"]
        levels = [appearance_level(make_frame(mean, tris, int(z[f"width_{k}"])), z[f"a0_{k}"].astype(np.float64),
                                   z[f"a_{k}"].astype(np.float64), modes)
                  for k in range(sum(1 for name in z if name.startswith("a0_")))]
        start = {k[len("start_"):]: z[k] for k in z if k.startswith("start_")}
        return cls(int(z["size"]), mean, modes, z["sd"], z["init"], tris, levels,
                   ActiveShapeModel.from_arrays(start) if start else None)


def shape_basis(vertices: np.ndarray, modes: np.ndarray) -> np.ndarray:
    """(K, V, 2) orthonormal directions of the frame's shape: the similarity's four (scale-rotation, shifts)
    then the shape modes (in frame pixels), orthonormalised together."""
    c = vertices - vertices.mean(axis=0)
    sim = [c, np.stack([-c[:, 1], c[:, 0]], axis=1), np.tile([1.0, 0.0], (len(c), 1)),
           np.tile([0.0, 1.0], (len(c), 1))]
    flat = np.stack([b.ravel() for b in sim] + [m.ravel() for m in modes], axis=1)
    q, _ = np.linalg.qr(flat)
    return q.T.reshape(-1, *vertices.shape)


def compose(moved: np.ndarray, vertices: np.ndarray, shape: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(V, 2) frame points ``moved`` carried onto the image by the current warp (frame ``vertices`` -> image
    ``shape``): each through the affine maps of the triangles around its vertex, averaged."""
    src = np.concatenate([vertices[triangles], np.ones((len(triangles), 3, 1))], axis=2)   # (T, 3, 3)
    affine = np.linalg.solve(src, shape[triangles])                                         # (T, 3, 2)
    out = np.zeros_like(moved)
    count = np.zeros(len(moved))
    for corner in range(3):
        v = triangles[:, corner]
        mapped = np.einsum("tk,tkd->td", np.concatenate([moved[v], np.ones((len(v), 1))], axis=1), affine)
        np.add.at(out, v, mapped)
        np.add.at(count, v, 1.0)
    return out / np.maximum(count, 1.0)[:, None]


def appearance_level(frame: Frame, a0: np.ndarray, a: np.ndarray, modes: np.ndarray) -> AppearanceLevel:
    """A level's fitting terms from its appearance model: the steepest-descent images of every shape direction
    with the appearance components projected out, and the inverse of their Hessian."""
    h, w = frame.shape
    xs, ys = frame.pixels[:, 0].astype(int), frame.pixels[:, 1].astype(int)
    mask = np.zeros((h, w), np.float32)
    mask[ys, xs] = 1.0
    basis = shape_basis(frame.vertices, modes)                                  # (K, V, 2)
    jac = np.einsum("pk,jpkd->jpd", frame.bary, basis[:, frame.corners])        # (K, P, 2)
    parts = []
    for channel in a0.reshape(-1, len(xs)):
        image = np.zeros((h, w), np.float32)
        image[ys, xs] = channel
        # outside the face, the nearby face's values (a blur normalised by the mask's), so the edge has no step
        filled = cv2.GaussianBlur(image, (0, 0), 2.0) / np.maximum(cv2.GaussianBlur(mask, (0, 0), 2.0), 1e-6)
        image = np.where(mask > 0, image, filled)
        gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3)[ys, xs] / 8.0
        gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3)[ys, xs] / 8.0
        parts.append(jac[..., 0] * gx + jac[..., 1] * gy)                       # (K, P)
    sd = np.concatenate(parts, axis=1)
    sd = sd - (sd @ a.T) @ a
    hessian = sd @ sd.T
    damping = DAMPING * np.trace(hessian) / len(hessian)    # Levenberg-Marquardt: directions the projected-out
    return AppearanceLevel(frame, a0, a, sd, np.linalg.inv(hessian + damping * np.eye(len(hessian))))  # images barely see


def build_aam(crops: list[np.ndarray], points: np.ndarray, size: int,
              starter: ActiveShapeModel | None = None) -> ActiveAppearanceModel:
    """The AAM of training ``crops`` (RGB uint8, ``size`` x ``size``) with their (M, N, 2) crop-pixel points,
    fitted from ``starter``'s answers (None: from the mean shape)."""
    mean, modes, sd = point_distribution(points)
    modes, sd = modes[:SHAPE_MODES], sd[:SHAPE_MODES]
    triangles = frontal_triangles()
    levels = []
    for k in range(LEVELS):
        frame = make_frame(mean, triangles, FRAME // 2 ** k)
        samples = []
        for crop, pts in zip(crops, points):
            scale = frame.vertices.std() / pts.std()
            samples.append(warp_to_frame(orientations(crop, max(BLUR / scale, 0.5)), pts, frame))
        x = np.stack(samples)
        a0 = x.mean(axis=0)
        _, s, vt = np.linalg.svd(x - a0, full_matrices=False)
        m = int(np.searchsorted(np.cumsum(s ** 2) / (s ** 2).sum(), APPEARANCE) + 1)
        levels.append(appearance_level(frame, a0, vt[:m], modes))
    return ActiveAppearanceModel(size, mean, modes, sd, points.mean(axis=0), triangles, levels, starter)
