"""Faces through a video: tracked from frame to frame and smoothed without lag, not re-detected per frame.

A face found in one frame is framed in the next by its previous landmarks (the crop the models are trained on),
as real-time trackers do, so the detector runs only every ``detect_every`` frames, while a track is lost, and
while no face is tracked. A track is lost when the landmark model's own confidence (``OnnxLandmarkModel.scored``:
the mean heatmap peak of a heatmap model) falls below ``lost_below``: the crop no longer holds a face. For a
model without that signal (regression), a detection frame on which no detection meets the track counts as lost.
A lost track is not reported; a detection that meets where it was (moved on at its last velocity) takes it up
again with its id; after ``max_missed`` frames lost it ends. Detections are matched to tracks by the overlap of
their landmark boxes (the Hungarian method, ``core.assign``); two tracks that land on the same face keep the
one that stayed where it was. Points are smoothed per track by the One Euro filter (``core.smoothing``); the
pose, the 5 points and the box are read from the smoothed points, so they agree with them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np

from ..core.crop import crop_from_landmarks, landmark_box, roll_angle
from ..core.assign import linear_assignment
from ..core.codecs import Codec
from ..core.detection import iou
from ..core.errors import ArgumentError
from ..core.points import xy
from ..core.smoothing import MOTION, SHAPE, EuroSettings, FaceSmoother
from ..io.images import to_rgb8
from .detectors import to_detector_boxes, to_landmark_boxes
from .face import Face, faces_from_points
from .predictor import Analysis

if TYPE_CHECKING:
    from .landmarker import Landmarker

DETECT_EVERY = 30     # frames between detector runs while every face is tracked (new faces: within about 1 s)
MAX_MISSED = 10       # frames a lost track waits to be taken up again before it ends
LOST_BELOW = 0.535    # mean heatmap peak under which a crop holds no face (tools/track_threshold.py, default model)
MATCH_IOU = 0.3       # least landmark-box overlap of a detection and the track it continues
SAME_FACE_IOU = 0.5   # two tracks overlapping more than this follow one face
UPRIGHT_BEYOND = 25.0  # degrees of roll beyond which a tracked face's crop is turned upright
REFRAME_BEYOND = 0.08  # a face found this far (share of the crop side) from its crop's centre is framed again


@dataclass
class _Track:
    id: int
    raw: np.ndarray                 # the model's last points (N, D), unsmoothed: they frame the next crop
    score: float                    # the detector's score when the track was last detected
    smoother: FaceSmoother | None
    velocity: np.ndarray            # landmark-box centre motion per frame (pixels), for a lost track's search
    missed: int = 0                 # frames lost (0: tracked)
    uncertainty: np.ndarray | None = None   # the last frame's expected point errors (pixels), if the model has them
    visibility: np.ndarray | None = None    # the last frame's point visibility, if the model has it

    @property
    def box(self) -> np.ndarray:
        return landmark_box(self.raw)

    def expected_box(self) -> np.ndarray:
        """Where a lost track's face should be now, moved on at its last velocity."""
        return self.box + np.tile(self.velocity * self.missed, 2)


