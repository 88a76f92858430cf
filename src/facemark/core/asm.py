"""The Active Shape Model (Cootes et al. 1995), the seed's first classical method: a point distribution model
(PDM: Procrustes-aligned training shapes, their mean and principal modes) searched with grey-level profile
models of each point, coarse to fine.

Both directions live here, as a codec's do: ``build_asm`` makes the model from training crops, ``ActiveShapeModel``
fits it to new ones. Everything happens in the model crop of ``core.crop`` (the face framed from a box, as the
deep models see it), so the ASM answers the same ``CropPredictor`` calls; its search starts from the mean
training shape in that frame.

- **PDM**: generalised Procrustes analysis, PCA keeping ``VARIANCE`` of the aligned shapes' variance, mode
  coefficients clamped to +-``CLAMP`` standard deviations.
- **Profiles**: Cootes' profiles are 1D, sampled along each point's normal. Here they are 2D: the x and y
  grey-level derivatives in a (2 ``HALF`` + 1)^2 patch around the point, mean-free and unit-norm, modelled per
  point and pyramid level by their mean and covariance, compared by Mahalanobis distance (a probabilistic PCA
  of ``COMPONENTS`` directions plus an isotropic rest, so the model ships in 2 MB). Why 2D: from the mean
  shape in a face box (17.2% NME on held-out HELEN faces), a search that moves each point only along its
  normal stops at 7.1% even when told the true position along the normal, against 1.0% moving in x and y
  (``tools/experiments/asm_search.py``): the start is off along the contours as much as across them.
- **Search**: ``LEVELS`` pyramid levels, coarsest first, ``ITERATIONS`` times each: every point moves to the
  offset within +-``SEARCH`` pixels (x and y) whose patch is nearest its model, then the PDM takes the moved
  points to the nearest plausible shape (a similarity, clamped modes).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .align import umeyama

HALF = 4           # patch half-side: 9 x 9 samples of x and y derivatives
SEARCH = 1         # offsets tried either side (x and y) per iteration: a 3 x 3 neighbourhood
LEVELS = 4         # pyramid levels (each half the previous): 128, 64, 32, 16 px for a 128 px crop
ITERATIONS = 4     # search iterations per level (4 scored better than 8 on validation, at half the time)
CLAMP = 3.0        # mode coefficients within this many standard deviations
VARIANCE = 0.98    # share of the aligned shapes' variance the kept modes explain
COMPONENTS = 24    # profile model directions per point and level (the rest: one shared variance)
RIDGE = 0.5        # added to every profile variance, times their mean: the Mahalanobis distance leans to
                   # Euclidean where few training patches pin a direction down
BLUR = 1.0         # Gaussian blur (pixels) of the grey crop before differentiation


def similarity(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The least-squares similarity taking (N, 2) ``src`` to ``dst``: (2, 2) scaled rotation and (2,) shift (the
    closed form of 2D Procrustes: with centred points as complex numbers, s e^(i theta) = sum conj(a) b / sum |a|^2)."""
    ca, cb = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - ca, dst - cb
    norm = (a * a).sum()
    c = ((a * b).sum()) / norm                                   # Re(conj(a) b) / |a|^2
    s = ((a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]).sum()) / norm    # Im(conj(a) b) / |a|^2
    m = np.array([[c, -s], [s, c]])
    return m, cb - ca @ m.T


def constrain(points: np.ndarray, mean: np.ndarray, modes: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """The plausible shape nearest ``points`` (N, 2) under a point distribution model: a similarity of mean +
    modes @ b, |b| <= CLAMP sd (alternating: the similarity to the current shape, then the modes of the points
    in its frame)."""
    flat = modes.reshape(len(modes), -1)
    shape = mean
    for _ in range(3):
        scale_rot, shift = similarity(shape, points)
        local = (points - shift) @ np.linalg.inv(scale_rot).T
        b = np.clip(flat @ (local - mean).ravel(), -CLAMP * sd, CLAMP * sd)
        shape = mean + (b @ flat).reshape(mean.shape)
    scale_rot, shift = similarity(shape, points)
    return shape @ scale_rot.T + shift


def to_grey(crop: np.ndarray) -> np.ndarray:
    """An RGB uint8 crop as float32 grey, lightly smoothed (sensor noise would dominate the derivatives)."""
    return cv2.GaussianBlur(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), BLUR)


