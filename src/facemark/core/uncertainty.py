"""Per-point uncertainty: each landmark's expected error in pixels, read from the heatmap and calibrated.

A heatmap model's output says how sure it is of each point: a tall, narrow peak where the point is clear, a low
or spread one where it is hidden, blurred or guessed. ``HeatmapCodec.point_features`` measures both (the spread
around the peak in crop pixels, and the peak's height); a ``Calibration`` fitted on validation faces
(``tools/calibrate_uncertainty.py``, stored in the model's card) turns them into the expected distance between
the returned point and the true one:

    expected error (crop pixels) = exp(c0 + c1 log(spread + 0.5) + c2 log(peak clipped to [0.01, 1]))

with each feature first clipped to the range (1st to 99th percentile) it had on the calibration faces, so that
the fit never extrapolates (the spread saturates at the window's edge, where a log-linear fit would explode).

A face's ``quality`` is 1 - (its mean expected error over its landmark box's size, sqrt(w h)) / 0.1, clipped to
[0, 1]: 1 for a face the model is sure of, 0 at an expected error of a tenth of the face's size (about twice the
usual failure threshold of 10% of the inter-ocular distance on a frontal face; the box's size, unlike the eye
distance, does not shrink as a face turns away).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FAILURE = 0.1   # the expected NME (over the landmark box's size) at which a face's quality reaches 0


def _design(features: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    f = np.clip(np.asarray(features, dtype=np.float64), low, high)
    return np.stack([np.ones(f.shape[:-1]), np.log(f[..., 0] + 0.5), np.log(np.clip(f[..., 1], 0.01, 1.0))], -1)


@dataclass(frozen=True)
class Calibration:
    """Coefficients of the expected-error model and the features' range (module docstring)."""

    coef: tuple[float, float, float]
    low: tuple[float, float]
    high: tuple[float, float]

    def expected_error(self, features: np.ndarray) -> np.ndarray:
        """(..., N) expected error in crop pixels from (..., N, 2) point features."""
        return np.exp(_design(features, np.array(self.low), np.array(self.high)) @ np.asarray(self.coef))

    def to_card(self) -> dict:
        r = lambda v: [round(float(c), 6) for c in v]   # noqa: E731
        return {"method": "heatmap spread and peak, log-linear", "coef": r(self.coef), "low": r(self.low),
                "high": r(self.high)}

    @classmethod
    def from_card(cls, entry: dict | None) -> Calibration | None:
        if not entry:
            return None
        return cls(*(tuple(float(c) for c in entry[k]) for k in ("coef", "low", "high")))


def fit_calibration(features: np.ndarray, errors: np.ndarray) -> Calibration:
    """Least squares of log(error) on the (clipped) features, then a constant so that the mean expected error
    equals the mean actual error on these points (an expected distance, not a median)."""
    f = np.asarray(features, dtype=np.float64).reshape(-1, 2)
    low, high = np.percentile(f, 1, axis=0), np.percentile(f, 99, axis=0)
    x = _design(f, low, high)
    y = np.log(np.maximum(np.asarray(errors, dtype=np.float64).reshape(-1), 0.05))
    coef = np.linalg.lstsq(x, y, rcond=None)[0]
    coef[0] += np.log(np.exp(y).mean() / np.exp(x @ coef).mean())
    return Calibration(tuple(float(c) for c in coef), tuple(float(v) for v in low), tuple(float(v) for v in high))


def face_quality(uncertainty: np.ndarray, size: np.ndarray | float) -> np.ndarray:
    """Quality in [0, 1] from (..., N) expected point errors and the face's size (sqrt of its landmark box's
    area, pixels)."""
    predicted_nme = np.asarray(uncertainty).mean(axis=-1) / np.maximum(np.asarray(size, dtype=np.float64), 1e-9)
    return np.clip(1.0 - predicted_nme / FAILURE, 0.0, 1.0)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two 1-D samples (average ranks for ties)."""
    def ranks(x: np.ndarray) -> np.ndarray:
        _, where, counts = np.unique(np.asarray(x, dtype=np.float64), return_inverse=True, return_counts=True)
        return (np.cumsum(counts) - (counts + 1) / 2)[where]   # tied values share their mean rank

    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])
