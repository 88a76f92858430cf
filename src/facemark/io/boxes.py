"""Face-detection datasets: photos with face boxes, every format read into ``PhotoBoxes``.

Boxes are (x1, y1, x2, y2) on the image's pixel grid, 0-based, with x2 = x1 + width (the convention of
facemark's detectors). Each format's convention is converted here:
- Pascal VOC XML: 1-based inclusive pixel corners -> x1 = xmin - 1, x2 = xmax; boxes reaching past the image
  are clipped to it.
- YOLO txt: ``class cx cy w h`` as fractions of the image's size (read from the image header).
- WIDER FACE ``wider_face_*_bbx_gt.txt``: ``x y w h`` and 6 flags; ``invalid`` boxes are kept as ignored.
- FDDB ellipse lists: the axis-aligned box around each ellipse.
- dlib's imglab XML: ``top left width height``; ``ignore='1'`` boxes are kept as ignored; 68 ``part``s when
  given.
- 300W scenes (``PHOTO.jpg`` + ``PHOTO_K.pts``): each face's 68 landmarks and their bounding box.
Like the landmark readers, every reader is strict: a malformed line or element raises a DataError naming the
file and line (``errors=[]`` collects and skips instead).
"""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np

from ..core.errors import DataError
from ..core.registry import Registry
from .datasets import IMAGE_EXTS, _Errors, _image_for, _lines, list_pts, read_pts
from .headers import read_header

_Item = TypeVar("_Item")


@dataclass
class PhotoBoxes:
    """One photo: its face boxes (K, 4), which of them to ignore (K,) bool (unscorable: a detection on one is
    neither a hit nor a false box), and the faces' (K, 68, 2) landmarks where the format has them."""

    image: Path
    boxes: np.ndarray
    ignore: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    landmarks: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        if len(self.ignore) != len(self.boxes):
            self.ignore = np.zeros(len(self.boxes), bool)


def _number(value: str | None, path: Path, where: str, line: int | None = None) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DataError(path, f"{where}: not a number: {value!r}", line) from None
    if not math.isfinite(v):
        raise DataError(path, f"{where}: not a finite number: {value!r}", line)
    return v


def _check_box(box: list[float], path: Path, line: int | None) -> list[float]:
    if box[2] <= box[0] or box[3] <= box[1]:
        raise DataError(path, f"box {box} has no area", line)
    return box


def _xml(path: Path) -> ET.Element:
    try:
        return ET.fromstring(path.read_bytes())
    except (OSError, ET.ParseError, LookupError, ValueError) as e:   # LookupError: an unknown declared encoding
        raise DataError(path, f"cannot parse XML ({e.__class__.__name__}: {e})") from None


def _size_of(image: Path, where: Path, line: int | None = None) -> tuple[int, int]:
    try:
        size, orientation = read_header(image.read_bytes()[:1 << 20])
    except OSError as e:
        raise DataError(where, f"cannot read {image} ({e.__class__.__name__})", line) from None
    if size is None:
        raise DataError(image, "image size not readable from its header")
    return size if orientation < 5 else (size[1], size[0])


def read_voc(xml_file: str | Path, image: str | Path | None = None) -> PhotoBoxes:
    """One Pascal VOC annotation (every object is a face; ``difficult`` ones are ignored). The image is
    ``image``, else the file named in ``<filename>`` beside the XML, else the XML's stem with an image suffix."""
    path = Path(xml_file)
    root = _xml(path)
    name = root.findtext("filename")
    img = Path(image) if image else next((c for c in ([path.with_name(name)] if name else []) if c.is_file()),
                                         _image_for(path))
    if img is None or not img.is_file():
        raise DataError(path, "no image for this annotation")
    w = _number(root.findtext("size/width"), path, "size/width")
    h = _number(root.findtext("size/height"), path, "size/height")
    boxes, ignore = [], []
    for k, obj in enumerate(root.iter("object")):
        bb = obj.find("bndbox")
        if bb is None:
            raise DataError(path, f"object {k + 1} has no bndbox")
        x1, y1, x2, y2 = (_number(bb.findtext(t), path, f"object {k + 1} {t}") for t in ("xmin", "ymin", "xmax", "ymax"))
        boxes.append(_check_box([max(0.0, x1 - 1), max(0.0, y1 - 1), min(w, x2), min(h, y2)], path, None))
        ignore.append(obj.findtext("difficult", "0").strip() == "1")
    return PhotoBoxes(img, np.array(boxes), np.array(ignore, bool))


