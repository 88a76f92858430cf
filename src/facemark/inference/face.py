"""A face as the pipeline returns it: box, score, landmarks, 5 points, head pose (fitted when first read), 3D
points, and in a video its track id."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.points import xy
from ..core.pose import head_poses
from ..core.schemes import Scheme
from ..core.uncertainty import face_quality


class LazyPoses:
    """The head poses of one call's faces, fitted together when the first of them is read: the fit costs
    about 0.5 ms a face, which callers that never read a pose do not pay."""

    def __init__(self, pts: np.ndarray, scheme: str) -> None:
        self.pts, self.scheme, self.values = pts, scheme, None

    def __getitem__(self, k: int) -> dict[str, float]:
        if self.values is None:
            self.values = head_poses(self.pts, self.scheme)
        return dict(zip(("yaw", "pitch", "roll"), map(float, self.values[k])))


@dataclass
class Face:
    """One face: detector box and score, landmarks (N, 2), the 5 derived points (5, 2), head pose in degrees
    (``pose``: yaw, pitch, roll from the 3D shape-model fit of ``facemark.core.pose``, fitted when first read;
    empty for a scheme without a shape model) and, from a model that predicts depth, ``landmarks_3d`` (N, 3):
    x, y as ``landmarks``, z in pixels away from the camera, 0 at the points' mean (else None);
    ``detector_five`` (5, 2): the detector's own 5 points where it gives them (eyes, nose tip, mouth corners:
    enough to align a face without the landmark model), else None; ``track``: the face's track id in a video
    (``inference.tracker``), None for a still image; ``uncertainty`` (N,): each point's expected distance in
    pixels from the true point, and ``quality`` in [0, 1] (1 - expected NME over the box size / 10%), from a
    model whose card holds an uncertainty calibration (``core.uncertainty``), else None; ``visibility`` (N,):
    each point's probability of being in sight (not covered by an object or turned behind the face), from a
    model with a visibility head, else None."""

    box: np.ndarray
    score: float
    landmarks: np.ndarray
    five: np.ndarray
    landmarks_3d: np.ndarray | None = None
    detector_five: np.ndarray | None = None
    _poses: LazyPoses | None = field(default=None, repr=False, compare=False)
    _index: int = field(default=0, repr=False, compare=False)
    track: int | None = None
    uncertainty: np.ndarray | None = None
    quality: float | None = None
    visibility: np.ndarray | None = None

    @property
    def pose(self) -> dict[str, float]:
        """{yaw, pitch, roll} in degrees ({} where the scheme has no shape model)."""
        return {} if self._poses is None else self._poses[self._index]

    def __repr__(self) -> str:
        pose = " ".join(f"{k}={v:+.1f}" for k, v in self.pose.items())
        box = ", ".join(f"{v:.0f}" for v in self.box)
        track = "" if self.track is None else f"track={self.track}, "
        pose = f", {pose}" if pose else ""
        return f"Face({track}box=[{box}], score={self.score:.2f}, {len(self.landmarks)} points{pose})"

    def to_dict(self) -> dict:
        """JSON-ready: box [x1, y1, x2, y2], score, landmarks [[x, y], ...], five, pose {yaw, pitch, roll}, and
        landmarks_3d [[x, y, z], ...] where the model predicts depth, detector_five where the detector gives it,
        track where the face was tracked through a video, uncertainty, quality and visibility where the model
        gives them."""
        r = lambda a: np.round(np.asarray(a, dtype=np.float64), 2).tolist()  # noqa: E731
        out = {"box": r(self.box), "score": round(float(self.score), 4), "landmarks": r(self.landmarks),
               "five": r(self.five), "pose": {k: round(v, 2) for k, v in self.pose.items()}}
        if self.landmarks_3d is not None:
            out["landmarks_3d"] = r(self.landmarks_3d)
        if self.detector_five is not None:
            out["detector_five"] = r(self.detector_five)
        if self.track is not None:
            out["track"] = self.track
        if self.uncertainty is not None:
            out["uncertainty"] = r(self.uncertainty)
            out["quality"] = round(float(self.quality), 4)
        if self.visibility is not None:
            out["visibility"] = np.round(np.asarray(self.visibility, dtype=np.float64), 3).tolist()
        return out


def faces_from_points(scheme: Scheme, boxes_scores: list[tuple[np.ndarray, float]], pts: np.ndarray,
                      uncertainty: np.ndarray | None = None, tracks: list[int] | None = None,
                      visibility: np.ndarray | None = None) -> list[Face]:
    """Faces of one call from their (B, N, D) points: the 5 points, depth, one lazy pose fit for all, and
    uncertainty with its quality, and visibility, where given."""
    poses = LazyPoses(pts, scheme.name) if scheme.shape_points and len(pts) else None
    size = np.sqrt(np.prod(np.ptp(pts[..., :2], axis=1), axis=-1)) if len(pts) else np.zeros(0)
    quality = None if uncertainty is None else face_quality(uncertainty, size)
    return [Face(box=box, score=score, landmarks=xy(p).copy(), five=scheme.five_points(xy(p)),
                 landmarks_3d=p if p.shape[-1] == 3 else None, _poses=poses, _index=k,
                 track=None if tracks is None else tracks[k],
                 uncertainty=None if uncertainty is None else uncertainty[k],
                 quality=None if quality is None else float(quality[k]),
                 visibility=None if visibility is None else visibility[k])
            for k, ((box, score), p) in enumerate(zip(boxes_scores, pts))]
