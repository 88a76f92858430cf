"""Dataset readers: every format becomes a list of FaceSample in 0-based pixel coordinates.

Coordinate conventions are converted here and nowhere else:
- iBUG ``.pts`` (300W, and facemark's own output): 1-based -> subtract 1.
- menpo ``.ljson``: 0-based (y, x) pairs -> swap to (x, y).
- WFLW lists, MTFL lists, HRNet's AFLW CSV: 0-based already (as their reference loaders use them).
- COFW ``.mat`` (MATLAB): 1-based -> subtract 1.

Every reader is strict: a malformed line, a wrong point count, a non-finite number or a missing image raises a
DataError naming the file and line. Pass ``errors=[]`` to collect bad entries there and skip them instead.

Training and validation configs name datasets by format (``FORMATS``: ``pts``, ``300w_list``, ``wflw``,
``cofw``, ``aflw``, ``mtfl``); a new format is a reader here plus one ``FORMATS.register`` entry.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..core.errors import DataError, FacemarkError, need
from ..core.registry import Registry
from .files import atomic_write_bytes

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp", ".gif")
WFLW_ATTRIBUTES = ("pose", "expression", "illumination", "make_up", "occlusion", "blur")
MTFL_ATTRIBUTES = ("gender", "smile", "glasses", "pose")


@dataclass
class FaceSample:
    """One annotated face.

    ``landmarks`` is (N, D) float64 (D = 2, or 3 with depth), 0-based pixel centres; ``box`` is (x1, y1, x2, y2)
    or None;
    ``visible`` is (N,) bool or None; ``pixels`` holds the RGB image when the format embeds it (COFW).
    """

    image: Path
    landmarks: np.ndarray
    box: np.ndarray | None = None
    attributes: dict[str, int] = field(default_factory=dict)
    visible: np.ndarray | None = None
    pixels: np.ndarray | None = None

    def load_image(self) -> np.ndarray:
        """The face's image as RGB uint8 (HxWx3)."""
        from .images import read_image

        return self.pixels if self.pixels is not None else read_image(self.image)


class _Errors:
    """Raise on the first bad entry, or collect into a caller's list when one was given."""

    def __init__(self, sink: list[DataError] | None) -> None:
        self.sink = sink

    def __call__(self, err: DataError) -> None:
        if self.sink is None:
            raise err
        self.sink.append(err)


def _points(values: list[str] | np.ndarray, n: int | None, path: Path, line: int | None,
            dim: int = 2) -> np.ndarray:
    """(n, dim) float64 points from a flat list of numbers, or a DataError naming the file and line."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(path, "non-numeric landmark value", line) from None
    if arr.size % dim or (n is not None and arr.size != dim * n):
        want = f"{n} points ({dim * n} numbers)" if n is not None else f"a multiple of {dim} numbers"
        raise DataError(path, f"expected {want}, got {arr.size} numbers", line)
    if not np.all(np.isfinite(arr)):
        raise DataError(path, "landmark value is NaN or infinite", line)
    return arr.reshape(-1, dim)


def read_pts(path: str | Path, n_points: int | None = None) -> np.ndarray:
    """Read an iBUG ``.pts`` file (header optional) as (N, 2) 0-based coordinates."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(path, f"cannot read annotation ({e.__class__.__name__})") from None
    declared = None
    rows: list[list[str]] = []
    row_lines: list[int] = []
    for i, raw in enumerate(lines, 1):
        text = raw.strip()
        if not text or text in "{}":
            continue
        key, sep, value = text.partition(":")
        if sep:
            if key.strip() == "n_points":
                try:
                    declared = int(value)
                except ValueError:
                    raise DataError(path, f"bad n_points value {value.strip()!r}", i) from None
            elif key.strip() != "version":
                raise DataError(path, f"unknown header field {key.strip()!r}", i)
            continue
        parts = text.split()
        if len(parts) != 2:
            raise DataError(path, f"expected 'x y', got {text!r}", i)
        rows.append(parts)
        row_lines.append(i)
    if not rows:
        raise DataError(path, "no landmarks in file")
    if declared is not None and declared != len(rows):
        raise DataError(path, f"header says {declared} points, file has {len(rows)}")
    if n_points is not None and len(rows) != n_points:
        raise DataError(path, f"expected {n_points} points, file has {len(rows)}")
    try:
        pts = np.asarray(rows, dtype=np.float64)
    except ValueError:
        pts = None
    if pts is None or not np.all(np.isfinite(pts)):
        for parts, i in zip(rows, row_lines):  # find and name the offending line
            _points(parts, 1, path, i)
    return pts - 1.0