def read_voc_folder(folder: str | Path, errors: list[DataError] | None = None) -> list[PhotoBoxes]:
    """Every VOC annotation (an XML file whose root is ``<annotation>``) under a folder (recursively, sorted)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "folder not found")
    fail, out = _Errors(errors), []
    for xml in sorted(folder.rglob("*.xml")):
        try:
            if _xml(xml).tag == "annotation":
                out.append(read_voc(xml))
        except DataError as e:
            fail(e)
    return out


def read_yolo(folder: str | Path, errors: list[DataError] | None = None) -> list[PhotoBoxes]:
    """A YOLO split folder: ``images/NAME.jpg`` with ``labels/NAME.txt`` lines ``class cx cy w h`` (fractions
    of the image size). A photo without a label file, or with an empty one, has no face (a negative)."""
    folder = Path(folder)
    images_dir, labels_dir = folder / "images", folder / "labels"
    if not images_dir.is_dir():
        raise DataError(folder, "no images/ folder (a YOLO split holds images/ and labels/)")
    fail, out = _Errors(errors), []
    for img in sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_EXTS):
        label = labels_dir / f"{img.stem}.txt"
        try:
            boxes = []
            if label.is_file():
                w, h = _size_of(img, label)
                for i, parts in _lines(label):
                    if len(parts) != 5:
                        raise DataError(label, f"expected 'class cx cy w h', got {len(parts)} fields", i)
                    cx, cy, bw, bh = (_number(v, label, "value", i) for v in parts[1:])
                    boxes.append(_check_box([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w,
                                             (cy + bh / 2) * h], label, i))
            out.append(PhotoBoxes(img, np.array(boxes)))
        except DataError as e:
            fail(e)
    return out


Rows = list[tuple[int, list[str]]]


def _counted(path: Path, zero_row: bool, errors: list[DataError] | None,
             parse: Callable[[int, str, Rows], PhotoBoxes]) -> list[PhotoBoxes]:
    """WIDER's and FDDB's layout: an image path line, a face count line, then a line per face (WIDER writes
    one all-zero line for a photo without faces: ``zero_row``); ``parse(line, path, face lines)`` reads one."""
    lines = _lines(path)
    fail, out, k = _Errors(errors), [], 0
    while k < len(lines):
        i, parts = lines[k]
        start = k
        try:
            if len(parts) != 1:
                raise DataError(path, f"expected an image path, got {len(parts)} fields", i)
            if k + 1 >= len(lines) or len(lines[k + 1][1]) != 1 or not lines[k + 1][1][0].isdigit():
                raise DataError(path, "expected a face count after the image path", i)
            n = int(lines[k + 1][1][0])
            span = max(n, 1) if zero_row else n
            rows = lines[k + 2:k + 2 + span]
            k += 2 + span
            if len(rows) < span:
                raise DataError(path, f"{n} faces announced, fewer lines follow", i)
            out.append(parse(i, parts[0], rows[:n]))
        except DataError as e:
            fail(e)
            k = max(k, start + 1)
    return out


def read_wider(list_file: str | Path, image_root: str | Path,
               errors: list[DataError] | None = None) -> list[PhotoBoxes]:
    """WIDER FACE's ``wider_face_*_bbx_gt.txt``: a path line, a count line, then per face ``x y w h blur
    expression illumination invalid occlusion pose`` (a photo with 0 faces still has one all-zero line)."""
    path, root = Path(list_file), Path(image_root)

    def parse(i: int, name: str, rows: Rows) -> PhotoBoxes:
        boxes, ignore = [], []
        for r, fields in rows:
            if len(fields) != 10:
                raise DataError(path, f"expected 10 fields per face, got {len(fields)}", r)
            x, y, w, h = (_number(v, path, "box", r) for v in fields[:4])
            boxes.append([x, y, x + max(w, 1.0), y + max(h, 1.0)])
            ignore.append(fields[7] == "1" or w <= 0 or h <= 0)      # invalid, or no area: not scorable
        img = root / name
        if not img.is_file():
            raise DataError(path, f"image not found: {img}", i)
        return PhotoBoxes(img, np.array(boxes), np.array(ignore, bool))

    return _counted(path, True, errors, parse)


def read_fddb(list_file: str | Path, image_root: str | Path,
              errors: list[DataError] | None = None) -> list[PhotoBoxes]:
    """An FDDB ellipse list: a path line (without its extension, usually ``.jpg``), a count line, then per face
    ``major_radius minor_radius angle centre_x centre_y 1``; each face's box bounds its ellipse."""
    path, root = Path(list_file), Path(image_root)

    def parse(i: int, name: str, rows: Rows) -> PhotoBoxes:
        boxes = []
        for r, fields in rows:
            if len(fields) < 5:
                raise DataError(path, f"expected 'major minor angle x y 1', got {len(fields)} fields", r)
            a, b, t, cx, cy = (_number(v, path, "ellipse", r) for v in fields[:5])
            hw = math.sqrt((a * math.sin(t)) ** 2 + (b * math.cos(t)) ** 2)
            hh = math.sqrt((a * math.cos(t)) ** 2 + (b * math.sin(t)) ** 2)
            boxes.append(_check_box([cx - hw, cy - hh, cx + hw, cy + hh], path, r))
        stem = root / name
        img = next((c for c in [stem, *(stem.with_name(stem.name + e) for e in IMAGE_EXTS)] if c.is_file()), stem)
        if not img.is_file():
            raise DataError(path, f"image not found: {img}", i)
        return PhotoBoxes(img, np.array(boxes))

    return _counted(path, False, errors, parse)