class Tracker:
    """Track faces through the frames of one stream: ``update(frame)`` -> that frame's faces, each with its
    ``track`` id. Frames are RGB uint8 arrays (HxWx3), in order.

    ``landmarker`` gives the model and the detector; ``fps`` turns frame numbers into times for the smoothing
    filter when ``update`` is given no time. ``smooth=False`` reports the model's raw points; ``detect_every=1``
    runs the detector on every frame (faces are still tracked and matched). ``motion`` and ``shape`` are the
    One Euro settings of the face's motion and of its shape (``core.smoothing.FaceSmoother``).
    """

    def __init__(self, landmarker: Landmarker, fps: float = 30.0, detect_every: int = DETECT_EVERY,
                 smooth: bool = True, max_missed: int = MAX_MISSED, lost_below: float = LOST_BELOW,
                 motion: EuroSettings = MOTION, shape: EuroSettings = SHAPE) -> None:
        for name, value, least in (("detect_every", detect_every, 1), ("max_missed", max_missed, 0)):
            if not isinstance(value, int) or value < least:
                raise ArgumentError(name, f"a whole number of at least {least}, not {value!r}")
        if not np.isfinite(fps) or fps <= 0:
            raise ArgumentError("fps", f"a frame rate above 0, not {fps!r}")
        self.lm, self.fps, self.detect_every, self.smooth = landmarker, float(fps), detect_every, smooth
        self.max_missed, self.lost_below = max_missed, float(lost_below)
        self.motion, self.shape = motion, shape
        self.has_signal = type(landmarker.model.codec).confidence is not Codec.confidence   # the codec reads one
        self.reset()

    def reset(self) -> None:
        """Forget every track (a new stream)."""
        self.tracks: list[_Track] = []
        self.frame = 0
        self.next_id = 0
        self.last_t: float | None = None

    @property
    def ids_seen(self) -> int:
        """How many tracks this stream has started."""
        return self.next_id

    def update(self, image: np.ndarray, t: float | None = None) -> list[Face]:
        """The faces of the next frame (tracked ones, by track id), ``t`` its time in seconds (default: frame
        number / fps)."""
        image = to_rgb8(image, "image")
        t = self.frame / self.fps if t is None else float(t)
        if self.last_t is not None and t <= self.last_t:
            raise ArgumentError("t", f"frame times must increase: {t} after {self.last_t}")
        self._follow(image)
        if self.frame % self.detect_every == 0 or not self.tracks or any(tr.missed for tr in self.tracks):
            self._detect(image)
        for tr in self.tracks:
            if tr.missed:
                tr.missed += 1
        self.tracks = [tr for tr in self.tracks if tr.missed <= self.max_missed + 1]
        self.frame += 1
        self.last_t = t
        return self._faces(t)

    # --- steps ------------------------------------------------------------------------------------------------
    def _follow(self, image: np.ndarray) -> None:
        """Re-frame every tracked face by its previous points and run the model on all of them at once."""
        live = [tr for tr in self.tracks if not tr.missed]
        if not live:
            return
        model = self.lm.model
        crops = [crop_from_landmarks(_moved(tr.raw, tr.velocity), model.input_size, angle=self._angle(tr.raw))
                 for tr in live]
        a = model.analyse(np.stack([c.warp(image) for c in crops])).to_source(crops)
        # a face that moved further than its last motion said sits off its crop's centre, beyond the framing
        # error the models were trained with: a second pass framed by the first pass's points finds it again
        off = [k for k, c in enumerate(crops)
               if np.abs(_centre(landmark_box(a.points[k])) - (c.cx, c.cy)).max() > REFRAME_BEYOND * c.side]
        if off:
            again = [crop_from_landmarks(a.points[k], model.input_size, angle=self._angle(a.points[k])) for k in off]
            a = _merged(a, off, model.analyse(np.stack([c.warp(image) for c in again])).to_source(again))
        for k, tr in enumerate(live):
            if a.confidence is not None and a.confidence[k] < self.lost_below:
                tr.missed = 1
                continue
            new = a.points[k]
            tr.uncertainty, tr.visibility = _row(a.uncertainty, k), _row(a.visibility, k)
            tr.velocity = 0.5 * tr.velocity + 0.5 * (_centre(landmark_box(new)) - _centre(tr.box))
            tr.raw = new
        self._drop_duplicates(live)

    def _drop_duplicates(self, live: list[_Track]) -> None:
        """Two tracks on one face (one slid onto the other's face): the one that moved more is lost."""
        live = [tr for tr in live if not tr.missed]
        for i, a in enumerate(live):
            for b in live[i + 1:]:
                if a.missed or b.missed or iou(a.box, b.box)[0, 0] <= SAME_FACE_IOU:
                    continue
                jumped = max((a, b), key=lambda tr: float(np.linalg.norm(tr.velocity)))
                jumped.missed = 1

    def _detect(self, image: np.ndarray) -> None:
        """Run the detector: detections continue the tracks they meet, take lost ones up again, or start new
        ones."""
        lm = self.lm
        boxes, scores, _, angles = lm._detect(image)
        det = to_landmark_boxes(boxes, lm.detector.box_map, angles) if len(boxes) else np.zeros((0, 4))
        tracks = self.tracks
        pairs: list[tuple[int, int]] = []
        if tracks and len(det):
            expected = np.array([tr.expected_box() if tr.missed else tr.box for tr in tracks])
            overlap = iou(expected, det)
            pairs = [(i, j) for i, j in linear_assignment(1.0 - overlap) if overlap[i, j] >= MATCH_IOU]
        for i, j in pairs:
            tracks[i].score = float(scores[j])
        if not self.has_signal:   # no confidence signal: a track no detection confirms is lost
            confirmed = {i for i, _ in pairs}
            for i, tr in enumerate(tracks):
                if i not in confirmed and not tr.missed:
                    tr.missed = 1
        live_boxes = np.array([tr.box for tr in tracks if not tr.missed]).reshape(-1, 4)
        taken = {j for _, j in pairs}
        items: list[tuple[int | None, int]] = [(i, j) for i, j in pairs if tracks[i].missed]
        items += [(None, j) for j in range(len(det)) if j not in taken
                  and (not len(live_boxes) or iou(det[j], live_boxes).max() < MATCH_IOU)]
        if not items:
            return
        faces = lm._faces([(image, boxes[j], float(scores[j])) for _, j in items],
                          det[[j for _, j in items]], lm.refine, [float(angles[j]) for _, j in items])
        # framed again by those points, as the track will be: the model's confidence there must say "a face"
        first = [f.landmarks_3d if f.landmarks_3d is not None else f.landmarks for f in faces]
        crops = [crop_from_landmarks(p, lm.model.input_size, angle=self._angle(p)) for p in first]
        a = lm.model.analyse(np.stack([c.warp(image) for c in crops])).to_source(crops)
        for k, ((i, _), face) in enumerate(zip(items, faces)):
            if a.confidence is not None and a.confidence[k] < self.lost_below:
                continue
            if i is None:
                self.tracks.append(_Track(self.next_id, a.points[k], face.score, self._smoother(), np.zeros(2), 0,
                                          _row(a.uncertainty, k), _row(a.visibility, k)))
                self.next_id += 1
                continue
            tr = tracks[i]
            tr.raw, tr.missed, tr.velocity = a.points[k], 0, np.zeros(2)
            tr.uncertainty, tr.visibility = _row(a.uncertainty, k), _row(a.visibility, k)
            if tr.smoother is not None:
                tr.smoother.reset()

    def _smoother(self) -> FaceSmoother | None:
        return FaceSmoother(self.lm.scheme.outer_eyes, self.motion, self.shape) if self.smooth else None

    def _angle(self, pts: np.ndarray) -> float:
        """The crop angle for a face: 0 within the models' trained rotations (turning the crop upright there
        gained nothing on the validation clips and shook the points a little more), else the angle that turns
        the face upright (from its eyes)."""
        roll = roll_angle(self.lm.scheme.five_points(xy(pts)))
        return roll if abs(roll) > UPRIGHT_BEYOND else 0.0

    def _faces(self, t: float) -> list[Face]:
        live = sorted((tr for tr in self.tracks if not tr.missed), key=lambda tr: tr.id)
        if not live:
            return []
        out = []
        for tr in live:
            out.append(tr.raw if tr.smoother is None else tr.smoother(tr.raw, t))
        pts = np.stack(out)
        boxes = to_detector_boxes(np.array([landmark_box(p) for p in pts]), self.lm.detector.box_map)
        unc = None if any(tr.uncertainty is None for tr in live) else np.stack([tr.uncertainty for tr in live])
        vis = None if any(tr.visibility is None for tr in live) else np.stack([tr.visibility for tr in live])
        return faces_from_points(self.lm.scheme, [(b, tr.score) for b, tr in zip(boxes, live)], pts, unc,
                                 [tr.id for tr in live], vis)