def write_pts(path: str | Path, landmarks: np.ndarray) -> None:
    """Write (N, 2) 0-based landmarks as an iBUG ``.pts`` file (1-based), atomically."""
    pts = np.asarray(landmarks, dtype=np.float64) + 1.0
    body = "\n".join(f"{x:.3f} {y:.3f}" for x, y in pts)
    atomic_write_bytes(Path(path), f"version: 1\nn_points: {len(pts)}\n{{\n{body}\n}}\n".encode())


def _image_for(pts_path: Path) -> Path | None:
    """The image beside a .pts file: same stem, or the photo ``PHOTO`` of ``PHOTO_K.pts``."""
    stems = [pts_path.stem]
    head, _, tail = pts_path.stem.rpartition("_")
    if head and tail.isdigit():
        stems.append(head)
    for stem in stems:
        for ext in IMAGE_EXTS:
            for cand in (pts_path.with_name(stem + ext), pts_path.with_name(stem + ext.upper())):
                if cand.is_file():
                    return cand
    return None


def list_pts(root: str | Path) -> dict[str, Path]:
    """The ``.pts`` files under a folder (recursively), keyed by their path relative to it, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "folder not found")
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*.pts"))}


def read_pts_folder(root: str | Path, n_points: int | None = None,
                    errors: list[DataError] | None = None) -> list[FaceSample]:
    """Read a 300W-layout folder (recursively): every ``X.pts`` with its image ``X.jpg`` (or ``PHOTO.jpg``
    for ``PHOTO_K.pts``, one file per face of a photo). Sorted by path, so the order is stable."""
    root = Path(root)
    fail = _Errors(errors)
    out = []
    for pts_path in list_pts(root).values():
        try:
            lm = read_pts(pts_path, n_points)
            img = _image_for(pts_path)
            if img is None:
                raise DataError(pts_path, "no image with the same name beside this annotation")
            out.append(FaceSample(image=img, landmarks=lm))
        except DataError as e:
            fail(e)
    if not out and not (errors or []):
        raise DataError(root, "no .pts annotations found")
    return out


def _lines(path: Path) -> list[tuple[int, list[str]]]:
    if not path.is_file():
        raise DataError(path, "list file not found")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(path, f"cannot read list file ({e.__class__.__name__})") from None
    return [(i, line.split()) for i, line in enumerate(text.splitlines(), 1) if line.strip()]


def _resolve(root: Path, rel: str, list_path: Path, line: int) -> Path:
    img = (root / rel.replace("\\", "/"))
    if not img.is_file():
        raise DataError(list_path, f"image not found: {img}", line)
    return img


def _parse_lines(list_file: Path, errors: list[DataError] | None,
                 parse: Callable[[int, list[str]], FaceSample]) -> list[FaceSample]:
    """Apply ``parse(line_number, fields)`` to every non-blank line; bad lines raise or are collected."""
    fail = _Errors(errors)
    out = []
    for i, parts in _lines(list_file):
        try:
            out.append(parse(i, parts))
        except DataError as e:
            fail(e)
    return out


def read_300w_list(list_file: str | Path, root: str | Path | None = None, n_points: int = 68,
                   errors: list[DataError] | None = None) -> list[FaceSample]:
    """Read a 300W-style list: one image path per line (relative to ``root``, default the list's folder),
    each with its ``.pts`` beside it."""
    list_file = Path(list_file)
    root = Path(root) if root is not None else list_file.parent

    def parse(i: int, parts: list[str]) -> FaceSample:
        if len(parts) != 1:
            raise DataError(list_file, f"expected one image path, got {len(parts)} fields", i)
        img = _resolve(root, parts[0], list_file, i)
        return FaceSample(image=img, landmarks=read_pts(img.with_suffix(".pts"), n_points))

    return _parse_lines(list_file, errors, parse)


def read_mtfl(list_file: str | Path, root: str | Path | None = None,
              errors: list[DataError] | None = None) -> list[FaceSample]:
    """Read an MTFL list: ``path x1..x5 y1..y5 [gender smile glasses pose]`` (0-based coordinates)."""
    list_file = Path(list_file)
    root = Path(root) if root is not None else list_file.parent

    def parse(i: int, parts: list[str]) -> FaceSample:
        if len(parts) not in (11, 15):
            raise DataError(list_file, f"expected a path and 10 (or 14) numbers, got {len(parts)} fields", i)
        xy = _points(parts[1:11], 5, list_file, i).reshape(-1)
        try:
            attrs = {k: int(v) for k, v in zip(MTFL_ATTRIBUTES, parts[11:])}
        except ValueError:
            raise DataError(list_file, "attribute flags must be integers", i) from None
        return FaceSample(image=_resolve(root, parts[0], list_file, i), landmarks=np.stack([xy[:5], xy[5:]], 1),
                          attributes=attrs)

    return _parse_lines(list_file, errors, parse)


def read_ljson(path: str | Path, group: str | None = None) -> np.ndarray:
    """Read menpo ``.ljson`` landmarks (versions 2 and 3) as (N, 2) 0-based (x, y).

    ``group`` picks a landmark group of a version 3 file; by default the first one with more than 2 points.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(path, f"cannot parse ljson ({e.__class__.__name__}: {e})") from None
    try:
        if data.get("version") == 3:
            groups = data["groups"]
            if group is None:
                group = next(k for k, g in groups.items() if len(g["landmarks"]["points"]) > 2)
            points = groups[group]["landmarks"]["points"]
        elif data.get("version") == 2:
            points = data["landmarks"]["points"]
        else:
            raise DataError(path, f"unsupported ljson version {data.get('version')!r} (2 or 3 supported)")
    except (KeyError, StopIteration, TypeError, AttributeError):
        raise DataError(path, f"ljson has no landmark group {group!r}" if group else "malformed ljson") from None
    yx = _points(points, None, path, None)
    return yx[:, ::-1].copy()


def read_wflw(list_file: str | Path, image_root: str | Path,
              errors: list[DataError] | None = None) -> list[FaceSample]:
    """Read a WFLW list: ``list_98pt_rect_attr_*.txt`` lines (196 coordinates, box x1 y1 x2 y2, 6 attribute
    flags, path) or the per-subset test lists ``list_98pt_test*.txt`` (196 coordinates, path)."""
    list_file = Path(list_file)
    image_root = Path(image_root)

    def parse(i: int, parts: list[str]) -> FaceSample:
        if len(parts) not in (207, 197):
            raise DataError(list_file, f"expected 207 fields (196 + 4 + 6 + path) or 197 (196 + path), "
                                       f"got {len(parts)}", i)
        lm = _points(parts[:196], 98, list_file, i)
        image = _resolve(image_root, parts[-1], list_file, i)
        if len(parts) == 197:
            return FaceSample(image=image, landmarks=lm)
        box = _points(parts[196:200], 2, list_file, i).reshape(4)
        try:
            flags = [int(v) for v in parts[200:206]]
        except ValueError:
            raise DataError(list_file, "attribute flags must be integers", i) from None
        return FaceSample(image=image, landmarks=lm, box=box, attributes=dict(zip(WFLW_ATTRIBUTES, flags)))

    return _parse_lines(list_file, errors, parse)


WFLW_SUBSETS = ("largepose", "expression", "illumination", "makeup", "occlusion", "blur")


def wflw_test_lists(folder: str | Path) -> dict[str, Path]:
    """WFLW's test lists under ``folder`` (its annotation folder): ``full`` (list_98pt_test.txt) and each
    subset's (list_98pt_test_SUBSET.txt) that is there; empty when the folder holds none."""
    found = {p.name: p for p in sorted(Path(folder).rglob("list_98pt_test*.txt"))}
    names = {"full": "list_98pt_test.txt", **{s: f"list_98pt_test_{s}.txt" for s in WFLW_SUBSETS}}
    return {k: found[f] for k, f in names.items() if f in found}


def _cofw_arrays(path: Path, split: str) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Images, (N, 87) shapes and (N, 4) boxes from a COFW .mat (v5 via scipy, v7.3 via h5py)."""
    names = {"train": ("IsTr", "phisTr", "bboxesTr"), "test": ("IsT", "phisT", "bboxesT")}[split]
    if _is_hdf5(path):
        h5py = need("h5py", "datasets", "reading COFW v7.3 .mat files")
        with h5py.File(path, "r") as f:
            missing = [k for k in names if k not in f]
            if missing:
                raise DataError(path, f"COFW file lacks {missing} for split {split!r}")
            refs = np.asarray(f[names[0]]).reshape(-1)
            images = [np.asarray(f[r]).T for r in refs]
            phis = np.asarray(f[names[1]]).T
            boxes = np.asarray(f[names[2]]).T
    else:
        need("scipy.io", "datasets", "reading COFW .mat files")
        mat = _loadmat_isolated(path, names)
        missing = [k for k in names if k not in mat]
        if missing:
            raise DataError(path, f"COFW file lacks {missing} for split {split!r}")
        images = [np.asarray(im) for im in mat[names[0]].reshape(-1)]
        phis, boxes = np.asarray(mat[names[1]]), np.asarray(mat[names[2]])
    return images, np.asarray(phis, dtype=np.float64), np.asarray(boxes, dtype=np.float64)


def _loadmat(path: str, names: tuple[str, ...]) -> dict:
    from scipy.io import loadmat

    return loadmat(path, variable_names=names)


def _loadmat_isolated(path: Path, names: tuple[str, ...]) -> dict:
    """scipy's MATLAB v5 reader crashes the interpreter (SIGSEGV, SIGBUS) on some corrupt files (found by
    tools/fuzz.py), so it runs in a child process: a crash there is a DataError here."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["scipy.io"])
    with ProcessPoolExecutor(1, mp_context=ctx) as pool:
        try:
            return pool.submit(_loadmat, str(path), names).result()
        except BrokenProcessPool:
            raise DataError(path, "the MATLAB file reader crashed on this file (corrupt .mat)") from None


