"""A 3D shape model of the 68 iBUG points, and its fit to 2D landmarks: 3D points, scale and rotation.

The model (``shape68.npz``, built by ``tools/build_shape_model.py`` from the fitted 3D faces of one half of
AFLW2000-3D) is a mean shape plus a linear basis of expression and identity directions, each direction with the
standard deviation of its coefficient. The model frame is the camera's for a frontal, upright face: x towards
the image's right (the subject's left), y down, z away from the camera; the mean shape has unit RMS radius.

The camera is scaled orthographic (weak perspective): ``image xy = scale * R[:2] @ X + t``. A fit therefore
does not depend on where the face sits in the photo or on the photo's size: the same face, panned, gets the same
rotation. Points on the jaw outline count less (2D annotations put them on the visible silhouette), and the
shape prior weighs more against a model's noisy points than against annotations (``FitSettings``).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

MODEL_FILE = Path(__file__).with_name("shape68.npz")
N_POINTS = 68
OUTLINE = tuple(range(17))   # iBUG-68 jaw
ITERATIONS = 6


@dataclass(frozen=True)
class FitSettings:
    """How much the jaw outline counts (annotations put it on the visible silhouette, which slides over the 3D
    face as it turns), and the landmark noise the shape prior is weighed against, as a fraction of the face's
    RMS radius (in these units the fit is the same at any face size and position)."""

    outline_weight: float
    noise: float


# Chosen on the model-building half of AFLW2000-3D (tools/build_shape_model.py prints both). Annotated points
# are precise: pose MAE from the 2D annotations was 3.43 / 3.32 / 3.31 degrees at outline weights 1 / 0.3 / 0.1
# (noise 0.015, about 1 px). A model's points are noisier: from those of hrnet68_lp's first stage, 5.81 at
# (0.3, 0.015) and 5.03 at (0.05, 0.2), where the shape bends less to follow their errors. From the third
# stage's (tools/experiments/pose_settings.py, a wider grid): 4.41 at (0.05, 0.2), 4.26 at (0.05, 1.0), then a plateau
# (4.25 at noise 3 and 10, where the fit is nearly the mean shape); 1.0 keeps the shape its freedom.
ANNOTATED = FitSettings(outline_weight=0.3, noise=0.015)   # training labels: lifting to 3D, face profiling
PREDICTED = FitSettings(outline_weight=0.05, noise=1.0)    # head pose and depth of a model's landmarks


@dataclass(frozen=True)
class ShapeModel:
    """``mean`` (68, 3), ``basis`` (K, 68, 3) orthonormal directions, ``std`` (K,) their coefficients' standard
    deviations; the first ``n_expression`` directions are expression, the rest identity."""

    mean: np.ndarray
    basis: np.ndarray
    std: np.ndarray
    n_expression: int

    def shapes(self, coeffs: np.ndarray) -> np.ndarray:
        """(F, 68, 3) model-frame shapes for (F, K) coefficients."""
        return self.mean + (coeffs @ self.basis.reshape(len(self.basis), -1)).reshape(len(coeffs), *self.mean.shape)


@lru_cache(maxsize=1)
def shape_model() -> ShapeModel:
    """The shipped model (loaded once)."""
    with np.load(MODEL_FILE) as z:
        return ShapeModel(z["mean"].astype(np.float64), z["basis"].astype(np.float64),
                          z["std"].astype(np.float64), int(z["n_expression"]))


@dataclass(frozen=True)
class ShapeFit:
    """A batch of F fits: ``rotation`` (F, 3, 3) model-to-camera, ``scale`` (F,) pixels per model unit,
    ``translation`` (F, 2) pixels, ``coeffs`` (F, K), ``points`` (F, 68, 3): the fitted face in the image (x, y
    its projection, z depth in pixels away from the camera, 0 at the 68 points' mean)."""

    rotation: np.ndarray
    scale: np.ndarray
    translation: np.ndarray
    coeffs: np.ndarray
    points: np.ndarray


def point_weights(outline_weight: float) -> np.ndarray:
    """Per-point weights of the fit: ``outline_weight`` on the jaw outline, 1 elsewhere."""
    w = np.ones(N_POINTS)
    w[list(OUTLINE)] = outline_weight
    return w


def _terms(m: ShapeModel, outline_weight: float) -> tuple[np.ndarray, np.ndarray]:
    """A model's constants of the fit for point weights w: ``gram`` (9, K*K), row (a, b) the K x K matrix
    sum_n w_n basis[:, n, a] basis[:, n, b]^T, and the weighted basis (K, N*3)."""
    wb = m.basis * point_weights(outline_weight)[None, :, None]
    return np.einsum("kna,lnb->abkl", wb, m.basis).reshape(9, -1), wb.reshape(len(m.basis), -1)


@lru_cache(maxsize=4)
def _normal_terms(outline_weight: float) -> tuple[np.ndarray, np.ndarray]:
    """``_terms`` of the shipped model (computed once per setting)."""
    return _terms(shape_model(), outline_weight)


def _camera(x: np.ndarray, shapes: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The weighted least-squares affine camera of each shape, made the nearest scaled rotation (by SVD)."""
    xm = w @ x / w.sum()
    sm = w @ shapes / w.sum()
    xc, sc = x - xm[:, None], shapes - sm[:, None]
    weighted = (sc * w[:, None]).transpose(0, 2, 1)        # (F, 3, N)
    affine = (weighted @ xc).transpose(0, 2, 1) @ np.linalg.inv(weighted @ sc)   # (F, 2, 3)
    u, sv, vt = np.linalg.svd(affine, full_matrices=False)
    r2 = u @ vt
    scale = sv.mean(axis=-1)
    t = xm - scale[:, None] * (r2 @ sm[..., None])[..., 0]
    return r2, scale, t


def fit_shape(points: np.ndarray, settings: FitSettings = PREDICTED, model: ShapeModel | None = None,
              iterations: int = ITERATIONS) -> ShapeFit:
    """Fit the shape model to (F, 68, 2) (or (68, 2)) image points: alternately the camera (scale, rotation,
    translation) and the coefficients (MAP under the model's Gaussian prior), both in closed form, with
    ``settings`` (``PREDICTED`` for a model's points, ``ANNOTATED`` for annotations). The points
    are first centred and scaled to unit RMS radius, so the fit does not depend on the face's place or size.
    Returns a batch of F fits in image pixels."""
    pts = np.asarray(points, dtype=np.float64)[..., :2]
    pts = pts[None] if pts.ndim == 2 else pts
    centre = pts.mean(axis=1, keepdims=True)
    radius = np.sqrt(((pts - centre) ** 2).sum(axis=2).mean(axis=1))[:, None, None]
    x = (pts - centre) / radius
    m = model or shape_model()
    w = point_weights(settings.outline_weight)
    gram, wbasis = _normal_terms(settings.outline_weight) if model is None else _terms(m, settings.outline_weight)
    k = len(m.std)
    coeffs = np.zeros((len(x), k))
    penalty = settings.noise ** 2 * np.diag(1.0 / m.std ** 2)
    for _ in range(iterations):
        r2, scale, t = _camera(x, m.shapes(coeffs), w)
        resid = x - t[:, None] - scale[:, None, None] * (m.mean @ r2.transpose(0, 2, 1))     # (F, N, 2)
        # the normal equations of the coefficients, with the Jacobian scale * basis @ r2.T folded into the
        # per-model constants: H = scale^2 sum_ab (r2.T r2)_ab gram[a, b], b = scale * wbasis @ (resid @ r2)
        h = (scale ** 2)[:, None] * ((r2.transpose(0, 2, 1) @ r2).reshape(-1, 9) @ gram)
        b = scale[:, None] * ((resid @ r2).reshape(len(x), -1) @ wbasis.T)
        coeffs = np.linalg.solve(h.reshape(-1, k, k) + penalty, b[..., None])[..., 0]
    shapes = m.shapes(coeffs)
    r2, scale, t = _camera(x, shapes, w)
    rot = np.concatenate([r2, np.cross(r2[:, 0], r2[:, 1])[:, None]], axis=1)
    cam = scale[:, None, None] * (shapes @ rot.transpose(0, 2, 1))
    cam[..., :2] += t[:, None]
    cam[..., 2] -= cam[..., 2].mean(axis=1, keepdims=True)
    cam *= radius
    cam[..., :2] += centre
    return ShapeFit(rot, scale * radius[:, 0, 0], t * radius[:, 0] + centre[:, 0], coeffs, cam)
