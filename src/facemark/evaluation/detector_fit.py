"""What is fitted per detector into ``inference/box_maps.json``: its box -> landmark-box mapping
(``Detector.box_map``; ``tools/fit_box_maps.py``) and the Platt scaling of its raw scores (``platt``;
``tools/calibrate_scores.py``); and how facemark's detector thresholds are chosen (``threshold_sweep``,
``choose_setting``; ``tools/detector_thresholds.py``).

Detectors frame faces differently from the landmark box the models were trained on. For each detection matched
to an annotated face: the landmark box's centre shift in detector box widths / heights and its longer side
relative to sqrt(w * h) of the detector box; the mapping is their median (robust to the few bad matches).
``tools/fit_box_maps.py`` fits every detector on training faces and checks it on test faces. Detectors whose
raw score is not a probability (Haar's level weights) get ``1 / (1 + exp(-(a * raw + b)))``, a and b fitted by
logistic regression of "this detection is a face" on the raw score.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.crop import landmark_box
from ..core.detection import iou
from ..inference.detectors import AnyAngleDetector, SingleShotDetector, to_landmark_boxes
from ..io.boxes import PhotoBoxes
from ..io.datasets import FaceSample
from ..io.images import read_image
from .detection import evaluate_detector

MATCH_IOU = 0.25   # least overlap of a detection with an annotated face's landmark box to count as its match
# faces in the bundled samples (src/facemark/samples): both men in breakingbad.jpg, Einstein and the man seated
# behind him, lenna, takeo: a threshold must show every one and no false face (the demo's check)
SAMPLE_FACES = {"breakingbad.jpg": 2, "einstein.jpg": 2, "lenna.png": 1, "takeo.ppm": 1}
SAMPLES = Path(__file__).resolve().parents[1] / "samples"
SCORES = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)


def matched_boxes(detector, samples: list[FaceSample]) -> tuple[np.ndarray, np.ndarray, int]:
    """(K, 4) detector boxes and (K, 4) landmark boxes of the annotated faces a detection matched (the one
    overlapping each most), and how many faces none matched."""
    det, gt, missed = [], [], 0
    for s in samples:
        boxes = np.asarray(detector.detect(s.load_image())[0], dtype=np.float64).reshape(-1, 4)
        g = landmark_box(s.landmarks)
        o = iou(boxes, g)[:, 0] if len(boxes) else np.zeros(0)
        if not len(o) or o.max() < MATCH_IOU:
            missed += 1
            continue
        det.append(boxes[int(o.argmax())])
        gt.append(g)
    return np.array(det).reshape(-1, 4), np.array(gt).reshape(-1, 4), missed


def fit_box_map(det: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """The median centre shift (dx, dy in detector box widths / heights) and side (``scale``: the landmark box's
    longer side over sqrt(w * h)) that take detector boxes (K, 4) to their landmark boxes (K, 4)."""
    w, h = det[:, 2] - det[:, 0], det[:, 3] - det[:, 1]
    dx = ((gt[:, 0] + gt[:, 2]) - (det[:, 0] + det[:, 2])) / 2 / w
    dy = ((gt[:, 1] + gt[:, 3]) - (det[:, 1] + det[:, 3])) / 2 / h
    scale = np.maximum(gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]) / np.sqrt(w * h)
    return {"dx": round(float(np.median(dx)), 4), "dy": round(float(np.median(dy)), 4),
            "scale": round(float(np.median(scale)), 4)}


def mapped_iou(det: np.ndarray, gt: np.ndarray, mapping: dict[str, float]) -> float:
    """Median IoU of the mapped detector boxes with the squared landmark boxes (how well the map frames faces)."""
    mapped = to_landmark_boxes(det, mapping)
    centre, half = (gt[:, :2] + gt[:, 2:]) / 2, np.max(gt[:, 2:] - gt[:, :2], axis=1, keepdims=True) / 2
    square = np.concatenate([centre - half, centre + half], axis=1)
    return float(np.median([iou(m, s)[0, 0] for m, s in zip(mapped, square)]))


def platt(raw: np.ndarray, hit: np.ndarray, steps: int = 5000) -> tuple[float, float]:
    """Logistic regression of ``hit`` (0/1) on ``raw`` scores: the (a, b) of ``1 / (1 + exp(-(a * raw + b)))``
    (Newton's method on the mean log-likelihood)."""
    x = np.column_stack([raw, np.ones_like(raw)])
    w = np.zeros(2)
    for _ in range(steps):
        p = 1 / (1 + np.exp(-x @ w))
        grad = x.T @ (p - hit) / len(x)
        hess = (x * (p * (1 - p))[:, None]).T @ x / len(x) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return float(w[0]), float(w[1])


def sample_scores(weights: str | None) -> dict[str, np.ndarray]:
    """``facemark``'s face scores on each bundled sample, down to 0.2 (NMS keeps the same boxes above any higher
    threshold: a box is only suppressed by better ones)."""
    det = SingleShotDetector(weights, min_score=0.2)
    return {name: det.detect(read_image(SAMPLES / name))[1] for name in SAMPLE_FACES}


def samples_ok(scores: dict[str, np.ndarray], threshold: float) -> bool:
    """Whether every bundled sample shows exactly its faces at ``threshold`` (``sample_scores``)."""
    return all(int((s >= threshold).sum()) == SAMPLE_FACES[name] for name, s in scores.items())


def threshold_sweep(weights: str | None, photos: list[PhotoBoxes], scores: tuple[float, ...] = SCORES,
                    ious: tuple[float, ...] = (0.3, 0.4), on_samples: dict[str, np.ndarray] | None = None) -> list[dict]:
    """Recall, AP and false boxes per photo of ``facemark`` (NMS IoU 0.4) at each score threshold, and of
    ``facemark_any`` at each threshold and NMS IoU, on validation ``photos``; with ``on_samples``
    (``sample_scores``) each ``facemark`` row also says whether the samples pass there (``samples_ok``)."""
    rows = []
    for score in scores:
        rows.append({"detector": "facemark", "min_score": score, "nms_iou": 0.4,
                     **evaluate_detector(SingleShotDetector(weights, min_score=score), photos)})
        if on_samples is not None:
            rows[-1]["samples_ok"] = samples_ok(on_samples, score)
        for nms in ious:
            rows.append({"detector": "facemark_any", "min_score": score, "nms_iou": nms,
                         **evaluate_detector(AnyAngleDetector(weights, min_score=score, nms_iou=nms), photos)})
    return rows


def choose_setting(rows: list[dict], detector: str, max_false: float) -> dict | None:
    """The rule of docs/detection.md: among ``detector``'s rows with at most ``max_false`` false boxes per photo
    (and passing the samples, where checked), the highest recall (the first such row on ties); None if none."""
    ok = [r for r in rows if r["detector"] == detector and r["false_per_photo"] <= max_false
          and r.get("samples_ok", True)]
    return max(ok, key=lambda r: r["recall"]) if ok else None