def _is_hdf5(path: Path) -> bool:
    """MATLAB v7.3 files are HDF5 (signature at byte 0, or at 512 after MATLAB's text header)."""
    with path.open("rb") as fh:
        head = fh.read(520)
    return b"\x89HDF\r\n\x1a\n" in (head[:8], head[512:520])


def read_cofw(mat_file: str | Path, split: str = "test",
              errors: list[DataError] | None = None) -> list[FaceSample]:
    """Read COFW (29 points) from ``COFW_train*.mat`` / ``COFW_test*.mat``.

    Each row of ``phis`` is 29 x, 29 y (1-based) and 29 occlusion flags (1 = occluded); boxes are x, y, w, h.
    The images live inside the file and come back in ``FaceSample.pixels``; ``image`` names the file and index.
    """
    from .images import to_rgb8

    path = Path(mat_file)
    if not path.is_file():
        raise DataError(path, "COFW .mat file not found")
    if split not in ("train", "test"):
        raise ValueError("split must be 'train' or 'test'")
    try:
        images, phis, boxes = _cofw_arrays(path, split)
    except FacemarkError:
        raise
    except Exception as e:  # a corrupt .mat file makes scipy and h5py raise exceptions of many types
        raise DataError(path, f"cannot read COFW .mat ({e.__class__.__name__}: {e})") from None
    if phis.ndim != 2 or phis.shape[1] != 87 or len(images) != len(phis) or boxes.shape != (len(phis), 4):
        raise DataError(path, f"COFW arrays disagree: {len(images)} images, shapes {phis.shape}, boxes {boxes.shape}")
    fail = _Errors(errors)
    out = []
    for k, (img, phi, box) in enumerate(zip(images, phis, boxes)):
        try:
            lm = _points(np.stack([phi[:29], phi[29:58]], axis=1), 29, path, k + 1) - 1.0
            x, y, w, h = box
            out.append(FaceSample(image=Path(f"{path}#{k}"), landmarks=lm,
                                  box=np.array([x - 1, y - 1, x - 1 + w, y - 1 + h]),
                                  visible=phi[58:] < 0.5, pixels=to_rgb8(img, Path(f"{path}#{k}"))))
        except DataError as e:
            fail(e)
    return out


