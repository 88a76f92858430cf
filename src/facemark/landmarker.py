"""The inference pipeline: image -> detector -> face box -> crop -> model -> landmarks -> pose / 5 points.

Images are RGB uint8 numpy arrays (HxWx3); grey, RGBA and 16-bit arrays are converted. Coordinates are 0-based
pixel centres of the input image.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .crop import crop_from_box, crop_from_landmarks
from .detectors import Detector, box_map, build_detector, to_landmark_boxes
from .images import to_rgb8
from .pose import head_pose
from .runtime import DEFAULT_MODEL, OnnxLandmarkModel
from .schemes import convert, scheme


@dataclass
class Face:
    """One face: detector box and score, landmarks (N, 2), the 5 derived points, head pose in degrees."""

    box: np.ndarray
    score: float
    landmarks: np.ndarray
    five: np.ndarray
    pose: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready: box [x1, y1, x2, y2], score, landmarks [[x, y], ...], five, pose {yaw, pitch, roll}."""
        r = lambda a: np.round(np.asarray(a, dtype=np.float64), 2).tolist()  # noqa: E731
        return {"box": r(self.box), "score": round(float(self.score), 4), "landmarks": r(self.landmarks),
                "five": r(self.five), "pose": {k: round(v, 2) for k, v in self.pose.items()}}


class Landmarker:
    """Find faces and their landmarks.

    ``model``: a shipped model name (``facemark.runtime.available_models()``) or a path to an ``.onnx``
    with its ``.json`` card. ``detector``: a name from ``facemark.detectors.DETECTORS`` or a Detector.
    ``refine``: run the model a second time on the crop framed by the first pass's landmarks (the framing it
    was trained on), which removes most of the detector's framing error. ``flip``: average each crop's
    answer with its mirror's (twice the model cost).
    """

    def __init__(self, model: str | Path = DEFAULT_MODEL, detector: str | Detector = "haar", refine: bool = True,
                 threads: int | None = None, flip: bool = False, **detector_kwargs) -> None:
        self.model = OnnxLandmarkModel(model, threads=threads, flip=flip)
        self.scheme = scheme(self.model.card.n_points)
        if isinstance(detector, Detector):
            self.detector, self.detector_name = detector, type(detector).__name__
        else:
            self.detector, self.detector_name = build_detector(detector, **detector_kwargs), detector
        self.refine = refine

    def detect(self, image: np.ndarray) -> list[Face]:
        """Detect every face in an RGB image and return its landmarks, best detection first."""
        image = to_rgb8(image)
        boxes, scores = self.detector.detect(image)
        return self._faces(image, boxes, scores, to_landmark_boxes(boxes, box_map(self.detector_name)))

    def from_boxes(self, image: np.ndarray, boxes: np.ndarray, box_type: str = "landmarks") -> list[Face]:
        """Landmarks for faces at known boxes (x1, y1, x2, y2).

        ``box_type="landmarks"``: boxes bound the face's landmarks (the standard evaluation protocol);
        a detector name: boxes come from that detector and get its fitted mapping.
        """
        image = to_rgb8(image)
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        mapped = boxes if box_type == "landmarks" else to_landmark_boxes(boxes, box_map(box_type))
        return self._faces(image, boxes, np.ones(len(boxes)), mapped, refine=box_type != "landmarks" and self.refine)

    def batch(self, images: list[np.ndarray]) -> list[list[Face]]:
        """Detect faces in many images; every crop of the batch goes through the model in one call."""
        images = [to_rgb8(im) for im in images]
        dets = [self.detector.detect(im) for im in images]
        mapping = box_map(self.detector_name)
        items = [(i, b, s) for i, (bs, ss) in enumerate(dets) for b, s in zip(bs, ss)]
        if not items:
            return [[] for _ in images]
        lm_boxes = to_landmark_boxes(np.array([b for _, b, _ in items]), mapping)
        pts = self._run([images[i] for i, _, _ in items], lm_boxes, self.refine)
        out: list[list[Face]] = [[] for _ in images]
        for (i, box, score), p in zip(items, pts):
            out[i].append(self._face(images[i], box, score, p))
        return out

    # --- internals --------------------------------------------------------------------------------------
    def _run(self, images: list[np.ndarray], lm_boxes: np.ndarray, refine: bool) -> np.ndarray:
        size = self.model.input_size
        crops = [crop_from_box(b, size) for b in lm_boxes]
        pts = self._predict(images, crops)
        if refine:
            crops = [crop_from_landmarks(p, size) for p in pts]
            pts = self._predict(images, crops)
        return pts

    def _predict(self, images: list[np.ndarray], crops: list) -> np.ndarray:
        x = np.stack([c.warp(im) for c, im in zip(crops, images)])
        return np.stack([c.to_source(p) for c, p in zip(crops, self.model(x))])

    def _faces(self, image: np.ndarray, boxes: np.ndarray, scores: np.ndarray, lm_boxes: np.ndarray,
               refine: bool | None = None) -> list[Face]:
        if len(boxes) == 0:
            return []
        pts = self._run([image] * len(boxes), lm_boxes, self.refine if refine is None else refine)
        return [self._face(image, b, s, p) for b, s, p in zip(boxes, scores, pts)]

    def _face(self, image: np.ndarray, box: np.ndarray, score: float, pts: np.ndarray) -> Face:
        h, w = image.shape[:2]
        pose = {}
        if self.scheme.n_points in (68, 98):  # the pose template is defined on 68-point indices
            yaw, pitch, roll = head_pose(convert(pts, 68), w, h)
            pose = {"yaw": yaw, "pitch": pitch, "roll": roll}
        return Face(np.asarray(box, dtype=np.float64), float(score), pts, self.scheme.five_points(pts), pose)


def predict_with_landmark_boxes(model: OnnxLandmarkModel, samples: list, chunk: int = 64) -> np.ndarray:
    """(M, N, 2) predictions for annotated faces, each cropped from its ground-truth landmarks' box
    (the standard evaluation protocol: no detector in the loop)."""
    size = model.input_size
    preds = []
    for i in range(0, len(samples), chunk):
        part = samples[i:i + chunk]
        crops = [crop_from_landmarks(s.landmarks, size) for s in part]
        x = np.stack([c.warp(s.load_image()) for c, s in zip(crops, part)])
        preds += [c.to_source(p) for c, p in zip(crops, model(x))]
    return np.stack(preds)


def evaluate_model(model: str | Path, gt_dir: Path, threads: int | None = None, flip: bool = False,
                   decoder: str | None = None) -> tuple[list, list]:
    """Run ``model`` on a 300W-layout folder with boxes from the ground-truth landmarks.

    Returns (ground truths, predictions), each a list of (N, 2) arrays in file order.
    """
    from .readers import read_pts_folder

    lm = OnnxLandmarkModel(model, threads=threads, flip=flip, decoder=decoder)
    samples = read_pts_folder(gt_dir, lm.card.n_points)
    return [s.landmarks for s in samples], list(predict_with_landmark_boxes(lm, samples))
