"""Landmark schemes, looked up by name: point counts, semantic groups, flip permutations, normalisation points,
pose-template points, regions and conversions.

A scheme is the contract between annotations, models and metrics. Schemes are registered by name (``ibug68``,
``wflw98``, ``cofw29``, ``aflw19``, ``five``); a new layout (say ``jd106``) is one ``Scheme(...)`` and one
``register`` call here. "Left" and "right" in group names are image-left and image-right (the subject's right
and left for a frontal face), as in the iBUG 68 layout.

Points are arrays of shape (..., N, D) with D = 2 (x, y) or 3 (x, y, z): see ``facemark.core.points``.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from .points import xy

Indices = tuple[int, ...]


@dataclass(frozen=True)
class Scheme:
    """One landmark layout.

    ``flip`` is the permutation to apply after mirroring x: ``mirrored[flip]`` puts every point back under
    its own index. ``outer_eyes`` are the two outer eye corners (inter-ocular NME); ``pupils`` lists, per eye,
    the points whose mean is the pupil (inter-pupil NME). ``regions`` are coarse groups for error reports.
    ``shape_points`` are this scheme's indices of the 68 points of the 3D shape model, in iBUG-68 order
    (``facemark.core.shape3d``; empty: no head pose). ``mouth_gap`` pairs upper and lower
    inner-lip points (empty: the mouth-open class is not derived). ``to`` maps a target scheme's name to, per
    target point, the points of this scheme whose mean it is. ``boundaries`` are the facial boundary curves
    (LAB's: jaw, brows, nose, eyelids, lips), each a polyline through its points in order (``core.boundaries``;
    empty: none defined).
    """

    name: str
    n_points: int
    groups: dict[str, Indices]
    flip: Indices
    outer_eyes: tuple[int, int]
    pupils: tuple[Indices, Indices]
    regions: dict[str, Indices] = field(default_factory=dict)
    shape_points: Indices = ()
    mouth_gap: tuple[Indices, Indices] = ((), ())
    to: dict[str, tuple[Indices, ...]] = field(default_factory=dict)
    boundaries: tuple[Indices, ...] = ()

    def __post_init__(self) -> None:
        if sorted(self.flip) != list(range(self.n_points)):
            raise ValueError(f"scheme {self.name}: flip is not a permutation of {self.n_points} points")

    def pupil_points(self, pts: np.ndarray) -> np.ndarray:
        """(..., 2, 2): left and right pupil positions (x, y) of (..., N, D) shapes."""
        p = xy(pts)
        return np.stack([p[..., list(idx), :].mean(axis=-2) for idx in self.pupils], axis=-2)

    def five_points(self, pts: np.ndarray) -> np.ndarray:
        """(..., 5, D): left eye, right eye, nose tip, left and right mouth corner."""
        return convert(pts, "five", self.name)

    def flip_points(self, pts: np.ndarray, width: float) -> np.ndarray:
        """Mirror (..., N, D) shapes in an image ``width`` pixels wide (0-based pixel centres) and relabel.

        Only x changes: mirroring the image leaves a point's height and depth (z) as they were."""
        out = np.array(pts, dtype=np.float64, copy=True)
        out[..., 0] = (width - 1) - out[..., 0]
        return out[..., list(self.flip), :]


SCHEMES: dict[str, Scheme] = {}


def register(s: Scheme) -> Scheme:
    """Add a scheme to the registry (by name; names are unique)."""
    if s.name in SCHEMES:
        raise ValueError(f"scheme {s.name!r} registered twice")
    SCHEMES[s.name] = s
    return s


def scheme(name: str) -> Scheme:
    """The scheme called ``name`` (``ibug68``, ``wflw98``, ``cofw29``, ``aflw19``, ``five``)."""
    try:
        return SCHEMES[name]
    except KeyError:
        raise ValueError(f"unknown landmark scheme {name!r} (known: {', '.join(sorted(SCHEMES))})") from None


def scheme_for_points(n_points: int) -> Scheme:
    """The scheme with ``n_points`` points, for data that carries only a count (old model cards, bare arrays)."""
    found = [s for s in SCHEMES.values() if s.n_points == n_points]
    if len(found) != 1:
        known = sorted(s.n_points for s in SCHEMES.values())
        raise ValueError(f"no landmark scheme has {n_points} points (known: {known})" if not found else
                         f"several schemes have {n_points} points: name one ({', '.join(s.name for s in found)})")
    return found[0]


def convert(pts: np.ndarray, target: str, source: str | None = None) -> np.ndarray:
    """Convert (..., N, D) shapes of scheme ``source`` (default: the one with N points) to scheme ``target``."""
    pts = np.asarray(pts, dtype=np.float64)
    src = scheme(source) if source is not None else scheme_for_points(pts.shape[-2])
    if src.name == target:
        return pts.copy()
    if target not in src.to:
        raise ValueError(f"no conversion from {src.name} to {target}")
    return _mean_matrix(src.name, target) @ pts


