"""The inference pipeline: image -> detector -> face box -> crop -> model -> landmarks -> pose / 5 points.

Images are RGB uint8 numpy arrays (HxWx3); grey, RGBA and 16-bit arrays are converted. Coordinates are 0-based
pixel centres of the input image.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..core.crop import crop_from_box, crop_from_landmarks, roll_angle
from ..core.errors import ArgumentError, FacemarkError
from ..core.points import check_boxes, xy
from ..io.images import to_rgb8
from .detectors import DEFAULT_DETECTOR, DETECTORS, Detector, box_map, build_detector, to_landmark_boxes
from .face import Face, faces_from_points
from .predictor import predict, predict_analysed
from .runtime import DEFAULT_MODEL, OnnxLandmarkModel

DEFAULT_FRAMER = "pfld68_fast"   # the first pass of the refine step


class Landmarker:
    """Find faces and their landmarks.

    ``model``: a shipped model name (``facemark.inference.runtime.available_models()``) or a path to an
    ``.onnx`` with its ``.json`` card. ``detector``: a name from ``facemark.inference.detectors.DETECTORS`` or
    a Detector (its own box map frames the model's crop). ``refine``: frame the model's crop by the landmarks
    of a first pass on the detector's box (the framing the model was trained on) instead of the mapped box
    alone; off by default: with the default detector's box map it gains the default model little on the test
    faces (4.05% NME one pass, 4.03% refined) for half the step's cost again (docs/benchmarks.md). ``framer``
    runs that first pass: a fast shipped model (default ``pfld68_fast``: as good a framing as a second pass of
    the model itself, see docs/benchmarks.md), or None for the model itself. ``flip``: average each crop's
    answer with its mirror's (twice the model cost). ``precision``: ``auto`` (int8 where the model has an int8 variant and the CPU runs
    int8 fast), ``fp32`` or ``int8``. ``min_score`` and ``min_face`` (pixels, sqrt of the box area) drop
    detections below them (on top of the detector's own threshold).
    """

    def __init__(self, model: str | Path = DEFAULT_MODEL, detector: str | Detector = DEFAULT_DETECTOR,
                 refine: bool = False, threads: int | None = None, flip: bool = False, precision: str = "auto",
                 framer: str | Path | None = DEFAULT_FRAMER, min_score: float = 0.0, min_face: float = 0.0,
                 **detector_kwargs) -> None:
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ArgumentError("threads", f"a whole number of at least 1 (or None: all cores), not {threads!r}")
        for name, value in (("min_score", min_score), ("min_face", min_face)):
            if not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
                raise ArgumentError(name, f"a number of at least 0, not {value!r}")
        self.min_score, self.min_face = float(min_score), float(min_face)
        self.model = OnnxLandmarkModel(model, threads=threads, flip=flip, precision=precision)
        self.scheme = self.model.scheme
        self.framer = self.model
        if refine and framer is not None and Path(framer) != Path(model):
            self.framer = OnnxLandmarkModel(framer, threads=threads, precision=precision)
            if self.framer.scheme.name != self.scheme.name:
                raise FacemarkError(f"framer {framer}: predicts {self.framer.scheme.name}, the model "
                                    f"{self.scheme.name}")
        if isinstance(detector, Detector):
            self.detector = detector
        elif detector not in DETECTORS:
            raise ArgumentError("detector", f"unknown detector {detector!r} (known: {', '.join(DETECTORS.names())})")
        else:
            try:
                self.detector = build_detector(detector, **detector_kwargs)
            except TypeError as e:
                raise ArgumentError("detector_kwargs", f"{detector}: {e}") from None
        self.refine = refine

    def detect(self, image: np.ndarray) -> list[Face]:
        """Detect every face in an RGB image and return its landmarks, best detection first."""
        return self.batch([to_rgb8(image, "image")])[0]

    def track(self, frames: Iterable[np.ndarray], fps: float = 30.0, **settings) -> Iterator[list[Face]]:
        """The faces of each frame of a stream (RGB arrays in order: a video, a camera), tracked from frame to
        frame and smoothed, each with its ``track`` id; ``settings`` are ``inference.tracker.Tracker``'s."""
        from .tracker import track

        return track(self, frames, fps, **settings)

    def from_boxes(self, image: np.ndarray, boxes: np.ndarray, box_type: str = "landmarks") -> list[Face]:
        """Landmarks for faces at known boxes (x1, y1, x2, y2).

        ``box_type="landmarks"``: boxes bound the face's landmarks (the standard evaluation protocol);
        a detector name: boxes come from that detector and get its fitted mapping.
        """
        if box_type != "landmarks" and box_type not in DETECTORS:
            raise ArgumentError("box_type", f"{box_type!r} is neither 'landmarks' nor a detector name "
                                            f"({', '.join(DETECTORS.names())})")
        image = to_rgb8(image, "image")
        boxes = check_boxes(boxes, "boxes")
        mapped = boxes if box_type == "landmarks" else to_landmark_boxes(boxes, box_map(box_type))
        refine = box_type != "landmarks" and self.refine
        return self._faces([(image, b, 1.0) for b in boxes], mapped, refine) if len(boxes) else []

    def batch(self, images: list[np.ndarray]) -> list[list[Face]]:
        """Detect faces in many images; every crop of the batch goes through the model in one call."""
        if isinstance(images, np.ndarray) and images.ndim == 3:
            raise ArgumentError("images", "a list of images (for one image, use detect)")
        images = [to_rgb8(im, f"images[{k}]") for k, im in enumerate(images)]
        items, angles, fives = [], [], []
        for k, im in enumerate(images):
            boxes, scores, five, turn = self._detect(im)
            for j, (b, s) in enumerate(zip(boxes, scores)):
                items.append((k, b, s))
                angles.append(float(turn[j]))
                fives.append(None if five is None else five[j])
        out: list[list[Face]] = [[] for _ in images]
        if items:
            mapped = to_landmark_boxes(np.array([b for _, b, _ in items]), self.detector.box_map, np.array(angles))
            faces = self._faces([(images[k], b, s) for k, b, s in items], mapped, self.refine, angles)
            for (k, _, _), face, five in zip(items, faces, fives):
                face.detector_five = five
                out[k].append(face)
        return out

    def _detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
        """The detections ``min_score`` and ``min_face`` keep: boxes (K, 4), scores (K,), the detector's 5 points
        (K, 5, 2) where it gives them (else None: it finds upright faces) and each face's crop angle (K,), which
        their eye line gives (faces at any in-plane angle; 0 without points)."""
        boxes, scores, five = self.detector.detect_points(image)
        boxes, scores = np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(scores, dtype=np.float64)
        keep = (scores >= self.min_score) & (np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
                                             >= self.min_face)
        five = None if five is None else np.asarray(five)[keep]
        angles = np.zeros(int(keep.sum())) if five is None else np.array([roll_angle(p) for p in five])
        return boxes[keep], scores[keep], five, angles

    def _faces(self, items: list[tuple[np.ndarray, np.ndarray, float]], lm_boxes: np.ndarray,
               refine: bool, angles: list[float] | None = None) -> list[Face]:
        """Faces for (image, detector box, score) items whose landmark boxes are ``lm_boxes``; ``angles`` turn
        each crop so the face in it is upright (as the models were trained)."""
        images = [im for im, _, _ in items]
        angles = angles or [0.0] * len(items)
        if refine:
            first = predict(self.framer, images, [crop_from_box(b, self.framer.input_size, angle=a)
                                                  for b, a in zip(lm_boxes, angles)])
            crops = [crop_from_landmarks(p, self.model.input_size,
                                         angle=roll_angle(self.scheme.five_points(xy(p))) if a else 0.0)
                     for p, a in zip(first, angles)]
        else:
            crops = [crop_from_box(b, self.model.input_size, angle=a) for b, a in zip(lm_boxes, angles)]
        a = predict_analysed(self.model, images, crops)
        boxes = [(np.asarray(box, dtype=np.float64), float(score)) for _, box, score in items]
        return faces_from_points(self.scheme, boxes, a.points, a.uncertainty, visibility=a.visibility)
