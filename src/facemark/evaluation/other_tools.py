"""Other landmark tools, run side by side with facemark's models in ``facemark benchmark`` (never used at
inference): dlib's 68-point shape predictor and MediaPipe's face mesh, each given a face box or its own
detector, answering in 0-based pixel coordinates of the image.

- dlib (``pip install dlib-bin face-recognition-models``): the predictor was trained on boxes of dlib's HOG
  detector, so a landmark box is turned into the box that detector would draw (its fitted box map, inverted).
- MediaPipe (``pip install mediapipe==0.10.21``, the last release with its models in the wheel): the face
  mesh finds the face itself, so it gets the square twice the landmark box's side around it (the framing of
  faces68's crops). Its 468 points map onto the iBUG 68 layout only where both name the same anatomical
  point (``MESH_TO_IBUG``): eye corners, nose tip, mouth corners, lip midpoints and chin. Its accuracy is
  reported on those points.
"""
from __future__ import annotations

import numpy as np

from ..core.crop import Crop, landmark_box
from ..core.errors import FacemarkError
from ..inference.detectors import box_map, to_detector_boxes

# iBUG 68 index -> MediaPipe face-mesh index, where both mark the same point
MESH_TO_IBUG = {36: 33, 39: 133, 42: 362, 45: 263, 30: 1, 48: 61, 54: 291, 51: 0, 57: 17, 62: 13, 66: 14, 8: 152}


class DlibLandmarks:
    """dlib's 68-point shape predictor (the model of face-recognition-models) and its HOG detector."""

    tool, model = "dlib", "shape_predictor_68_face_landmarks"
    points = tuple(range(68))

    def __init__(self) -> None:
        try:
            import dlib
            import face_recognition_models
        except ImportError:
            raise FacemarkError("the dlib rows need: pip install dlib-bin face-recognition-models") from None
        self.dlib = dlib
        self.predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())
        self.detector = dlib.get_frontal_face_detector()
        self.map = box_map("dlib")

    def _shape(self, image: np.ndarray, rect) -> np.ndarray:
        return np.array([[p.x, p.y] for p in self.predictor(image, rect).parts()], dtype=np.float64)

    def from_box(self, image: np.ndarray, lm_box: np.ndarray) -> np.ndarray | None:
        x1, y1, x2, y2 = to_detector_boxes(lm_box, self.map)[0]
        return self._shape(image, self.dlib.rectangle(round(x1), round(y1), round(x2) - 1, round(y2) - 1))

    def detect(self, image: np.ndarray) -> list[np.ndarray]:
        return [self._shape(image, r) for r in self.detector(image, 1)]


class MediaPipeMesh:
    """MediaPipe's face mesh (with its own face detector), its points on the iBUG indices of MESH_TO_IBUG."""

    tool, model = "mediapipe", "face_mesh"
    points = tuple(sorted(MESH_TO_IBUG))

    def __init__(self) -> None:
        try:
            import mediapipe as mp

            solutions = mp.solutions
        except (ImportError, AttributeError):
            raise FacemarkError("the mediapipe rows need: pip install mediapipe==0.10.21") from None
        self.one = solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1)
        self.many = solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=20)
        self.index = [MESH_TO_IBUG[i] for i in self.points]

    def _meshes(self, mesh, image: np.ndarray) -> list[np.ndarray]:
        h, w = image.shape[:2]
        found = mesh.process(np.ascontiguousarray(image)).multi_face_landmarks or []
        return [np.array([[f.landmark[k].x * w - 0.5, f.landmark[k].y * h - 0.5] for k in self.index]) for f in found]

    def from_box(self, image: np.ndarray, lm_box: np.ndarray) -> np.ndarray | None:
        x1, y1, x2, y2 = lm_box
        side = 2.0 * max(x2 - x1, y2 - y1)
        crop = Crop((x1 + x2) / 2, (y1 + y2) / 2, side, int(round(side)))
        found = self._meshes(self.one, crop.warp(image))
        return crop.to_source(found[0]) if found else None

    def detect(self, image: np.ndarray) -> list[np.ndarray]:
        return self._meshes(self.many, image)


class MediaPipeVideo:
    """MediaPipe's face mesh in video mode (``static_image_mode=False``: it tracks the face from frame to frame),
    one clip at a time: each frame's faces as (68, 2) arrays holding the points of ``MESH_TO_IBUG`` (NaN
    elsewhere)."""

    tool, model = "mediapipe", "face_mesh (video mode)"
    points = tuple(sorted(MESH_TO_IBUG))

    def __init__(self, max_faces: int = 1) -> None:
        try:
            import mediapipe as mp

            self.solution = mp.solutions.face_mesh
        except (ImportError, AttributeError):
            raise FacemarkError("the mediapipe rows need: pip install mediapipe==0.10.21") from None
        self.max_faces = max_faces

    def clip(self, frames) -> list[list[np.ndarray]]:
        """The faces of each RGB frame of one clip, tracked by a fresh face mesh."""
        out = []
        with self.solution.FaceMesh(static_image_mode=False, max_num_faces=self.max_faces) as mesh:
            for image in frames:
                h, w = image.shape[:2]
                faces = []
                for f in mesh.process(np.ascontiguousarray(image)).multi_face_landmarks or []:
                    p = np.full((68, 2), np.nan)
                    for i, j in MESH_TO_IBUG.items():
                        p[i] = (f.landmark[j].x * w - 0.5, f.landmark[j].y * h - 0.5)
                    faces.append(p)
                out.append(faces)
        return out


OTHERS = {"dlib": DlibLandmarks, "mediapipe": MediaPipeMesh}


def nearest_face(found: list[np.ndarray], gt: np.ndarray, points: tuple[int, ...]) -> np.ndarray | None:
    """The found face whose points' centre lies inside the ground truth's landmark box, nearest its centre."""
    box = landmark_box(gt)
    centre = gt[list(points)].mean(0)
    inside = [f for f in found if box[0] <= f.mean(0)[0] <= box[2] and box[1] <= f.mean(0)[1] <= box[3]]
    return min(inside, key=lambda f: np.linalg.norm(f.mean(0) - centre), default=None)
