"""The inference pipeline: image -> detector -> face box -> crop -> model -> landmarks -> pose / 5 points.

Images are RGB uint8 numpy arrays (HxWx3); grey, RGBA and 16-bit arrays are converted. Coordinates are 0-based
pixel centres of the input image.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.crop import crop_from_box, crop_from_landmarks
from ..core.errors import ArgumentError, FacemarkError
from ..core.points import check_boxes, xy
from ..core.pose import head_pose
from ..io.images import to_rgb8
from .detectors import DETECTORS, Detector, box_map, build_detector, to_landmark_boxes
from .predictor import predict
from .runtime import DEFAULT_MODEL, OnnxLandmarkModel

DEFAULT_FRAMER = "pfld68_fast"   # the first pass of the refine step


@dataclass
class Face:
    """One face: detector box and score, landmarks (N, D), the 5 derived points (5, 2), head pose in degrees."""

    box: np.ndarray
    score: float
    landmarks: np.ndarray
    five: np.ndarray
    pose: dict[str, float] = field(default_factory=dict)

    def __repr__(self) -> str:
        pose = " ".join(f"{k}={v:+.1f}" for k, v in self.pose.items())
        box = ", ".join(f"{v:.0f}" for v in self.box)
        return f"Face(box=[{box}], score={self.score:.2f}, {len(self.landmarks)} points{', ' + pose if pose else ''})"

    def to_dict(self) -> dict:
        """JSON-ready: box [x1, y1, x2, y2], score, landmarks [[x, y(, z)], ...], five, pose {yaw, pitch, roll}."""
        r = lambda a: np.round(np.asarray(a, dtype=np.float64), 2).tolist()  # noqa: E731
        return {"box": r(self.box), "score": round(float(self.score), 4), "landmarks": r(self.landmarks),
                "five": r(self.five), "pose": {k: round(v, 2) for k, v in self.pose.items()}}


class Landmarker:
    """Find faces and their landmarks.

    ``model``: a shipped model name (``facemark.inference.runtime.available_models()``) or a path to an
    ``.onnx`` with its ``.json`` card. ``detector``: a name from ``facemark.inference.detectors.DETECTORS`` or
    a Detector (its own box map frames the model's crop). ``refine``: frame the model's crop by the landmarks
    of a first pass on the detector's box (the framing the model was trained on), which removes most of the
    detector's framing error; ``framer`` runs that first pass: a fast shipped model (default ``pfld68_fast``:
    about a quarter of ``hrnet68``'s cost, and as good a framing as a second pass of the model itself, see
    docs/benchmarks.md), or None for the model itself. ``flip``: average each crop's answer with its mirror's
    (twice the model cost). ``precision``: ``auto`` (int8 where the model has an int8 variant and the CPU runs
    int8 fast), ``fp32`` or ``int8``.
    """

    def __init__(self, model: str | Path = DEFAULT_MODEL, detector: str | Detector = "haar", refine: bool = True,
                 threads: int | None = None, flip: bool = False, precision: str = "auto",
                 framer: str | Path | None = DEFAULT_FRAMER, **detector_kwargs) -> None:
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ArgumentError("threads", f"a whole number of at least 1 (or None: all cores), not {threads!r}")
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
        items = [(k, b, s) for k, im in enumerate(images) for b, s in zip(*self.detector.detect(im))]
        out: list[list[Face]] = [[] for _ in images]
        if items:
            mapped = to_landmark_boxes(np.array([b for _, b, _ in items]), self.detector.box_map)
            faces = self._faces([(images[k], b, s) for k, b, s in items], mapped, self.refine)
            for (k, _, _), face in zip(items, faces):
                out[k].append(face)
        return out

    def _faces(self, items: list[tuple[np.ndarray, np.ndarray, float]], lm_boxes: np.ndarray,
               refine: bool) -> list[Face]:
        """Faces for (image, detector box, score) items whose landmark boxes are ``lm_boxes``."""
        images = [im for im, _, _ in items]
        if refine:
            first = predict(self.framer, images, [crop_from_box(b, self.framer.input_size) for b in lm_boxes])
            crops = [crop_from_landmarks(p, self.model.input_size) for p in first]
        else:
            crops = [crop_from_box(b, self.model.input_size) for b in lm_boxes]
        pts = predict(self.model, images, crops)
        return [self._face(im, box, score, p) for (im, box, score), p in zip(items, pts)]

    def _face(self, image: np.ndarray, box: np.ndarray, score: float, pts: np.ndarray) -> Face:
        h, w = image.shape[:2]
        pose = {}
        if self.scheme.pose_points:
            yaw, pitch, roll = head_pose(pts, w, h, self.scheme.name)
            pose = {"yaw": yaw, "pitch": pitch, "roll": roll}
        return Face(np.asarray(box, dtype=np.float64), float(score), pts, self.scheme.five_points(xy(pts)), pose)