def gradient_pyramid(crop: np.ndarray, levels: int = LEVELS) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per level, finest first, the (x, y) Sobel derivatives of the grey crop (each level half the previous,
    by area averaging)."""
    grey, out = to_grey(crop), []
    for _ in range(levels):
        out.append((cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)))
        grey = cv2.resize(grey, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    return out


def at_level(points: np.ndarray, level: int) -> np.ndarray:
    """Pixel-centre coordinates at pyramid ``level`` of points given at level 0."""
    return (points + 0.5) / 2 ** level - 0.5


def patches(gradients: tuple[np.ndarray, np.ndarray], points: np.ndarray, half: int) -> np.ndarray:
    """(N, T, T, 2) the derivatives sampled (bilinear) on a T = 2 ``half`` + 1 grid centred on each point."""
    t = np.arange(-half, half + 1, dtype=np.float32)
    n, size = len(points), len(t)
    xs = np.broadcast_to(points[:, 0, None, None] + t[None, None, :], (n, size, size))
    ys = np.broadcast_to(points[:, 1, None, None] + t[None, :, None], (n, size, size))
    maps = [m.reshape(n * size, size).astype(np.float32) for m in (xs, ys)]
    return np.stack([cv2.remap(g, *maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).reshape(n, size, size)
                     for g in gradients], axis=-1)


def describe(patch: np.ndarray) -> np.ndarray:
    """(..., T, T, 2) patches -> (..., 2 T^2) profiles: flattened, mean-free, unit norm (contrast-invariant)."""
    f = patch.reshape(*patch.shape[:-3], -1)
    f = f - f.mean(axis=-1, keepdims=True)
    return f / (np.linalg.norm(f, axis=-1, keepdims=True) + 1e-6)


@dataclass(frozen=True)
class ActiveShapeModel:
    """A built ASM for ``size`` x ``size`` crops: the PDM (``mean`` (N, 2) at unit RMS radius, ``modes`` (K, N, 2)
    unit directions, ``sd`` (K,) their standard deviations), the search's start ``init`` (N, 2, crop pixels), and
    per level and point the profile model: ``profile_mean`` (L, N, D), ``profile_axes`` (L, N, C, D) principal
    directions scaled by sqrt(1 / rest - 1 / variance), ``profile_rest`` (L, N) the variance outside them."""

    size: int
    mean: np.ndarray
    modes: np.ndarray
    sd: np.ndarray
    init: np.ndarray
    profile_mean: np.ndarray
    profile_axes: np.ndarray
    profile_rest: np.ndarray

    def constrain(self, points: np.ndarray) -> np.ndarray:
        return constrain(points, self.mean, self.modes, self.sd)

    def distances(self, level: int, profiles: np.ndarray) -> np.ndarray:
        """(N, O) Mahalanobis distances of (N, O, D) profiles to each point's model at ``level``: |d|^2 / rest
        less what the principal directions explain better, (a . d)^2 with a = u sqrt(1/rest - 1/v)."""
        d = (profiles - self.profile_mean[level][:, None]).astype(np.float32)
        along = np.matmul(d, np.swapaxes(self.profile_axes[level], 1, 2))              # (N, O, C)
        return (d * d).sum(-1) / self.profile_rest[level][:, None] - (along * along).sum(-1)

    def fit(self, crop: np.ndarray, start: np.ndarray | None = None) -> np.ndarray:
        """(N, 2) the points of the face in an RGB uint8 ``size`` x ``size`` crop, searched from ``start``
        (default: the mean training shape in the crop)."""
        grads = gradient_pyramid(crop, len(self.profile_mean))
        points = (self.init if start is None else start).astype(np.float64)
        half = int(round((np.sqrt(self.profile_mean.shape[-1] / 2) - 1) / 2))
        side = 2 * half + 1
        offsets = np.array([(dx, dy) for dy in range(-SEARCH, SEARCH + 1) for dx in range(-SEARCH, SEARCH + 1)],
                           dtype=np.float64)
        for level in reversed(range(len(grads))):
            for _ in range(ITERATIONS):
                big = patches(grads[level], at_level(points, level), half + SEARCH)
                windows = np.stack([big[:, SEARCH + int(dy):SEARCH + int(dy) + side,
                                        SEARCH + int(dx):SEARCH + int(dx) + side] for dx, dy in offsets], axis=1)
                best = offsets[np.argmin(self.distances(level, describe(windows)), axis=1)]
                points = self.constrain(points + best * 2 ** level)
        return points

    @property
    def input_size(self) -> int:
        return self.size

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """(B, S, S, 3) RGB uint8 crops -> (B, N, 2) points in crop pixels (a ``CropPredictor``)."""
        return np.stack([self.fit(c) for c in crops]) if len(crops) else np.zeros((0, len(self.mean), 2))

    def arrays(self) -> dict[str, np.ndarray]:
        """What ``save`` writes (the profile models in float16: 2 MB)."""
        return {"kind": np.array("asm"), "size": np.int32(self.size), "mean": self.mean, "modes": self.modes,
                "sd": self.sd, "init": self.init, "profile_mean": self.profile_mean.astype(np.float16),
                "profile_axes": self.profile_axes.astype(np.float16),
                "profile_rest": self.profile_rest.astype(np.float32)}

    @classmethod
    def from_arrays(cls, z) -> "ActiveShapeModel":
        return cls(int(z["size"]), z["mean"], z["modes"], z["sd"], z["init"],
                   *(z[k].astype(np.float32) for k in ("profile_mean", "profile_axes", "profile_rest")))

    def save(self, path: Path) -> None:
        np.savez_compressed(path, **self.arrays())


def procrustes(shapes: np.ndarray, iterations: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Generalised Procrustes analysis of (M, N, 2) shapes: their mean (centred, unit RMS radius) and each shape
    aligned to it by a similarity (M, N, 2)."""
    mean = shapes[0] - shapes[0].mean(axis=0)
    mean /= np.sqrt((mean ** 2).sum(axis=1).mean())
    for _ in range(iterations):
        aligned = np.stack([s @ (m := umeyama(s, mean))[:, :2].T + m[:, 2] for s in shapes])
        mean = aligned.mean(axis=0)
        mean -= mean.mean(axis=0)
        mean /= np.sqrt((mean ** 2).sum(axis=1).mean())
    return mean, aligned