def read_dlib_xml(xml_file: str | Path, errors: list[DataError] | None = None) -> list[PhotoBoxes]:
    """dlib's imglab XML: ``<image file=...>`` with ``<box top left width height [ignore='1']>``, each with 68
    ``<part name x y>`` where the file has landmarks (then ``landmarks`` holds them, 0-based)."""
    path = Path(xml_file)
    root = _xml(path)
    fail, out = _Errors(errors), []
    for k, im in enumerate(root.iter("image")):
        try:
            file = im.get("file")
            if not file:
                raise DataError(path, f"image {k + 1} has no file attribute")
            img = path.parent / file
            if not img.is_file():
                raise DataError(path, f"image not found: {img}")
            boxes, ignore, parts = [], [], []
            for b in im.iter("box"):
                t, left, w, h = (_number(b.get(a), path, f"image {k + 1} box {a}") for a in
                                 ("top", "left", "width", "height"))
                boxes.append(_check_box([left, t, left + w, t + h], path, None))
                ignore.append(b.get("ignore", "0") == "1")
                pts = {p.get("name"): (_number(p.get("x"), path, "part x"), _number(p.get("y"), path, "part y"))
                       for p in b.iter("part")}
                parts.append([pts[f"{n:02d}"] for n in range(68)] if len(pts) == 68 else None)
            lm = np.array(parts, dtype=np.float64) if parts and all(p is not None for p in parts) else None
            out.append(PhotoBoxes(img, np.array(boxes), np.array(ignore, bool), lm))
        except (DataError, KeyError) as e:
            fail(e if isinstance(e, DataError) else DataError(path, f"image {k + 1}: part {e} missing"))
    return out


def read_scenes(folder: str | Path, errors: list[DataError] | None = None) -> list[PhotoBoxes]:
    """A 300W scenes folder (``PHOTO.jpg`` with ``PHOTO_K.pts`` per annotated face): boxes are the landmarks'
    bounding boxes. Not every face of a photo is annotated in such sets, so they measure recall, not AP."""
    photos: dict[Path, list[np.ndarray]] = defaultdict(list)
    fail = _Errors(errors)
    for pts_path in list_pts(folder).values():
        try:
            img = _image_for(pts_path)
            if img is None:
                raise DataError(pts_path, "no image with the same name beside this annotation")
            photos[img].append(read_pts(pts_path, 68))
        except DataError as e:
            fail(e)
    return [PhotoBoxes(img, np.array([np.r_[f.min(0), f.max(0)] for f in faces]), landmarks=np.stack(faces))
            for img, faces in sorted(photos.items())]


def select_part(photos: list[_Item], part: str) -> list[_Item]:
    """Photos (or faces: anything with an ``image`` path) in file-name order at positions ``k`` mod ``n`` for
    ``part`` = "k/n", or all but those for "-k/n" (a held-out part, and the rest for training)."""
    photos = sorted(photos, key=lambda p: str(p.image))
    if not part:
        return photos
    rest = part.startswith("-")
    k, n = (int(v) for v in part.lstrip("-").split("/"))
    return [p for i, p in enumerate(photos) if (i % n == k) != rest]


# --- the detection formats, by name ------------------------------------------------------------------------------

BOX_FORMATS: Registry[list[PhotoBoxes]] = Registry("detection format")
BOX_FORMATS.register("voc")(lambda path, images=None: read_voc_folder(path))
BOX_FORMATS.register("yolo")(lambda path, images=None: read_yolo(path))
BOX_FORMATS.register("scenes")(lambda path, images=None: read_scenes(path))
BOX_FORMATS.register("dlib")(lambda path, images=None: read_dlib_xml(path))
BOX_FORMATS.register("wider")(lambda path, images=None: read_wider(path, images or Path(path).parent))
BOX_FORMATS.register("fddb")(lambda path, images=None: read_fddb(path, images or Path(path).parent))


def read_boxes(path: str | Path, fmt: str = "auto", images: str | Path | None = None) -> list[PhotoBoxes]:
    """The annotated photos of a detection dataset in any of ``BOX_FORMATS`` (``auto``: told from the files);
    ``images``: the folder WIDER's and FDDB's image paths are relative to (default: the list file's folder)."""
    path = Path(path)
    fmt = guess_box_format(path) if fmt == "auto" else fmt
    if fmt not in BOX_FORMATS:
        raise DataError(path, f"unknown detection format {fmt!r} (known: {', '.join(BOX_FORMATS.names())})")
    return BOX_FORMATS.build(fmt, path=path, images=images)


def guess_box_format(path: Path) -> str:
    """A detection dataset's format from its files: a folder of VOC XML, a YOLO split or 300W scenes; a dlib
    imglab XML, an FDDB ellipse list or a WIDER list file."""
    if path.is_dir():
        if (path / "images").is_dir():
            return "yolo"
        if next(path.rglob("*.xml"), None) is not None:
            return "voc"
        if next(path.rglob("*.pts"), None) is not None:
            return "scenes"
        raise DataError(path, "no VOC XML, YOLO images/labels or .pts annotations found")
    if path.suffix == ".xml":
        return "dlib"
    if "ellipse" in path.name.lower():
        return "fddb"
    if path.name.startswith("wider_face"):
        return "wider"
    raise DataError(path, "cannot tell the annotation format from the name: pass --format")