def read_aflw_csv(csv_file: str | Path, image_root: str | Path,
                  errors: list[DataError] | None = None) -> list[FaceSample]:
    """Read AFLW-19 in the HRNet CSV convention (header row, then
    ``image_name, scale, box_size, center_w, center_h, x0, y0, ..., x18, y18``, 0-based).

    The box is the square of side ``box_size`` around the centre, which is what AFLW's NME ("box") uses.
    """
    csv_file = Path(csv_file)
    image_root = Path(image_root)
    if not csv_file.is_file():
        raise DataError(csv_file, "CSV file not found")
    fail = _Errors(errors)
    out = []
    try:
        rows = list(csv.reader(io.StringIO(csv_file.read_text(), newline="")))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(csv_file, f"cannot read CSV ({e.__class__.__name__}: {e})") from None
    for i, row in enumerate(rows[1:], 2):
        try:
            if len(row) != 43:
                raise DataError(csv_file, f"expected 43 columns (5 + 38), got {len(row)}", i)
            size, cx, cy = _points(row[2:5] + ["0"], 2, csv_file, i).reshape(4)[:3]
            lm = _points(row[5:], 19, csv_file, i)
            box = np.array([cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2])
            out.append(FaceSample(image=_resolve(image_root, row[0], csv_file, i), landmarks=lm, box=box))
        except DataError as e:
            fail(e)
    return out


