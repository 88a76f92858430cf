"""Detector training data: photos with face boxes decoded once, then one augmented square sample at a time.

Augmentation, in order: a random square crop of ``crop_scale`` times the photo's short side (padded with grey
where it leaves the photo), rotated by a random angle (tilts up to ``rotate`` degrees, and with
``rotate90_prob`` a quarter, half or three-quarter turn: its faces stay faces, for a detector of faces lying
down or upside down, or with ``turned_faces: background`` become background, tilted at most ``TURNED_TILT``,
for a detector that fires only on upright faces), mirrored with the 5-point permutation; mosaics of k x k
photos, k from 2 to ``mosaic_grid`` (crowds of small faces; large grids of portraits make group photos);
annotated training faces pasted at random sizes from 12 px to ``paste_max`` of the sample's side (faces with
5 points; a low-resolution 5-point crop is not enlarged beyond 1.5x), their square's outer ``feather`` fraction
blended into the photo so that no hard patch edge marks them, ``paste_count`` of them (with ``paste_small`` of
them 12-40 px: the faces of crowds); colour, grey and blur. For crowd photos as WIDER FACE holds them, each
sample and each pasted face may also be degraded (``_degrade``: motion blur, low resolution, low light, JPEG,
each with its probability) and the sample stretched by up to ``stretch`` in one direction (photos resized to
a fixed shape: faces that are not square). All of these are off by default.
Faces under ``min_face`` pixels after all that are ignored (neither face nor background); so are faces whose
centre the crop cut off, boxes the dataset marks as ignored, and the ignore regions a first-round detector
mined (``data.ignore_boxes``: faces the annotations leave out).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..core.align import umeyama
from ..core.crop import crop_from_landmarks
from ..core.schemes import scheme
from ..core.shape3d import shape_model
from ..io.boxes import PhotoBoxes, read_boxes, select_part
from ..io.datasets import FaceSample, load_dataset
from ..io.images import read_image

FIVE_FLIP = [1, 0, 2, 4, 3]
TURNED_TILT = 20.0   # the largest tilt of a quarter-turned sample whose faces are background
@dataclass
class Photo:
    """A decoded photo (RGB, longer side at most ``max_side``) with boxes (K, 4), 5 points (K, 5, 2; NaN where
    unknown) and ignore flags (K,)."""

    image: np.ndarray
    boxes: np.ndarray
    points: np.ndarray
    ignore: np.ndarray


def _five(p: PhotoBoxes) -> np.ndarray:
    if p.landmarks is None:
        return np.full((len(p.boxes), 5, 2), np.nan)
    return np.stack([scheme("ibug68").five_points(lm) for lm in p.landmarks]).reshape(-1, 5, 2)


def _decode(p: PhotoBoxes, max_side: int, extra: np.ndarray) -> Photo:
    """The photo scaled to ``max_side``, with its boxes and the ignore regions ``extra`` (E, 4)."""
    image = read_image(p.image)
    s = min(1.0, max_side / max(image.shape[:2]))
    if s < 1:
        image = cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    points = np.concatenate([_five(p), np.full((len(extra), 5, 2), np.nan)])
    boxes = p.boxes if p.landmarks is None else np.array([face_box(lm) for lm in p.landmarks]).reshape(-1, 4)
    return Photo(image, np.concatenate([boxes, extra]) * s, points * s,
                 np.concatenate([p.ignore, np.ones(len(extra), bool)]))


def read_photos(specs: list[dict], root: Path) -> list[PhotoBoxes]:
    """The annotated photos of dataset specs ({format, path[, images], part}: `io.boxes.BOX_FORMATS`), not decoded."""
    return [p for spec in specs
            for p in select_part(read_boxes(root / spec["path"], spec["format"],
                                            root / spec["images"] if "images" in spec else None),
                                 spec.get("part", ""))]


def load_photos(specs: list[dict], root: Path, max_side: int = 640, threads: int = 2,
                ignore_boxes: dict[str, list] | None = None) -> list[Photo]:
    """Every photo of the datasets ``specs`` ({format, path, part}) lists, decoded (faces with 68 landmarks boxed
    by ``face_box``, as face-detection sets draw them); ``ignore_boxes`` (photo path under ``root`` -> boxes,
    from ``tools/experiments/mine_ignore.py``) adds ignore regions: faces a first-round detector found that the
    annotations leave out, neither face nor background."""
    photos = read_photos(specs, root)
    ignore_boxes = ignore_boxes or {}

    def extra(p: PhotoBoxes) -> np.ndarray:
        return np.asarray(ignore_boxes.get(p.image.relative_to(root).as_posix(), []), float).reshape(-1, 4)

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda p: _decode(p, max_side, extra(p)), photos))


@dataclass
class Patch:
    """An annotated face for pasting: image, face box and 5 points in it, and the largest face side (px) it may
    be pasted at."""

    image: np.ndarray
    box: np.ndarray
    points: np.ndarray
    max_face: float = np.inf


def load_patches(sources: list[str | dict], root: Path, limit: int, seed: int = 0) -> list[Patch]:
    """Faces to paste: up to ``limit`` of the 68-point sets together (300W-layout folders: a string, or
    ``{format: pts, path, part}``), each cut 1.6x around its landmarks' box into 128 px; and up to ``limit`` of
    each 5-point set (a dataset spec such as ``{format: mtfl, list, images}``), taken as its crop is, the face
    box placed by ``five_box``. ``part`` ("k/n" or "-k/n", as for photos) keeps a part of a set's faces in
    file-name order."""
    rng = np.random.default_rng(seed)
    specs = [{"format": "pts", "path": f} if isinstance(f, str) else dict(f) for f in sources]
    parts = [spec.pop("part", "") for spec in specs]
    samples = [s for spec, part in zip(specs, parts) if spec["format"] == "pts" for s in _part(spec, part, root, 68)]
    out = []
    for i in rng.permutation(len(samples))[:limit]:
        s = samples[i]
        crop = crop_from_landmarks(s.landmarks, 128, 1.6)
        lm = crop.to_crop(s.landmarks)
        out.append(Patch(crop.warp(s.load_image()), face_box(lm), scheme("ibug68").five_points(lm)))
    for spec, part in ((s, p) for s, p in zip(specs, parts) if s["format"] != "pts"):
        faces = _part(spec, part, root, 5)
        for i in rng.permutation(len(faces))[:limit]:
            image, five = faces[i].load_image(), faces[i].landmarks[:, :2]
            box = five_box(five)
            h, w = image.shape[:2]
            if box[0] < 0 or box[1] < 0 or box[2] > w or box[3] > h:    # the crop cuts the face: not a whole face
                continue
            out.append(Patch(image, box, five, 1.5 * float(np.sqrt(np.prod(box[2:] - box[:2])))))
    return out


def _part(spec: dict, part: str, root: Path, n_points: int) -> list[FaceSample]:
    """A dataset's faces in its reader's order, or its ``part`` of them (in file-name order)."""
    faces = load_dataset(spec, root, n_points)
    return select_part(faces, part) if part else faces


def face_box(landmarks: np.ndarray) -> np.ndarray:
    """The face box of 68 landmarks as face-detection sets draw it: the landmarks' box raised by a fifth of
    its height to take in the forehead."""
    x1, y1 = landmarks[:, :2].min(axis=0)
    x2, y2 = landmarks[:, :2].max(axis=0)
    return np.array([x1, y1 - 0.2 * (y2 - y1), x2, y2])


def five_box(five: np.ndarray) -> np.ndarray:
    """The face box of 5 points: the mean face's ``face_box``, carried by the similarity that takes the mean
    face's 5 points onto these (the bounds of its turned corners)."""
    mean = shape_model().mean[:, :2]
    m = umeyama(scheme("ibug68").five_points(mean), five)
    x1, y1, x2, y2 = face_box(mean)
    corners = np.array([[x1, y1], [x2, y1], [x1, y2], [x2, y2]]) @ m[:, :2].T + m[:, 2]
    return np.r_[corners.min(axis=0), corners.max(axis=0)]


