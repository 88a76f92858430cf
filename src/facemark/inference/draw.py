"""Visualisation: boxes, landmarks (their x, y) and head pose (angles and axes) drawn on a copy of an RGB image."""
from __future__ import annotations

import cv2
import numpy as np

from ..core.pose import rotation_from_euler
from .face import Face

# the face's axes as drawn: its right (the viewer's), up, and out of the face towards the viewer; RGB colours
AXES = ((np.array([1.0, 0, 0]), (255, 0, 0)), (np.array([0, -1.0, 0]), (0, 255, 0)), (np.array([0, 0, -1.0]), (0, 0, 255)))


def draw_faces(image: np.ndarray, faces: list[Face]) -> np.ndarray:
    """An annotated copy of an RGB image. Where a face has ``visibility``, each landmark is shaded by it (green in
    sight, red covered) and points more likely covered than not are drawn hollow."""
    out = np.ascontiguousarray(image.copy())
    thick = max(1, round(max(image.shape[:2]) / 500))
    for f in faces:
        x1, y1, x2, y2 = (int(round(v)) for v in f.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), (0, 200, 255), thick)
        radius = max(1, round(np.linalg.norm(np.ptp(f.landmarks[:, :2], axis=0)) / 80))
        seen = np.ones(len(f.landmarks)) if f.visibility is None else np.clip(f.visibility, 0.0, 1.0)
        for (x, y), v in zip(f.landmarks[:, :2], seen):
            colour = (int(round(255 * (1 - v))), int(round(255 * v)), 0)
            cv2.circle(out, (int(round(x)), int(round(y))), radius, colour, -1 if v >= 0.5 else 1, cv2.LINE_AA)
        for x, y in f.five:
            cv2.circle(out, (int(round(x)), int(round(y))), radius + 1, (255, 0, 0), -1, cv2.LINE_AA)
        if f.pose:
            _axes(out, f, thick)
            text = "yaw {yaw:+.0f} pitch {pitch:+.0f} roll {roll:+.0f}".format(**f.pose)
            cv2.putText(out, text, (x1, max(12, y1 - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thick, (255, 255, 0),
                        thick, cv2.LINE_AA)
    return out


def _axes(out: np.ndarray, f: Face, thick: int) -> None:
    """The head pose as three axes from the middle of the face (orthographic, like the pose fit)."""
    r = rotation_from_euler(f.pose["yaw"], f.pose["pitch"], f.pose["roll"])
    origin = f.landmarks[:, :2].mean(axis=0)
    length = 0.4 * np.sqrt(np.prod(np.ptp(f.landmarks[:, :2], axis=0)))
    for axis, colour in AXES:
        tip = origin + length * (r @ axis)[:2]
        cv2.arrowedLine(out, tuple(int(round(v)) for v in origin), tuple(int(round(v)) for v in tip), colour,
                        thick, cv2.LINE_AA, tipLength=0.15)