# --- head pose (AFLW2000-3D) -----------------------------------------------------------------------------------

@dataclass
class PoseSample:
    """A face with its head pose: ``landmarks`` (68, 2), ``landmarks_3d`` (68, 3: x, y, z in pixels, z away
    from the camera and 0 at the points' mean), ``pose`` (yaw, pitch, roll in degrees, in facemark's convention:
    ``facemark.core.pose``) and the 3D model's ``expression`` coefficients where the file has them."""

    image: Path
    landmarks: np.ndarray
    landmarks_3d: np.ndarray
    pose: dict[str, float]
    expression: np.ndarray | None = None


def read_aflw2000(folder: str | Path, errors: list[DataError] | None = None) -> list[PoseSample]:
    """AFLW2000-3D's layout: ``NAME.jpg`` + ``NAME.mat`` (the fitted 3D model: ``pt3d_68`` 3 x 68, 1-based
    pixels with z in the same scale; ``Pose_Para``: pitch, yaw, roll in radians, ...) + ``NAME.pts`` (the 2D
    re-annotation of the visible outline).

    Points and angles come in facemark's conventions: x and y become 0-based; z (towards the camera in the file)
    becomes z away from the camera, 0 at the 68 points' mean (facemark z = mean(z) - z). AFLW2000-3D's yaw and
    roll have the opposite sign (its yaw > 0 turns the face to the image's left), its pitch the same.
    """
    folder = Path(folder)
    fail, out = _Errors(errors), []
    for pts_path in list_pts(folder).values():
        mat_path = pts_path.with_suffix(".mat")
        try:
            image = _image_for(pts_path)
            if image is None or not mat_path.is_file():
                raise DataError(pts_path, "no image and .mat beside this annotation")
            mat = need("scipy.io", "datasets", "reading AFLW2000-3D .mat files").loadmat(
                str(mat_path), variable_names=("pt3d_68", "Pose_Para", "Exp_Para"))
            pt3d, pose = np.asarray(mat.get("pt3d_68")), np.asarray(mat.get("Pose_Para"))
            expression = mat.get("Exp_Para")
            if pt3d.shape != (3, 68) or pose.size < 3 or not np.isfinite(pt3d).all():
                raise DataError(mat_path, f"expected pt3d_68 3x68 and Pose_Para 1x7, got {pt3d.shape}, {pose.shape}")
            pitch, yaw, roll = np.rad2deg(pose.reshape(-1)[:3].astype(np.float64))
            p3 = pt3d.T.astype(np.float64) - [1.0, 1.0, 0.0]
            p3[:, 2] = p3[:, 2].mean() - p3[:, 2]
            out.append(PoseSample(image, read_pts(pts_path, 68), p3,
                                  {"yaw": float(-yaw), "pitch": float(pitch), "roll": float(-roll)},
                                  None if expression is None else np.asarray(expression, np.float64).reshape(-1)))
        except FacemarkError as e:
            fail(e if isinstance(e, DataError) else DataError(mat_path, str(e)))
        except Exception as e:  # a corrupt .mat makes scipy raise exceptions of many types
            fail(DataError(mat_path, f"cannot read .mat ({e.__class__.__name__}: {e})"))
    if not out and not (errors or []):
        raise DataError(folder, "no AFLW2000-3D faces (NAME.jpg + NAME.mat + NAME.pts) found")
    return out