@functools.lru_cache(maxsize=None)
def _mean_matrix(source: str, target: str) -> np.ndarray:
    """(T, N) weights whose product with (..., N, D) points of ``source`` averages each target point's points."""
    src = SCHEMES[source]
    w = np.zeros((len(src.to[target]), src.n_points))
    for t, idx in enumerate(src.to[target]):
        np.add.at(w[t], list(idx), 1.0 / len(idx))
    return w


def _pairs(n: int, pairs: list[tuple[int, int]]) -> Indices:
    perm = list(range(n))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return tuple(perm)


def _r(a: int, b: int) -> Indices:
    return tuple(range(a, b))


def _single(indices: Indices) -> tuple[Indices, ...]:
    return tuple((i,) for i in indices)


IBUG68 = register(Scheme(
    name="ibug68",
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
    regions={"jaw": _r(0, 17), "brows": _r(17, 27), "nose": _r(27, 36), "eyes": _r(36, 48), "mouth": _r(48, 68)},
    shape_points=_r(0, 68),
    mouth_gap=((61, 62, 63), (67, 66, 65)),
    to={"five": (_r(36, 42), _r(42, 48), (30,), (48,), (54,))},
    # LAB's 13 boundaries: jaw, brows, nose bridge and bottom, upper and lower eyelids, the lips' four edges
    boundaries=(_r(0, 17), _r(17, 22), _r(22, 27), _r(27, 31), _r(31, 36), _r(36, 40), (39, 40, 41, 36),
                _r(42, 46), (45, 46, 47, 42), _r(48, 55), _r(60, 65), (64, 65, 66, 67, 60),
                (54, 55, 56, 57, 58, 59, 48)),
))

# WFLW 98 -> iBUG 68: every other jaw point, the upper brow contours, the nose, eye corners and the two
# eyelid points nearest the 68 layout's thirds, and the 20 mouth points.
WFLW98_TO_68: Indices = (
    tuple(range(0, 33, 2)) + (33, 34, 35, 36, 37, 42, 43, 44, 45, 46) + tuple(range(51, 60))
    + (60, 61, 63, 64, 65, 67, 68, 69, 71, 72, 73, 75) + tuple(range(76, 96))
)

WFLW98 = register(Scheme(
    name="wflw98",
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
    regions={"jaw": _r(0, 33), "brows": _r(33, 51), "nose": _r(51, 60), "eyes": _r(60, 76) + (96, 97),
             "mouth": _r(76, 96)},
    shape_points=WFLW98_TO_68,
    mouth_gap=((89, 90, 91), (95, 94, 93)),
    to={"ibug68": _single(WFLW98_TO_68), "five": ((96,), (97,), (54,), (76,), (82,))},
))

COFW29 = register(Scheme(
    name="cofw29",
    n_points=29,
    groups={"brows": _r(0, 8), "eyes": _r(8, 16), "pupils": (16, 17), "nose": _r(18, 22),
            "mouth": _r(22, 28), "chin": (28,)},
    flip=_pairs(29, [(0, 1), (2, 3), (4, 6), (5, 7), (8, 9), (10, 11), (12, 14), (13, 15), (16, 17),
                     (18, 19), (22, 23)]),
    outer_eyes=(8, 9),
    pupils=((16,), (17,)),
    regions={"brows": _r(0, 8), "eyes": _r(8, 18), "nose": _r(18, 22), "mouth": _r(22, 28), "chin": (28,)},
    to={"five": ((16,), (17,), (20,), (22,), (23,))},
))

AFLW19 = register(Scheme(
    name="aflw19",
    n_points=19,
    groups={"left_brow": (0, 1, 2), "right_brow": (3, 4, 5), "left_eye": (6, 7, 8), "right_eye": (9, 10, 11),
            "nose": (12, 13, 14), "mouth": (15, 16, 17), "chin": (18,)},
    flip=_pairs(19, [(0, 5), (1, 4), (2, 3), (6, 11), (7, 10), (8, 9), (12, 14), (15, 17)]),
    outer_eyes=(6, 11),
    pupils=((7,), (10,)),
    regions={"brows": _r(0, 6), "eyes": _r(6, 12), "nose": _r(12, 15), "mouth": _r(15, 18), "chin": (18,)},
    to={"five": ((7,), (10,), (13,), (15,), (17,))},
))

FIVE = register(Scheme(
    name="five",
    n_points=5,
    groups={"eyes": (0, 1), "nose": (2,), "mouth": (3, 4)},
    flip=_pairs(5, [(0, 1), (3, 4)]),
    outer_eyes=(0, 1),
    pupils=((0,), (1,)),
    regions={"eyes": (0, 1), "nose": (2,), "mouth": (3, 4)},
))
