"""Smoothing landmark tracks over time without lag: the One Euro filter (Casiez, Roussel and Vogel, CHI 2012),
applied to a face's motion and to its shape apart.

The One Euro filter low-passes a signal by an exponential moving average whose cutoff frequency rises with the
signal's speed: at rest a low cutoff removes jitter, in motion a high one removes lag. Per frame, with ``te``
the time since the last frame and ``alpha(fc) = 1 / (1 + 1 / (2 pi fc te))``:

    dx      = (x - x_hat_prev) / te                     speed of the raw signal
    dx_hat  = alpha(d_cutoff) dx + (1 - alpha) dx_hat_prev
    cutoff  = min_cutoff + beta |dx_hat| / scale
    x_hat   = alpha(cutoff) x + (1 - alpha) x_hat_prev

``OneEuroFilter`` takes (N, D) arrays: |dx_hat| is the length of each row's first two components (a point's
image-plane velocity: x and y of a point share one cutoff, a depth follows them), divided by ``scale`` so that
``beta`` means the same for a small and a large face (speed in inter-ocular distances per second).

``FaceSmoother`` (what the tracker uses) splits each frame's points into a similarity (centre, scale, in-plane
angle: the head's motion, measured on all points at once, so little noise) and the shape in the face's own
frame (expression and per-point noise), filters each with its own One Euro settings and puts them back
together: the motion follows fast movement with a high ``beta`` while the shape, which moves only with
expression, is smoothed more. On validation clips this halved the jitter of moving faces that a per-point
filter barely lowered at the same lag (docs/video.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EuroSettings:
    """One One Euro filter's settings: cutoff at rest (Hz), cutoff gained per unit of speed, speed cutoff (Hz)."""

    min_cutoff: float
    beta: float
    d_cutoff: float = 1.0


# Chosen on validation clips made from training faces and on the validation talking-head clips, by the rule
# of tools/tune_smoothing.py (docs/runs/smoothing_grid.jsonl; docs/video.md).
MOTION = EuroSettings(0.5, 100.0, 1.0)
SHAPE = EuroSettings(0.3, 30.0, 1.0)


def alpha(cutoff: np.ndarray | float, te: float) -> np.ndarray:
    """The exponential smoothing factor of a first-order low-pass filter of ``cutoff`` Hz at period ``te`` s."""
    return 1.0 / (1.0 + 1.0 / (2.0 * np.pi * np.asarray(cutoff, dtype=np.float64) * te))


class OneEuroFilter:
    """One Euro filter of (N, D) arrays (D >= 2); ``__call__(x, t, scale)`` -> the filtered array."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> None:
        for name, v in (("min_cutoff", min_cutoff), ("beta", beta), ("d_cutoff", d_cutoff)):
            if not np.isfinite(v) or v < 0 or (v == 0 and name != "beta"):
                raise ValueError(f"{name} must be {'>= 0' if name == 'beta' else '> 0'}, not {v!r}")
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self.reset()

    def reset(self) -> None:
        self.x: np.ndarray | None = None
        self.dx: np.ndarray | None = None
        self.t: float | None = None

    def __call__(self, x: np.ndarray, t: float, scale: float = 1.0) -> np.ndarray:
        """The filtered value at time ``t`` (seconds, increasing); the first call returns its input."""
        x = np.asarray(x, dtype=np.float64)
        if self.x is None or self.t is None:
            self.x, self.dx, self.t = x.copy(), np.zeros_like(x), float(t)
            return x.copy()
        if t <= self.t:
            raise ValueError(f"time must increase: {t} after {self.t}")
        te = float(t) - self.t
        self.dx = self.dx + alpha(self.d_cutoff, te) * ((x - self.x) / te - self.dx)
        speed = np.linalg.norm(self.dx[..., :2], axis=-1, keepdims=True) / max(float(scale), 1e-9)
        self.x = self.x + alpha(self.min_cutoff + self.beta * speed, te) * (x - self.x)
        self.t = float(t)
        return self.x.copy()


class FaceSmoother:
    """Smooth one face's (N, D) points over time: its similarity motion and its shape apart (module docstring).

    ``eyes``: the indices of two points whose distance is the face's size unit (the inter-ocular distance).
    """

    def __init__(self, eyes: tuple[int, int], motion: EuroSettings = MOTION, shape: EuroSettings = SHAPE) -> None:
        self.eyes = eyes
        self.motion = OneEuroFilter(motion.min_cutoff, motion.beta, motion.d_cutoff)
        self.shape = OneEuroFilter(shape.min_cutoff, shape.beta, shape.d_cutoff)
        self.reset()

    def reset(self) -> None:
        self.motion.reset()
        self.shape.reset()
        self.ref: np.ndarray | None = None     # the first frame's shape: angles are measured against it
        self.radius = 1.0                      # the first frame's RMS radius: turns log-scale and angle to pixels
        self.angle = 0.0

    def __call__(self, points: np.ndarray, t: float) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64)
        centre = p[:, :2].mean(axis=0)
        d = p[:, :2] - centre
        radius = max(float(np.sqrt((d ** 2).sum(axis=1).mean())), 1e-9)
        if self.ref is None:
            self.ref, self.radius, self.angle = d / radius, radius, 0.0
        # the angle that best turns the reference shape onto this one (2D Procrustes), kept continuous
        a = float((self.ref * d).sum())
        b = float((self.ref[:, 0] * d[:, 1] - self.ref[:, 1] * d[:, 0]).sum())
        angle = np.arctan2(b, a)
        self.angle += (angle - self.angle + np.pi) % (2 * np.pi) - np.pi
        iod = max(float(np.linalg.norm(p[self.eyes[0], :2] - p[self.eyes[1], :2])), 1e-9)
        r0 = self.radius
        motion = self.motion(np.array([centre, [np.log(radius) * r0, self.angle * r0]]), t, scale=iod)
        c, s = np.cos(self.angle), np.sin(self.angle)
        shape = p / radius
        shape[:, :2] = (d / radius) @ np.array([[c, -s], [s, c]])        # turned back into the face's frame
        shape = self.shape(shape, t, scale=iod / radius)
        radius, angle = np.exp(motion[1, 0] / r0), motion[1, 1] / r0
        c, s = np.cos(angle), np.sin(angle)
        out = shape * radius
        out[:, :2] = radius * shape[:, :2] @ np.array([[c, s], [-s, c]]) + motion[0]
        return out
