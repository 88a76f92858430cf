"""Fuzzed readers and image decoding: every input either parses or raises facemark's own error naming the
file; never a raw exception. The suite runs a small seeded sample (profile "ci"); ``python tools/fuzz.py``
runs 10,000 random cases per target."""
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from facemark.core.errors import DataError, FacemarkError
from facemark.io.datasets import (read_300w_list, read_aflw_csv, read_cofw, read_ljson, read_mtfl, read_pts,
                                  read_wflw)
from facemark.io.images import read_image, to_rgb8

FIXTURES = Path(__file__).parent / "fixtures"

# numbers as annotation files write them, and the values that break naive parsers
NUMBER = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers().map(str),
                   st.sampled_from(["nan", "inf", "-0", "1e999", "0x10", "", " ", "1,5", "--1", "1.2.3"]))
TOKEN = st.one_of(NUMBER, st.text(max_size=12), st.sampled_from(["img/a.png", "img/b.png", "{", "}", "n_points:",
                                                                   "version: 1", "\x00", "\ufeff"]))


def _line(n_min: int, n_max: int) -> st.SearchStrategy[str]:
    return st.lists(TOKEN, min_size=n_min, max_size=n_max).map(" ".join)


def _mutated(sample: bytes) -> st.SearchStrategy[bytes]:
    """A real file cut, spliced and sprinkled with random bytes."""
    return st.tuples(st.integers(0, len(sample)), st.integers(0, len(sample)), st.binary(max_size=64)).map(
        lambda t: sample[:min(t[0], t[1])] + t[2] + sample[max(t[0], t[1]):])


def _bytes_like(sample: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=512), _mutated(sample))


def _check(root: Path, call) -> None:
    """``call`` parses, or raises a DataError naming the file (or a file under ``root`` it refers to) in one
    line."""
    try:
        call()
    except DataError as e:
        assert e.path.startswith(str(root)) and "\n" not in str(e).strip(), str(e)


def _run(tmp: Path, name: str, content: bytes | str, read, root: Path | None = None) -> None:
    path = tmp / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    _check(root or tmp, lambda: read(path))


@pytest.fixture
def tmp(fixtures):
    return fixtures          # the fixture files and their small images, in a fresh folder


@given(st.one_of(st.lists(_line(0, 4), max_size=80).map("\n".join).map(str.encode),
                 _bytes_like((FIXTURES / "pts_header.pts").read_bytes())))
def test_fuzz_pts(tmp, content):
    _run(tmp, "f.pts", content, read_pts)


@given(st.one_of(st.recursive(st.none() | st.booleans() | st.floats() | st.text(max_size=5),
                              lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                              max_leaves=20).map(lambda v: __import__("json").dumps(v).encode()),
                 st.fixed_dictionaries({"version": st.sampled_from([2, 3, "2", None]),
                                        "landmarks": st.fixed_dictionaries({"points": st.lists(
                                            st.lists(st.floats(), max_size=3), max_size=6)})}).map(
                     lambda v: __import__("json").dumps(v).encode()),
                 _bytes_like((FIXTURES / "v2.ljson").read_bytes())))
def test_fuzz_ljson(tmp, content):
    _run(tmp, "f.ljson", content, read_ljson)


@given(st.one_of(st.lists(_line(190, 210), max_size=3).map("\n".join).map(str.encode),
                 _bytes_like((FIXTURES / "wflw_list.txt").read_bytes())))
def test_fuzz_wflw(tmp, content):
    _run(tmp, "f.txt", content, lambda p: read_wflw(p, tmp))


@given(st.one_of(st.lists(_line(9, 16), max_size=6).map("\n".join).map(str.encode),
                 _bytes_like((FIXTURES / "mtfl.txt").read_bytes())))
def test_fuzz_mtfl(tmp, content):
    _run(tmp, "f.txt", content, read_mtfl)


@given(st.one_of(st.lists(_line(1, 2), max_size=6).map("\n".join).map(str.encode),
                 _bytes_like((FIXTURES / "list_300w.txt").read_bytes())))
def test_fuzz_300w_list(tmp, content):
    _run(tmp, "f.txt", content, read_300w_list)


