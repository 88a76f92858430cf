"""`facemark_any` against `facemark` face by face on the upright AFW photos (faces68/scenes/afw): the landmark
NME of each annotated face both pipelines find (matched by the landmarks' centre), and the faces where they
differ most, with the head roll each pipeline reports (a roll near +-90 or 180 degrees: the crop took a wrong
quarter turn). Then why: each quarter turn's detections on the same upright photos (at ``facemark_any``'s
threshold), grouped where they overlap (IoU > 0.4) across turns: how often a turned detection outscores the
upright one, and by how much.

    python tools/experiments/any_angle_check.py [--weights DETECTOR.onnx --min-score S]   # facemark_any with other weights
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from facemark.core.detection import iou
from facemark.evaluation.metrics import nme
from facemark.inference.detectors import AnyAngleDetector, SingleShotDetector, build_detector
from facemark.inference.landmarker import Landmarker
from facemark.io.boxes import read_scenes
from facemark.io.images import read_image

from _data import DATA


def nearest(faces: list, gt: np.ndarray):
    """The face whose landmarks' centre is nearest the annotation's, within 0.3 of its width; else None."""
    c, width = gt.mean(axis=0), np.ptp(gt[:, 0])
    dist = [np.linalg.norm(f.landmarks.mean(axis=0) - c) for f in faces]
    k = int(np.argmin(dist)) if dist else -1
    return faces[k] if k >= 0 and dist[k] < 0.3 * width else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", help="facemark_any's detector weights (default: the shipped ones)")
    ap.add_argument("--min-score", type=float, default=build_detector("facemark_any").min_score,
                    help="facemark_any's threshold (default: the shipped one)")
    a = ap.parse_args()
    anyf = AnyAngleDetector(a.weights, min_score=a.min_score)
    pipelines = {"facemark": Landmarker(detector=build_detector("facemark"), threads=1),
                 "facemark_any": Landmarker(detector=anyf, threads=1)}
    rows = []
    for photo in read_scenes(DATA / "faces68/scenes/afw"):
        image = read_image(photo.image)
        found = {n: lm.detect(image) for n, lm in pipelines.items()}
        for gt in photo.landmarks:
            one, anyf = nearest(found["facemark"], gt), nearest(found["facemark_any"], gt)
            if one is not None and anyf is not None:
                rows.append((nme(one.landmarks, gt, "iod")[0], nme(anyf.landmarks, gt, "iod")[0], photo.image.name,
                             one.pose["roll"], anyf.pose["roll"]))
    errors = np.array([r[:2] for r in rows])
    same = np.isclose(errors[:, 0], errors[:, 1]).sum()
    print(f"{len(rows)} faces found by both: mean NME facemark {errors[:, 0].mean():.2%}, facemark_any "
          f"{errors[:, 1].mean():.2%}; the same landmarks on {same}")
    for r in sorted(rows, key=lambda r: r[0] - r[1])[:10]:
        print(f"{r[2]}: NME {r[0]:.3f} / {r[1]:.3f}, roll {r[3]:+.0f} / {r[4]:+.0f}")
    turn_contests(a.weights, a.min_score)
    return 0


def turn_contests(weights: str | None, min_score: float) -> None:
    """Per upright AFW photo, the detections of each quarter turn (in the photo's pixels); for every group that
    overlaps across turns, the turn of its best detection and that score's lead over the best upright one."""
    turned = [SingleShotDetector(weights, min_score=min_score, turns=(q,)) for q in range(4)]
    groups, won = 0, []
    for photo in read_scenes(DATA / "faces68/scenes/afw"):
        image = read_image(photo.image)
        found = [(q, b, s) for q, d in enumerate(turned) for b, s in zip(*d.detect(image))]
        if not found:
            continue
        boxes = np.array([b for _, b, _ in found])
        turns, scores = np.array([q for q, _, _ in found]), np.array([s for _, _, s in found])
        overlap = iou(boxes, boxes) > 0.4
        for i in np.argsort(-scores):
            rivals = np.flatnonzero(overlap[i] & (turns != turns[i]))
            if len(rivals) and scores[i] >= scores[rivals].max():
                groups += 1
                upright = scores[rivals][turns[rivals] == 0]
                if turns[i] != 0:
                    won.append((photo.image.name, int(turns[i]), scores[i], upright.max() if len(upright) else None))
    print(f"{groups} faces detected in more than one quarter turn; a turned detection wins {len(won)}:")
    for name, q, s, up in won:
        print(f"  {name}: turn {q * 90} scores {s:.2f}, upright " + ("none" if up is None else f"{up:.2f}"))


if __name__ == "__main__":
    sys.exit(main())
