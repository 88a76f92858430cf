"""Detection on whole photos: recall at IoU 0.5 and 0.3, average precision, false boxes per photo, ms per photo,
and the landmark NME of the faces found where 68 points are annotated (``facemark evaluate-detect``).

Faces smaller than ``min_face`` pixels (the shorter side of their box) and boxes the annotation marks as
ignored are neither required nor counted against a detector; detections that small are left out. On 300W
scenes (faces annotated by 68 points) a detection is compared, through its detector's box map, with the
landmarks' square box, the framing the landmark models are trained on; such sets do not annotate every face,
so they give no AP.
"""
from __future__ import annotations

import time

import numpy as np

from ..core.detection import iou
from ..inference.detectors import Detector, to_landmark_boxes
from ..inference.landmarker import Landmarker
from ..io.boxes import PhotoBoxes
from ..io.images import read_image
from .metrics import nme


def match(det: np.ndarray, gt: np.ndarray, ignore: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching of detections (best score first) to faces: per detection its face's index, -1 (false)
    or -2 (on an ignored face: neutral); per face whether a detection found it."""
    overlaps = iou(det, gt)
    taken = np.zeros(len(gt), bool)
    owner = np.full(len(det), -1)
    for d in range(len(det)):
        if not len(gt):
            break
        free = np.where(~taken & ~ignore, overlaps[d], -1.0)
        g = int(free.argmax())
        if free[g] >= threshold:
            taken[g], owner[d] = True, g
        elif (overlaps[d][ignore] >= threshold).any() if ignore.any() else False:
            owner[d] = -2
    return owner, taken


def average_precision(scores: np.ndarray, hits: np.ndarray, n_faces: int) -> float:
    """Area under the precision-recall curve (all-point interpolation, as Pascal VOC from 2010)."""
    if n_faces == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(hits[order])
    fp = np.cumsum(~hits[order])
    recall = np.r_[0.0, tp / n_faces, 1.0] if len(tp) else np.array([0.0, 1.0])
    precision = np.r_[1.0, tp / np.maximum(tp + fp, 1), 0.0] if len(tp) else np.array([1.0, 0.0])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    return float(np.sum(np.diff(recall) * precision[1:]))


def rotate_photo(image: np.ndarray, photo: PhotoBoxes, quarters: int) -> tuple[np.ndarray, PhotoBoxes]:
    """The photo turned counter-clockwise by ``quarters`` quarter turns, with its boxes and landmarks."""
    boxes, lms = photo.boxes.copy(), None if photo.landmarks is None else photo.landmarks.copy()
    for _ in range(quarters % 4):
        w = image.shape[1]
        image = np.rot90(image)
        boxes = np.column_stack([boxes[:, 1], w - boxes[:, 2], boxes[:, 3], w - boxes[:, 0]])
        if lms is not None:
            lms = np.stack([lms[..., 1], w - 1 - lms[..., 0]], axis=-1)
    return np.ascontiguousarray(image), PhotoBoxes(photo.image, boxes, photo.ignore, lms)


def evaluate_detector(detector: Detector, photos: list[PhotoBoxes], min_face: float = 20.0,
                      landmarker: Landmarker | None = None, scenes: bool = False, quarters: int = 0,
                      size: str = "side") -> dict:
    """The report of one detector on annotated photos (see the module docstring), turned counter-clockwise
    by ``quarters`` quarter turns (faces lying on their side, or upside down); ``size``: how a face's size is
    measured for ``min_face`` and the size bands (``face_size``)."""
    if size not in SIZES:
        raise ValueError(f"size {size!r}: one of {', '.join(SIZES)}")
    import cv2

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    scores, hits, found50, found30, times, false, n_faces, errors = [], [], 0, 0, [], 0, 0, []
    sizes, found_sizes = [], []   # the scored faces' sizes and whether each was found
    try:
        for photo in photos:
            image, photo = rotate_photo(read_image(photo.image), photo, quarters)
            t = time.perf_counter()
            boxes, conf = detector.detect(image)
            times.append(time.perf_counter() - t)
            keep = face_size(boxes, size) >= min_face
            boxes, conf = boxes[keep], conf[keep]
            gt = photo.boxes
            small = face_size(gt, size) < min_face
            ignore = photo.ignore | small
            if scenes:    # compare in the landmark models' framing
                gt, cmp = square(gt), to_landmark_boxes(boxes, detector.box_map)
            else:
                cmp = boxes
            owner, taken = match(cmp, gt, ignore, 0.5)
            _, taken30 = match(cmp, gt, ignore, 0.3)
            n_faces += int((~ignore).sum())
            sizes += list(face_size(gt, size)[~ignore])
            found_sizes += list(taken[~ignore])
            found50 += int(taken.sum())
            found30 += int(taken30.sum())
            false += int((owner == -1).sum())
            scores += list(conf[owner != -2])
            hits += list(owner[owner != -2] >= 0)
            if landmarker is not None and photo.landmarks is not None and (owner >= 0).any():
                # the whole pipeline (a detector's 5 points turn its crops upright), matched by box
                faces = landmarker.detect(image)
                found = np.array([f.box for f in faces]).reshape(-1, 4)
                for i, g in zip(np.flatnonzero(owner >= 0), owner[owner >= 0]):
                    if len(found):
                        face = faces[int(np.abs(found - boxes[i]).sum(axis=1).argmin())]
                        errors.append(nme(face.landmarks, photo.landmarks[g], "iod")[0])
    finally:
        cv2.setNumThreads(threads)
    return {"photos": len(photos), "faces": n_faces, "recall": found50 / max(n_faces, 1),
            "recall_iou30": found30 / max(n_faces, 1),
            "ap": None if scenes else average_precision(np.array(scores), np.array(hits, bool), n_faces),
            "false_per_photo": false / max(len(photos), 1), "ms_per_photo": float(np.median(times) * 1000),
            "landmark_nme": float(np.mean(errors)) if errors else None, "landmark_faces": len(errors),
            "min_face": min_face, "size": size,
            "recall_by_size": _by_size(np.array(sizes), np.array(found_sizes, bool))}


SIZE_BANDS = ((20, 32), (32, 64), (64, 128), (128, None))   # face sizes, pixels (``face_size``)
SIZES = ("side", "area")


def face_size(boxes: np.ndarray, size: str = "side") -> np.ndarray:
    """(K,) face sizes of boxes (K, 4) in pixels: the shorter side (``side``), or sqrt(w * h) (``area``: how
    WIDER FACE's size bands are usually drawn)."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return np.minimum(w, h) if size == "side" else np.sqrt(np.maximum(w, 0) * np.maximum(h, 0))


def _by_size(sizes: np.ndarray, found: np.ndarray) -> dict[str, dict]:
    """Recall at IoU 0.5 per band of face size: {"20-32": {"faces", "recall"}, ...} (bands with faces only)."""
    out = {}
    for lo, hi in SIZE_BANDS:
        m = (sizes >= lo) & (sizes < hi if hi else True)
        if m.any():
            out[f"{lo}-{hi}" if hi else f"{lo}+"] = {"faces": int(m.sum()), "recall": float(found[m].mean())}
    return out


def square(boxes: np.ndarray) -> np.ndarray:
    """Boxes (K, 4) made square about their centres, side = the longer side (landmark boxes as models frame)."""
    c = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])[:, None] / 2
    return np.concatenate([c - half, c + half], axis=1)
