"""Face detectors behind one interface: ``detect(rgb) -> (boxes (K, 4) x1 y1 x2 y2, scores (K,))``.

Backends: ``haar`` (OpenCV's cascade, ships with OpenCV: the fallback), ``yunet`` (cv2.FaceDetectorYN with a
model file the user points to), ``dlib`` (HOG) and ``mediapipe`` when those packages are installed.

Every detector frames faces its own way, so each owns its box map: the mapping from its box to the landmark
box the models were trained on (``Detector.box_map``, fitted on annotated faces by ``tools/fit_box_maps.py``
and kept in ``box_maps.json`` under the detector's registry name). A new detector is a ``Detector`` subclass
with a ``name``, registered with ``@register``.
"""
from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import cv2
import numpy as np

from ..core.cascade import apply_offsets, crop_window, pyramid, square
from ..core.crop import to_input
from ..core.detection import cells, decode, nms
from ..core.errors import DataError, FacemarkError
from ..core.registry import Registry
from .runtime import cpu_session, sha256_of

DETECTORS: Registry = Registry("detector")
DEFAULT_DETECTOR = "facemark"   # what detect, align, demo, evaluate-detect and Landmarker use unless told otherwise
BOX_MAPS_FILE = Path(__file__).parent / "box_maps.json"


def register(cls: type) -> type:
    """Register a Detector subclass under its ``name``."""
    return DETECTORS.register(cls.name)(cls)


class Detector:
    """Base class. Subclasses set ``name`` and implement ``_detect`` on an RGB image no larger than ``max_side``."""

    name = ""
    max_side = 1280
    calibrated = True   # map raw scores to [0, 1] where tools/calibrate_scores.py fitted this detector

    @property
    def box_map(self) -> dict[str, float]:
        """This detector's fitted box -> landmark-box mapping (identity when none was fitted)."""
        return box_map(self.name)

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Faces in an RGB uint8 image: (K, 4) boxes (x1, y1, x2, y2) in its pixels, (K,) scores, best first."""
        scale = min(1.0, self.max_side / max(image.shape[:2]))
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image
        boxes, scores = self._detect(small)
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) / scale
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        platt = _box_maps().get(self.name, {}).get("score") if self.calibrated else None
        if platt:
            scores = 1.0 / (1.0 + np.exp(-(platt["a"] * scores + platt["b"])))
        order = np.argsort(-scores, kind="stable")
        return boxes[order], scores[order]

    def detect_points(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``detect``'s boxes and scores and (K, 5, 2) the faces' 5 points where the detector finds them (their
        eye line turns each crop upright), else None: this detector finds upright faces only."""
        boxes, scores = self.detect(image)
        return boxes, scores, None

    def _detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


@register
class HaarDetector(Detector):
    """OpenCV's frontal-face Haar cascade. Scores are the cascade's level weights made a probability in [0, 1]
    by the Platt scaling ``tools/calibrate_scores.py`` fitted (``calibrated=False``: the raw weights).

    ``alt2`` with 3 neighbours is the default: on 60 AFW photos it found 83 of 104 annotated faces with 25
    other detections, where ``default`` with 5 neighbours found 84 with 44 others.
    """

    name = "haar"

    def __init__(self, cascade: str = "alt2", min_neighbors: int = 3, min_size: int = 24,
                 calibrated: bool = True) -> None:
        path = Path(cv2.data.haarcascades) / f"haarcascade_frontalface_{cascade}.xml"
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise FacemarkError(f"{path}: cannot load OpenCV's Haar cascade (opencv-python-headless < 5 ships it)")
        self.min_neighbors = min_neighbors
        self.min_size = min_size
        self.calibrated = calibrated

    def _detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        grey = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        rects, _, weights = self.cascade.detectMultiScale3(grey, scaleFactor=1.1, minNeighbors=self.min_neighbors,
                                                           minSize=(self.min_size, self.min_size),
                                                           outputRejectLevels=True)
        if len(rects) == 0:
            return np.zeros((0, 4)), np.zeros(0)
        rects = np.asarray(rects, dtype=np.float64)
        boxes = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)
        return boxes, np.asarray(weights, dtype=np.float64).reshape(-1)