# --- dataset specs (training / validation configs) ----------------------------------------------------------

FORMATS: Registry = Registry("dataset format")
_PATH_KEYS = ("path", "list", "images", "mat", "csv")


@FORMATS.register("pts")
def _pts_spec(spec: dict, n_points: int) -> list[FaceSample]:
    return read_pts_folder(spec["path"], n_points)


@FORMATS.register("300w_list")
def _300w_spec(spec: dict, n_points: int) -> list[FaceSample]:
    return read_300w_list(spec["list"], spec.get("images"), n_points)


@FORMATS.register("wflw")
def _wflw_spec(spec: dict, n_points: int) -> list[FaceSample]:
    return read_wflw(spec["list"], spec["images"])


@FORMATS.register("cofw")
def _cofw_spec(spec: dict, n_points: int) -> list[FaceSample]:
    return read_cofw(spec["mat"], spec.get("split", "train"))


@FORMATS.register("aflw")
def _aflw_spec(spec: dict, n_points: int) -> list[FaceSample]:
    return read_aflw_csv(spec["csv"], spec["images"])


@FORMATS.register("mtfl")
def _mtfl_spec(spec: dict, n_points: int) -> list[FaceSample]:
    return read_mtfl(spec["list"], spec.get("images"))


def load_dataset(spec: str | dict, root: Path, n_points: int) -> list[FaceSample]:
    """Read one dataset described in a config, paths relative to ``root``.

    A string is a 300W-layout folder; a mapping names its ``format`` (a ``FORMATS`` name) and that reader's
    files: ``{format: pts, path}``, ``{format: 300w_list, list, images}``, ``{format: wflw, list, images}``,
    ``{format: cofw, mat, split}``, ``{format: aflw, csv, images}``, ``{format: mtfl, list, images}``.
    """
    if isinstance(spec, str):
        spec = {"format": "pts", "path": spec}
    spec = dict(spec)
    fmt = spec.pop("format", None)
    resolved = {k: (root / v if k in _PATH_KEYS else v) for k, v in spec.items()}
    if fmt not in FORMATS:
        raise DataError(root, f"dataset spec {dict(spec, format=fmt)!r}: unknown format (known: "
                              f"{', '.join(FORMATS.names())})")
    try:
        samples = FORMATS.build(fmt, spec=resolved, n_points=n_points)
    except KeyError as e:
        raise DataError(root, f"dataset spec {dict(spec, format=fmt)!r}: missing key {e}") from None
    bad = next((s for s in samples if len(s.landmarks) != n_points), None)
    if bad is not None:
        raise DataError(bad.image, f"has {len(bad.landmarks)} points, the config expects {n_points}")
    return samples
