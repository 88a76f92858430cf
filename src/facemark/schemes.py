"""Landmark schemes: point counts, semantic groups, flip permutations, normalisation points, conversions.

A scheme is the contract between annotations, models and metrics. "Left" and "right" in group names are
image-left and image-right (the subject's right and left for a frontal face), as in the iBUG 68 layout.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Scheme:
    """One landmark layout.

    ``flip`` is the permutation to apply after mirroring x: ``mirrored[flip]`` puts every point back under
    its own index. ``outer_eyes`` are the two outer eye corners (inter-ocular NME); ``pupils`` lists, per eye,
    the points whose mean is the pupil (inter-pupil NME).
    """

    name: str
    n_points: int
    groups: dict[str, tuple[int, ...]]
    flip: tuple[int, ...]
    outer_eyes: tuple[int, int]
    pupils: tuple[tuple[int, ...], tuple[int, ...]]
    to_5: tuple[tuple[int, ...], ...] = field(default=())

    def __post_init__(self) -> None:
        if sorted(self.flip) != list(range(self.n_points)):
            raise ValueError(f"scheme {self.name}: flip is not a permutation of {self.n_points} points")

    def pupil_points(self, pts: np.ndarray) -> np.ndarray:
        """(..., 2, 2): left and right pupil positions of (..., N, 2) shapes."""
        return np.stack([pts[..., list(idx), :].mean(axis=-2) for idx in self.pupils], axis=-2)

    def five_points(self, pts: np.ndarray) -> np.ndarray:
        """(..., 5, 2): left eye, right eye, nose tip, left and right mouth corner."""
        if not self.to_5:
            raise ValueError(f"scheme {self.name} defines no 5-point conversion")
        return np.stack([pts[..., list(idx), :].mean(axis=-2) for idx in self.to_5], axis=-2)

    def flip_points(self, pts: np.ndarray, width: float) -> np.ndarray:
        """Mirror (..., N, 2) shapes in an image ``width`` pixels wide (0-based pixel centres) and relabel."""
        out = np.array(pts, dtype=np.float64, copy=True)
        out[..., 0] = (width - 1) - out[..., 0]
        return out[..., list(self.flip), :]


def _pairs(n: int, pairs: list[tuple[int, int]]) -> tuple[int, ...]:
    perm = list(range(n))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return tuple(perm)


def _r(a: int, b: int) -> tuple[int, ...]:
    return tuple(range(a, b))


IBUG68 = Scheme(
    name="68",
    n_points=68,
    groups={
        "jaw": _r(0, 17), "left_brow": _r(17, 22), "right_brow": _r(22, 27), "nose_bridge": _r(27, 31),
        "nostrils": _r(31, 36), "left_eye": _r(36, 42), "right_eye": _r(42, 48),
        "outer_mouth": _r(48, 60), "inner_mouth": _r(60, 68),
    },
    flip=_pairs(68, [(i, 16 - i) for i in range(8)]
                + [(17 + i, 26 - i) for i in range(5)]
                + [(31, 35), (32, 34)]
                + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
                + [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]
                + [(60, 64), (61, 63), (65, 67)]),
    outer_eyes=(36, 45),
    pupils=(_r(36, 42), _r(42, 48)),
    to_5=(_r(36, 42), _r(42, 48), (30,), (48,), (54,)),
)

WFLW98 = Scheme(
    name="98",
    n_points=98,
    groups={
        "jaw": _r(0, 33), "left_brow": _r(33, 42), "right_brow": _r(42, 51), "nose_bridge": _r(51, 55),
        "nostrils": _r(55, 60), "left_eye": _r(60, 68), "right_eye": _r(68, 76),
        "outer_mouth": _r(76, 88), "inner_mouth": _r(88, 96), "pupils": (96, 97),
    },
    flip=_pairs(98, [(i, 32 - i) for i in range(16)]
                + [(33 + i, 46 - i) for i in range(5)] + [(38 + i, 50 - i) for i in range(4)]
                + [(55, 59), (56, 58)]
                + [(60 + i, 72 - i) for i in range(5)] + [(65 + i, 75 - i) for i in range(3)]
                + [(76, 82), (77, 81), (78, 80), (83, 87), (84, 86)]
                + [(88, 92), (89, 91), (93, 95), (96, 97)]),
    outer_eyes=(60, 72),
    pupils=((96,), (97,)),
    to_5=((96,), (97,), (54,), (76,), (82,)),
)

COFW29 = Scheme(
    name="29",
    n_points=29,
    groups={"brows": _r(0, 8), "eyes": _r(8, 16), "pupils": (16, 17), "nose": _r(18, 22),
            "mouth": _r(22, 28), "chin": (28,)},
    flip=_pairs(29, [(0, 1), (2, 3), (4, 6), (5, 7), (8, 9), (10, 11), (12, 14), (13, 15), (16, 17),
                     (18, 19), (22, 23)]),
    outer_eyes=(8, 9),
    pupils=((16,), (17,)),
    to_5=((16,), (17,), (20,), (22,), (23,)),
)

AFLW19 = Scheme(
    name="19",
    n_points=19,
    groups={"left_brow": (0, 1, 2), "right_brow": (3, 4, 5), "left_eye": (6, 7, 8), "right_eye": (9, 10, 11),
            "nose": (12, 13, 14), "mouth": (15, 16, 17), "chin": (18,)},
    flip=_pairs(19, [(0, 5), (1, 4), (2, 3), (6, 11), (7, 10), (8, 9), (12, 14), (15, 17)]),
    outer_eyes=(6, 11),
    pupils=((7,), (10,)),
    to_5=((7,), (10,), (13,), (15,), (17,)),
)

FIVE = Scheme(
    name="5",
    n_points=5,
    groups={"eyes": (0, 1), "nose": (2,), "mouth": (3, 4)},
    flip=_pairs(5, [(0, 1), (3, 4)]),
    outer_eyes=(0, 1),
    pupils=((0,), (1,)),
    to_5=((0,), (1,), (2,), (3,), (4,)),
)

SCHEMES: dict[int, Scheme] = {s.n_points: s for s in (IBUG68, WFLW98, COFW29, AFLW19, FIVE)}

# WFLW 98 -> iBUG 68: every other jaw point, the upper brow contours, the nose, eye corners and the two
# eyelid points nearest the 68 layout's thirds, and the 20 mouth points.
WFLW98_TO_68: tuple[int, ...] = (
    tuple(range(0, 33, 2)) + (33, 34, 35, 36, 37, 42, 43, 44, 45, 46) + tuple(range(51, 60))
    + (60, 61, 63, 64, 65, 67, 68, 69, 71, 72, 73, 75) + tuple(range(76, 96))
)


def scheme(n_points: int) -> Scheme:
    """The scheme with ``n_points`` points; a clear error for a count facemark does not know."""
    try:
        return SCHEMES[n_points]
    except KeyError:
        raise ValueError(f"no landmark scheme has {n_points} points (known: {sorted(SCHEMES)})") from None


def convert(pts: np.ndarray, target: int) -> np.ndarray:
    """Convert (..., N, 2) shapes to the ``target`` point count (98 -> 68, 98/68/29/19 -> 5, or identity)."""
    pts = np.asarray(pts, dtype=np.float64)
    n = pts.shape[-2]
    if n == target:
        return pts.copy()
    if n == 98 and target == 68:
        return pts[..., list(WFLW98_TO_68), :]
    if target == 5:
        return scheme(n).five_points(pts)
    raise ValueError(f"no conversion from {n} to {target} points")