@given(st.one_of(st.lists(st.lists(TOKEN, min_size=40, max_size=46).map(",".join), max_size=5).map(
    lambda rows: ("header\n" + "\n".join(rows)).encode()), _bytes_like((FIXTURES / "aflw.csv").read_bytes())))
def test_fuzz_aflw_csv(tmp, content):
    _run(tmp, "f.csv", content, lambda p: read_aflw_csv(p, tmp))


def _cofw_sample() -> bytes:
    import io

    from scipy.io import savemat

    buf = io.BytesIO()
    images = np.empty((1, 1), dtype=object)
    images[0, 0] = np.zeros((8, 8), np.uint8)
    savemat(buf, {"IsT": images, "phisT": np.ones((1, 87)), "bboxesT": np.ones((1, 4))})
    return buf.getvalue()


@given(_bytes_like(_cofw_sample()))
def test_fuzz_cofw_mat(tmp, content):
    _run(tmp, "f.mat", content, read_cofw)


def _image_samples() -> list[bytes]:
    import cv2

    img = np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    return [cv2.imencode(ext, img)[1].tobytes() for ext in (".jpg", ".png", ".webp", ".bmp", ".tiff")]


@given(st.one_of(st.binary(max_size=256), *(_mutated(b) for b in _image_samples())))
def test_fuzz_image_files(tmp, content):
    _run(tmp, "f.jpg", content, read_image)


@given(st.tuples(st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.int32, np.bool_, np.complex64]),
                 st.lists(st.integers(0, 5), min_size=0, max_size=4)))
def test_fuzz_image_arrays(args):
    dtype, shape = args
    arr = np.ones(shape, dtype=dtype)
    try:
        out = to_rgb8(arr, "image")
    except FacemarkError as e:
        assert str(e).startswith("image: ")
    else:
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3


DETECT = FIXTURES / "detect"


def _detect_tmp(tmp: Path) -> Path:
    d = tmp / "detect"
    if not (d / "a.png").exists():
        import shutil

        shutil.copy(tmp / "img" / "a.png", d / "a.png")
        shutil.copytree(tmp / "img", d / "img", dirs_exist_ok=True)
        (d / "yolo" / "images").mkdir(exist_ok=True)
        shutil.copy(tmp / "img" / "a.png", d / "yolo" / "images" / "a.png")
    return d


@given(_bytes_like((DETECT / "a.xml").read_bytes()))
def test_fuzz_voc(tmp, content):
    from facemark.io.boxes import read_voc

    _run(_detect_tmp(tmp), "f.xml", content, lambda p: read_voc(p, p.parent / "a.png"))


@given(st.one_of(st.lists(_line(3, 6), max_size=4).map("\n".join).map(str.encode),
                 _bytes_like((DETECT / "yolo" / "labels" / "a.txt").read_bytes())))
def test_fuzz_yolo(tmp, content):
    from facemark.io.boxes import read_yolo

    d = _detect_tmp(tmp)
    _run(d / "yolo" / "labels", "a.txt", content, lambda p: read_yolo(d / "yolo"), root=d)


@given(st.one_of(st.lists(_line(1, 11), max_size=8).map("\n".join).map(str.encode),
                 _bytes_like((DETECT / "wider_face_val_bbx_gt.txt").read_bytes())))
def test_fuzz_wider(tmp, content):
    from facemark.io.boxes import read_wider

    d = _detect_tmp(tmp)
    _run(d, "w.txt", content, lambda p: read_wider(p, d))


@given(st.one_of(st.lists(_line(1, 7), max_size=8).map("\n".join).map(str.encode),
                 _bytes_like((DETECT / "FDDB-fold-01-ellipseList.txt").read_bytes())))
def test_fuzz_fddb(tmp, content):
    from facemark.io.boxes import read_fddb

    d = _detect_tmp(tmp)
    _run(d, "f.txt", content, lambda p: read_fddb(p, d))


@given(_bytes_like((DETECT / "dlib.xml").read_bytes()))
def test_fuzz_dlib_xml(tmp, content):
    from facemark.io.boxes import read_dlib_xml

    _run(_detect_tmp(tmp), "d.xml", content, read_dlib_xml)