@register
class YuNetDetector(Detector):
    """OpenCV's YuNet (cv2.FaceDetectorYN). The ONNX file is not bundled: pass ``model_path`` or set
    ``FACEMARK_YUNET`` to the path of ``face_detection_yunet_2023mar.onnx``."""

    name = "yunet"

    def __init__(self, model_path: str | None = None, score_threshold: float = 0.6) -> None:
        path = model_path or os.environ.get("FACEMARK_YUNET")
        if not path or not Path(path).is_file():
            raise FacemarkError("yunet: model file not found; set FACEMARK_YUNET to the YuNet .onnx path "
                                f"(got {path!r})")
        self.net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), score_threshold)

    def _detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h, w = image.shape[:2]
        self.net.setInputSize((w, h))
        _, faces = self.net.detect(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if faces is None:
            return np.zeros((0, 4)), np.zeros(0)
        boxes = np.concatenate([faces[:, :2], faces[:, :2] + faces[:, 2:4]], axis=1)
        return boxes, faces[:, -1]


@register
class DlibDetector(Detector):
    """dlib's HOG + linear SVM frontal detector (``pip install dlib``). Its scores are the raw SVM margins:
    ``tools/calibrate_scores.py`` found they do not rank faces on the calibration photos (a negative slope)."""

    name = "dlib"

    def __init__(self, upsample: int = 1) -> None:
        try:
            import dlib
        except ImportError:
            raise FacemarkError("detector 'dlib' needs the dlib package: pip install 'facemark[dlib]'") from None
        self.det = dlib.get_frontal_face_detector()
        self.upsample = upsample

    def _detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rects, scores, _ = self.det.run(image, self.upsample, 0.0)
        boxes = [[r.left(), r.top(), r.right() + 1, r.bottom() + 1] for r in rects]
        return np.array(boxes, dtype=np.float64).reshape(-1, 4), np.array(scores, dtype=np.float64)


@register
class MediaPipeDetector(Detector):
    """MediaPipe's BlazeFace short/full-range detector (``pip install mediapipe``)."""

    name = "mediapipe"

    def __init__(self, model_selection: int = 1, min_score: float = 0.5) -> None:
        try:
            import mediapipe as mp

            solutions = mp.solutions
        except ImportError:
            raise FacemarkError("detector 'mediapipe' needs the mediapipe package: "
                                "pip install 'facemark[mediapipe]'") from None
        except AttributeError:   # releases after 0.10.21 dropped the solutions API and its bundled models
            raise FacemarkError(f"detector 'mediapipe' needs mediapipe 0.10.21 (installed: {mp.__version__}, which "
                                "has no mp.solutions): pip install 'facemark[mediapipe]'") from None
        self.det = solutions.face_detection.FaceDetection(model_selection=model_selection,
                                                          min_detection_confidence=min_score)

    def _detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h, w = image.shape[:2]
        res = self.det.process(image)
        boxes, scores = [], []
        for d in res.detections or []:
            b = d.location_data.relative_bounding_box
            boxes.append([b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h])
            scores.append(d.score[0])
        return np.array(boxes, dtype=np.float64).reshape(-1, 4), np.array(scores, dtype=np.float64)


DETECTOR_WEIGHTS = Path(__file__).parents[1] / "weights" / "detectors"


@register
class SingleShotDetector(Detector):
    """facemark's own single-shot detector (trained here: ``configs/facemark_det.yaml``, the last of stages under
    configs/experiments/; docs/detection.md): upright faces (tilted
    up to about 45 degrees), a score in [0, 1] (the sigmoid of the face logit; ``min_score`` 0.5 chosen on
    roboflow_faces/valid by ``tools/detector_thresholds.py``), 5 points per face (``detect_points``). The photo is scaled so its longer
    side is at most ``max_side`` and padded to a multiple of 32. The network finds faces of up to about 360 px
    of its input, so a larger single pass would lose close-ups; instead, when the photo is larger than
    ``max_side``, a second pass at its own size (at most ``fine_side``) adds the faces smaller than
    ``fine_below`` pixels at the first pass's scale, which it scores better, if they score at least
    ``fine_score`` (``fine_below=0``: one pass; docs/detection.md).
    """

    name = "facemark"
    fine_side, fine_below, fine_score = 1280, 64.0, 0.55   # chosen by tools/experiments/second_pass_check.py

    def __init__(self, weights: str | Path | None = None, threads: int = 1, max_side: int = 640,
                 min_score: float = 0.5, nms_iou: float = 0.4, turns: tuple[int, ...] = (0,),
                 fine_side: int | None = None, fine_below: float | None = None,
                 fine_score: float | None = None) -> None:
        self._open(weights, threads)
        self.max_side, self.min_score, self.nms_iou, self.turns = max_side, min_score, nms_iou, tuple(turns)
        if fine_side is not None:
            self.fine_side = fine_side
        if fine_below is not None:
            self.fine_below = fine_below
        if fine_score is not None:
            self.fine_score = fine_score

    def _open(self, weights, threads: int) -> None:
        """Load the network: the ONNX file (default: the shipped one) and its card, checked against each other
        (a subclass may run another network, as training runs the torch model through this code)."""
        path = Path(weights) if weights else DETECTOR_WEIGHTS / "facemark_det.onnx"
        card = path.with_suffix(".json")
        if not path.is_file() or not card.is_file():
            raise FacemarkError(f"{path}: detector weights (.onnx and its .json card) not found")
        self.card = json.loads(card.read_text())
        if sha256_of(path) != self.card.get("sha256"):
            raise DataError(path, "sha256 differs from its card's: corrupt or replaced detector weights")
        self.session = cpu_session(path, threads)
        self.strides = tuple(self.card.get("strides", (8, 16, 32)))

    def _run(self, x: np.ndarray) -> np.ndarray:
        """The network on a (1, 3, H, W) input: (cells, 15)."""
        return self.session.run(None, {self.session.get_inputs()[0].name: x})[0][0]

    def detect_points(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Faces in an RGB uint8 image: boxes (K, 4), scores (K,), 5 points (K, 5, 2) (eye centres as the
        viewer sees them left then right, nose tip, mouth corners), in its pixels, best first."""
        if self.turns == (0,):
            return self._detect_points(image)
        found = []
        for q in self.turns:   # each quarter turn's faces, mapped back to the photo's pixels
            boxes, scores, points = self._detect_points(np.ascontiguousarray(np.rot90(image, q)))
            h, w = image.shape[:2]
            for k in reversed(range(q % 4)):   # undo turn k: (x, y) -> (W_k - y, x), W_k its input's width
                side = w if k % 2 == 0 else h
                boxes = np.column_stack([side - boxes[:, 3], boxes[:, 0], side - boxes[:, 1], boxes[:, 2]])
                points = np.stack([side - 1 - points[..., 1], points[..., 0]], axis=-1)
            found.append((boxes, scores, points))
        boxes, scores, points = (np.concatenate(x) for x in zip(*found))
        keep = nms(boxes, scores, self.min_score, self.nms_iou)
        return boxes[keep], scores[keep], points[keep]

    def _detect_points(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One upright photo's faces: the pass at ``max_side``, and the second pass's small faces (class doc)."""
        coarse, fine = (min(1.0, side / max(image.shape[:2])) for side in (self.max_side, self.fine_side))
        boxes, scores, points = self._pass(image, coarse)
        if self.fine_below <= 0 or fine <= coarse:
            return boxes, scores, points
        b, s, p = self._pass(image, fine)
        small = (np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) * coarse < self.fine_below) & (s >= self.fine_score)
        boxes, scores, points = (np.concatenate(x) for x in ((boxes, b[small]), (scores, s[small]), (points, p[small])))
        keep = nms(boxes, scores, self.min_score, self.nms_iou)
        return boxes[keep], scores[keep], points[keep]

    def _pass(self, image: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The network's faces on the photo scaled by ``scale`` (<= 1), in the photo's pixels."""
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image
        h, w = small.shape[:2]
        ph, pw = -(-h // 32) * 32, -(-w // 32) * 32
        padded = np.full((ph, pw, 3), 114, np.uint8)
        padded[:h, :w] = small
        out = self._run(to_input(padded[None]))
        boxes, scores, points = decode(out, cells(ph, pw, self.strides), self.min_score, self.nms_iou)
        return boxes / scale, scores, points / scale

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes, scores, _ = self.detect_points(image)
        return boxes, scores


@register
class AnyAngleDetector(SingleShotDetector):
    """facemark's detector run on the photo and its three quarter turns, the faces merged by NMS: faces at any
    in-plane angle (lying down, upside down) are found as upright ones are, at four times the cost. A higher
    score threshold than ``facemark``'s keeps its false boxes down (chosen on roboflow_faces/valid by
    ``tools/detector_thresholds.py``: docs/detection.md). Its second pass (``facemark``'s) keeps its own
    threshold, which is above ``fine_score``."""

    name = "facemark_any"

    def __init__(self, weights: str | Path | None = None, threads: int = 1, max_side: int = 640,
                 min_score: float = 0.6, nms_iou: float = 0.3, fine_side: int | None = None,
                 fine_below: float | None = None, fine_score: float | None = None) -> None:
        super().__init__(weights, threads, max_side, min_score, nms_iou, (0, 1, 2, 3), fine_side, fine_below,
                         fine_score)

    @property
    def box_map(self) -> dict[str, float]:
        return box_map(SingleShotDetector.name)


@register
class MtcnnDetector(Detector):
    """MTCNN as the seed describes (trained here: ``configs/mtcnn.yaml``): P-Net slides a 12 px window over an
    image pyramid (faces from ``min_face`` pixels), R-Net (24 px) and O-Net (48 px) re-score and re-box the
    surviving windows; between stages, NMS and box calibration (each window moved to the box its net
    predicts, then squared). Scores are O-Net's sigmoid in [0, 1]; O-Net gives 5 points (``detect_points``).
    """

    name = "mtcnn"
    STAGES = ("pnet", "rnet", "onet")

    def __init__(self, weights: str | Path | None = None, threads: int = 1, max_side: int = 1280,
                 min_face: float = 20.0, thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)) -> None:
        """``weights``: the card (``mtcnn.json``, default: the shipped one); ``min_face`` in pixels of the photo
        scaled to ``max_side``; ``thresholds``: the score each stage's windows need to go on."""
        self._open(weights, threads)
        self.max_side, self.min_face, self.thresholds = max_side, min_face, tuple(thresholds)

    def _open(self, weights, threads: int) -> None:
        """Load the three nets named by the card (checked against it; a subclass may run others)."""
        card_path = Path(weights) if weights else DETECTOR_WEIGHTS / "mtcnn.json"
        if not card_path.is_file():
            raise FacemarkError(f"{card_path}: MTCNN card not found (NAME.json beside NAME_pnet/_rnet/_onet.onnx)")
        self.card = json.loads(card_path.read_text())
        self.sessions = {}
        for stage in self.STAGES:
            path = card_path.with_name(f"{card_path.stem}_{stage}.onnx")
            if not path.is_file() or sha256_of(path) != self.card["sha256"].get(stage):
                raise DataError(path, "missing, or its sha256 differs from mtcnn.json's: corrupt or replaced weights")
            self.sessions[stage] = cpu_session(path, threads)

    def _net(self, stage: str, x: np.ndarray) -> np.ndarray:
        """One net on a (B, 3, H, W) input: (B, 15) outputs, or P-Net's (1, 15, H', W') map."""
        session = self.sessions[stage]
        return session.run(None, {session.get_inputs()[0].name: x})[0]

    def _proposals(self, image: np.ndarray) -> np.ndarray:
        """P-Net's windows over the pyramid, NMS per scale and across scales, calibrated and squared."""
        h, w = image.shape[:2]
        found, scores = [], []
        for s in pyramid(h, w, self.min_face):
            size = (max(12, int(np.ceil(w * s))), max(12, int(np.ceil(h * s))))
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
            out = self._net("pnet", to_input(small[None]))[0]
            logit = out[0]
            ys, xs = np.nonzero(logit > np.log(self.thresholds[0] / (1 - self.thresholds[0])))
            if not len(ys):
                continue
            side = 12 / s
            win = np.stack([xs * 2 / s, ys * 2 / s, xs * 2 / s + side, ys * 2 / s + side], axis=1)
            score = 1 / (1 + np.exp(-logit[ys, xs].astype(np.float64)))
            keep = nms(win, score, 0.0, 0.5)
            found.append(win[keep] + out[1:5, ys[keep], xs[keep]].T * side)
            scores.append(score[keep])
        if not found:
            return np.zeros((0, 4))
        boxes, score = np.concatenate(found), np.concatenate(scores)
        return square(boxes[nms(boxes, score, 0.0, 0.7)])

    def _refine(self, image: np.ndarray, windows: np.ndarray, stage: str, threshold: float, iou: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Re-score and re-box windows with R-Net or O-Net: boxes, scores, 5 points after NMS."""
        size = {"rnet": 24, "onet": 48}[stage]
        if not len(windows):
            return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))
        out = np.concatenate([self._net(stage, to_input(np.stack([crop_window(image, b, size)
                                                                   for b in windows[k:k + 256]])))
                              for k in range(0, len(windows), 256)]).astype(np.float64)
        score = 1 / (1 + np.exp(-out[:, 0]))
        keep = score >= threshold
        boxes, points = apply_offsets(windows[keep], out[keep])
        chosen = nms(boxes, score[keep], 0.0, iou)
        return boxes[chosen], score[keep][chosen], points[chosen]

    def detect_points(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Faces in an RGB uint8 image: boxes (K, 4), scores (K,), 5 points (K, 5, 2), best first."""
        scale = min(1.0, self.max_side / max(image.shape[:2]))
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image
        boxes, _, _ = self._refine(small, self._proposals(small), "rnet", self.thresholds[1], 0.7)
        boxes, scores, points = self._refine(small, square(boxes), "onet", self.thresholds[2], 0.5)
        return boxes / scale, scores, points / scale

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes, scores, _ = self.detect_points(image)
        return boxes, scores


def build_detector(name: str, **kwargs) -> Detector:
    return DETECTORS.build(name, **kwargs)


@functools.lru_cache(maxsize=1)
def _box_maps() -> dict:
    return json.loads(BOX_MAPS_FILE.read_text()) if BOX_MAPS_FILE.is_file() else {}


def box_map(detector: str) -> dict[str, float]:
    """The fitted box -> landmark-box mapping of a detector: centre shift (dx, dy) in box widths/heights and
    the landmark box's side relative to sqrt(w * h). Identity when none was fitted."""
    return dict(_box_maps().get(detector, {}).get("map", {"dx": 0.0, "dy": 0.0, "scale": 1.0}))


def to_landmark_boxes(boxes: np.ndarray, mapping: dict[str, float], angles: np.ndarray | None = None) -> np.ndarray:
    """Apply a box map: detector boxes (K, 4) -> square landmark-style boxes (K, 4). ``angles`` (K,) (degrees,
    ``Crop.angle``) turn each face's centre shift with the face (a face lying on its side shifts sideways)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    dx, dy = mapping["dx"] * w, mapping["dy"] * h
    if angles is not None:
        a = np.deg2rad(angles)
        dx, dy = dx * np.cos(a) - dy * np.sin(a), dx * np.sin(a) + dy * np.cos(a)
    cx = (boxes[:, 0] + boxes[:, 2]) / 2 + dx
    cy = (boxes[:, 1] + boxes[:, 3]) / 2 + dy
    half = mapping["scale"] * np.sqrt(w * h) / 2
    return np.stack([cx - half, cy - half, cx + half, cy + half], axis=1)


def to_detector_boxes(lm_boxes: np.ndarray, mapping: dict[str, float]) -> np.ndarray:
    """The inverse of ``to_landmark_boxes`` for square detector boxes: landmark boxes (K, 4) -> the square box
    (K, 4) that detector would have drawn around those faces (to give a detector-trained tool its framing)."""
    b = np.asarray(lm_boxes, dtype=np.float64).reshape(-1, 4)
    side = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) / mapping["scale"]
    cx = (b[:, 0] + b[:, 2]) / 2 - mapping["dx"] * side
    cy = (b[:, 1] + b[:, 3]) / 2 - mapping["dy"] * side
    return np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], axis=1)