def _merged(a: Analysis, rows: list[int], b: Analysis) -> Analysis:
    """``a`` with its faces ``rows`` replaced by ``b``'s (a second pass on some of them)."""
    def put(x: np.ndarray | None, y: np.ndarray | None) -> np.ndarray | None:
        if x is None or y is None:
            return x
        x = x.copy()
        x[rows] = y
        return x
    return Analysis(*(put(x, y) for x, y in zip(a, b)))


def _row(values: np.ndarray | None, k: int) -> np.ndarray | None:
    """Row ``k`` of a per-face read-out the model may not give (None)."""
    return None if values is None else values[k]


def _moved(pts: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Points moved in the image plane by ``shift`` (2,): a track's face where its last motion takes it."""
    out = np.array(pts, dtype=np.float64, copy=True)
    out[:, :2] += shift
    return out


def _centre(box: np.ndarray) -> np.ndarray:
    return (box[:2] + box[2:]) / 2


def track(landmarker: Landmarker, frames: Iterable[np.ndarray], fps: float = 30.0, **kwargs) -> Iterator[list[Face]]:
    """Each frame's faces, tracked (``Tracker``'s settings as keyword arguments)."""
    tracker = Tracker(landmarker, fps, **kwargs)
    for frame in frames:
        yield tracker.update(frame)
