"""Where the tools read the shared annotated faces: ../shared/data beside the repository, or $FACEMARK_DATA."""
from __future__ import annotations

import os
from pathlib import Path

DATA = Path(os.environ.get("FACEMARK_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def aflw2000_half(half: str = "even", poses: bool = False) -> list:
    """The even (model-building, validation) or odd (held-out) half of faces3d/aflw2000 in file-name order, as
    2D faces (its re-annotated outline; with ``poses``, the readers' ``PoseSample``s with 3D points and pose),
    faces with angles beyond 99 degrees left out (as evaluate-pose does)."""
    from facemark.io.datasets import FaceSample, read_aflw2000

    faces = sorted(read_aflw2000(DATA / "faces3d" / "aflw2000"), key=lambda s: s.image.name)
    faces = [s if poses else FaceSample(s.image, s.landmarks) for s in faces
             if max(abs(v) for v in s.pose.values()) <= 99]
    return faces[0::2] if half == "even" else faces[1::2]


def helen_holdout(step: int = 1) -> tuple[list, list]:
    """Issue 35's split for the classical models' choices: faces68/train without a quarter of its HELEN faces
    (every ``step``-th face), and that quarter (HELEN's photos are of different people) as validation."""
    from facemark.io.datasets import read_pts_folder

    helen = read_pts_folder(DATA / "faces68" / "train" / "helen", 68)
    train = [h for i, h in enumerate(helen) if i % 4 != 1]
    for sub in ("afw", "ytf"):
        train += read_pts_folder(DATA / "faces68" / "train" / sub, 68)
    return train[::step], helen[1::4]