class DetectionAugmenter:
    """One augmented ``size`` x ``size`` sample: image, boxes, 5 points, ignore flags (see the module doc)."""

    def __init__(self, photos: list[Photo], patches: list[Patch], size: int, cfg: dict) -> None:
        self.photos, self.patches, self.size, self.cfg = photos, patches, size, cfg

    def __call__(self, index: int, rng: np.random.Generator) -> Photo:
        c = self.cfg
        if rng.random() < c["mosaic_prob"]:
            k = int(rng.integers(2, c["mosaic_grid"] + 1)) if c["mosaic_grid"] > 2 else 2
            tile = self.size // k
            others = rng.integers(0, len(self.photos), k * k - 1)
            parts = [self._view(self.photos[j], tile, rng) for j in [index, *others]]
            image = np.full((self.size, self.size, 3), 114, np.uint8)
            boxes, points, ignore = [], [], []
            for q, (dy, dx) in zip(parts, np.ndindex(k, k)):
                dx, dy = dx * tile, dy * tile
                image[dy:dy + tile, dx:dx + tile] = q.image
                boxes.append(q.boxes + [dx, dy, dx, dy])
                points.append(q.points + [dx, dy])
                ignore.append(q.ignore)
            out = Photo(image, np.concatenate(boxes), np.concatenate(points), np.concatenate(ignore))
        else:
            out = self._view(self.photos[index], self.size, rng)
        if self.patches and rng.random() < c["paste_prob"]:
            out = self._paste(out, rng)
        out.image = self._photometric(out.image, rng)
        small = np.sqrt(np.prod(out.boxes[:, 2:] - out.boxes[:, :2], axis=1)) < c["min_face"]
        out.ignore = out.ignore | small
        return out

    def _view(self, p: Photo, size: int, rng: np.random.Generator) -> Photo:
        c = self.cfg
        h, w = p.image.shape[:2]
        side = min(h, w) * rng.uniform(*c["crop_scale"])
        cx = rng.uniform(min(side / 2, w - side / 2), max(side / 2, w - side / 2))
        cy = rng.uniform(min(side / 2, h - side / 2), max(side / 2, h - side / 2))
        angle = rng.uniform(-c["rotate"], c["rotate"]) if rng.random() < c["rotate_prob"] else 0.0
        quarter = int(rng.integers(1, 4)) if rng.random() < c["rotate90_prob"] else 0
        background = quarter > 0 and c["turned_faces"] == "background"
        if background:   # its faces stay at least 70 degrees from upright: never a face's tilt elsewhere
            angle = float(np.clip(angle, -TURNED_TILT, TURNED_TILT))
        s = size / side
        m = cv2.getRotationMatrix2D((cx, cy), angle + 90 * quarter, s)
        m[:, 2] += [size / 2 - cx, size / 2 - cy]
        stretch = np.ones(2)
        if c["stretch"] and rng.random() < 0.5:   # wider by a, lower by 1 / a, about the sample's centre
            a = 1.0 + rng.uniform(-c["stretch"], c["stretch"])
            stretch = np.array([a, 1.0 / a])
            m = np.column_stack([stretch[:, None] * m[:, :2], stretch * (m[:, 2] - size / 2) + size / 2])
        image = cv2.warpAffine(p.image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=(114, 114, 114))
        centres = (p.boxes[:, :2] + p.boxes[:, 2:]) / 2
        wh = (p.boxes[:, 2:] - p.boxes[:, :2]) * s
        if quarter % 2:
            wh = wh[:, ::-1]
        wh = wh * stretch
        new_c = centres @ m[:, :2].T + m[:, 2]
        boxes = np.concatenate([new_c - wh / 2, new_c + wh / 2], axis=1)
        points = p.points @ m[:, :2].T + m[:, 2]
        if rng.random() < 0.5:
            image = np.ascontiguousarray(image[:, ::-1])
            boxes = np.column_stack([size - boxes[:, 2], boxes[:, 1], size - boxes[:, 0], boxes[:, 3]])
            points = points[:, FIVE_FLIP] * [-1, 1] + [size, 0]
        # a face cut by the crop's edge is still a face: ignored (neither face nor background) when its centre
        # left the crop, kept (clipped) when it did not
        inside = (new_c >= 0).all(axis=1) & (new_c < size).all(axis=1)
        keep = (boxes[:, 2] > 0) & (boxes[:, 0] < size) & (boxes[:, 3] > 0) & (boxes[:, 1] < size)
        if background:   # faces lying on their side or upside down are taught as background
            keep[:] = False
        boxes = np.clip(boxes[keep], 0, size)
        return Photo(image, boxes, points[keep], p.ignore[keep] | ~inside[keep])

    def _paste(self, out: Photo, rng: np.random.Generator) -> Photo:
        image = out.image.copy()
        boxes, points, ignore = [out.boxes], [out.points], [out.ignore]
        taken = out.boxes.copy()
        least, most = self.cfg["paste_count"]
        for _ in range(int(rng.integers(least, most + 1))):
            q = self.patches[int(rng.integers(len(self.patches)))]
            large = min(self.size * self.cfg["paste_max"], q.max_face)
            small = self.cfg["paste_small"] and rng.random() < self.cfg["paste_small"]
            face = rng.uniform(12, min(40.0, large)) if small else rng.uniform(12, large)
            s = face / np.sqrt(np.prod(q.box[2:] - q.box[:2]))
            side = int(round(q.image.shape[0] * s))
            if side < 8 or side >= self.size:
                continue
            x0, y0 = (int(v) for v in rng.integers(0, self.size - side, 2))
            box = q.box * s + [x0, y0, x0, y0]
            if len(taken) and _overlap(box, taken).max() > 0.0:
                continue
            patch = _degrade(cv2.resize(q.image, (side, side), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR),
                             rng, self.cfg)
            alpha = _feather(side, self.cfg["feather"])
            under = image[y0:y0 + side, x0:x0 + side].astype(np.float32)
            image[y0:y0 + side, x0:x0 + side] = (under + alpha * (patch - under)).astype(np.uint8)
            taken = np.concatenate([taken, _grow(box, side, x0, y0)[None]])
            boxes.append(box[None])
            points.append((q.points * s + [x0, y0])[None])
            ignore.append(np.zeros(1, bool))
        return Photo(image, np.concatenate(boxes), np.concatenate(points), np.concatenate(ignore))

    def _photometric(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        f = img.astype(np.float32)
        if rng.random() < 0.8:
            grey = f.mean(axis=2, keepdims=True)
            f = grey + (f - grey) * rng.uniform(0.6, 1.4)
            f = (f - 127.5) * rng.uniform(0.7, 1.3) + 127.5 + rng.uniform(-25, 25)
        if rng.random() < self.cfg["grey_prob"]:
            f = np.repeat(f.mean(axis=2, keepdims=True), 3, axis=2)
        if rng.random() < 0.1:
            f = cv2.GaussianBlur(f, (0, 0), rng.uniform(0.5, 1.2))
        return _degrade(np.clip(f, 0, 255).astype(np.uint8), rng, self.cfg)


def _degrade(img: np.ndarray, rng: np.random.Generator, c: dict) -> np.ndarray:
    """Crowd-photo faults, each with its probability in ``c`` (0: never drawn): motion blur (a line kernel of
    3-9 px at any angle), low resolution (down 2-4x and back up), low light (darker by a gamma of 1.5-3 and
    0.5-0.9 of the level, with sensor noise) and JPEG at quality 15-50."""
    if c["motion_blur_prob"] and rng.random() < c["motion_blur_prob"]:
        n = int(rng.integers(3, 10))
        kernel = np.zeros((n, n), np.float32)
        kernel[n // 2] = 1.0 / n
        turn = cv2.getRotationMatrix2D(((n - 1) / 2, (n - 1) / 2), float(rng.uniform(0, 180)), 1.0)
        kernel = cv2.warpAffine(kernel, turn, (n, n))
        img = cv2.filter2D(img, -1, kernel / max(kernel.sum(), 1e-6))
    if c["low_res_prob"] and rng.random() < c["low_res_prob"] and min(img.shape[:2]) >= 8:
        h, w = img.shape[:2]
        f = rng.uniform(2, 4)
        small = cv2.resize(img, (max(1, int(w / f)), max(1, int(h / f))), interpolation=cv2.INTER_AREA)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if c["low_light_prob"] and rng.random() < c["low_light_prob"]:
        f = 255.0 * (img / 255.0) ** rng.uniform(1.5, 3.0) * rng.uniform(0.5, 0.9)
        img = np.clip(f + rng.normal(0, rng.uniform(2, 8), img.shape), 0, 255).astype(np.uint8)
    if c["jpeg_prob"] and rng.random() < c["jpeg_prob"]:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(15, 51))])
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED).reshape(img.shape) if ok else img
    return img


def _feather(side: int, fraction: float) -> np.ndarray:
    """(side, side, 1) blending weights of a pasted square: 1 inside, falling linearly to 0 over its outer
    ``fraction`` of the side (all 1 when ``fraction`` is 0)."""
    ramp = max(fraction * side, 1e-6)
    d = np.minimum(np.arange(side), np.arange(side)[::-1]) + 0.5
    edge = np.clip(d / ramp, 0, 1)
    return np.minimum(edge[:, None], edge[None, :])[..., None].astype(np.float32)


def _grow(box: np.ndarray, side: int, x0: int, y0: int) -> np.ndarray:
    """The whole pasted square (it covers whatever was there)."""
    return np.array([x0, y0, x0 + side, y0 + side], dtype=np.float64)


def _overlap(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Intersection area of ``box`` with each of ``others`` over the smaller of the two areas."""
    w = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return w * h / np.maximum(np.minimum(area(box), area(others)), 1e-6)