def point_distribution(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The PDM of (M, N, 2) shapes: mean, (K, N, 2) modes keeping ``VARIANCE`` of the variance, (K,) their sd."""
    mean, aligned = procrustes(points)
    dev = (aligned - mean).reshape(len(aligned), -1)
    _, s, vt = np.linalg.svd(dev, full_matrices=False)
    var = s ** 2 / len(dev)
    k = int(np.searchsorted(np.cumsum(var) / var.sum(), VARIANCE) + 1)
    return mean, vt[:k].reshape(k, *mean.shape), np.sqrt(var[:k])


def profile_model(profiles: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per point, of (M, N, D) training profiles: the mean (N, D), the scaled axes (N, C, D) and the rest (N,) of
    a probabilistic PCA with ``COMPONENTS`` directions (variances raised by ``RIDGE`` times their mean)."""
    mean = profiles.mean(axis=0)
    d = profiles - mean
    cov = np.einsum("mni,mnj->nij", d, d) / len(profiles)
    val, vec = np.linalg.eigh(cov)                                      # ascending
    val = val + RIDGE * val.mean(axis=1, keepdims=True)
    c = min(COMPONENTS, val.shape[1] - 1)
    top, axes = val[:, ::-1][:, :c], np.swapaxes(vec[:, :, ::-1][:, :, :c], 1, 2)   # (N, C), (N, C, D)
    rest = val[:, :-c].mean(axis=1)
    scale = np.sqrt(np.maximum(1.0 / rest[:, None] - 1.0 / top, 0.0))   # what the axes take off |d|^2 / rest
    return mean, axes * scale[..., None], rest


def build_asm(crops: list[np.ndarray], points: np.ndarray, size: int) -> ActiveShapeModel:
    """The ASM of training ``crops`` (RGB uint8, ``size`` x ``size``) with their (M, N, 2) crop-pixel points."""
    mean, modes, sd = point_distribution(points)
    samples: list[list[np.ndarray]] = [[] for _ in range(LEVELS)]
    for crop, pts in zip(crops, points):
        for level, grads in enumerate(gradient_pyramid(crop)):
            samples[level].append(describe(patches(grads, at_level(pts, level), HALF)))
    models = [profile_model(np.stack(s)) for s in samples]
    return ActiveShapeModel(size, mean, modes, sd, points.mean(axis=0),
                            *(np.stack([m[k] for m in models]) for k in range(3)))
