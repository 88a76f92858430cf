"""Detection datasets: each format's boxes in facemark's convention, strict errors; detection metrics."""
import shutil

import numpy as np
import pytest

from facemark.core.errors import DataError
from facemark.evaluation.detection import average_precision, iou, match
from facemark.io.boxes import read_dlib_xml, read_fddb, read_scenes, read_voc, read_voc_folder, read_wider, read_yolo


@pytest.fixture
def det(fixtures):
    d = fixtures / "detect"
    shutil.copy(fixtures / "img" / "a.png", d / "a.png")                 # 48 x 32
    (d / "yolo" / "images").mkdir()
    for n in ("a", "b"):
        shutil.copy(fixtures / "img" / f"{n}.png", d / "yolo" / "images" / f"{n}.png")
    shutil.copytree(fixtures / "img", d / "img")
    return d


def test_voc_is_one_based_inclusive_and_clipped(det):
    p = read_voc(det / "a.xml")
    assert p.image == det / "a.png"
    assert p.boxes.tolist() == [[4, 2, 20, 18], [29, 9, 48, 32]]          # xmax 49 clipped to the width 48
    assert p.ignore.tolist() == [False, True]                             # difficult
    assert len(read_voc_folder(det)) == 1


def test_yolo_fractions_of_the_image_size(det):
    a, b = read_yolo(det / "yolo")
    assert np.allclose(a.boxes, [[18, 8, 30, 24], [2.4, 3.2, 7.2, 9.6]])
    assert len(b.boxes) == 0                                              # an empty label file: a negative


def test_wider_invalid_faces_are_ignored(det):
    a, b = read_wider(det / "wider_face_val_bbx_gt.txt", det)
    assert a.boxes.tolist() == [[4, 3, 14, 15], [20, 5, 28, 13]] and a.ignore.tolist() == [False, True]
    assert len(b.boxes) == 0


def test_fddb_ellipse_bounds(det):
    a, b = read_fddb(det / "FDDB-fold-01-ellipseList.txt", det)
    assert np.allclose(a.boxes, [[18, 6, 30, 26]])                       # angle 0: major radius vertical
    assert len(b.boxes) == 0 and a.image.name == "a.png"


def test_dlib_xml(det):
    a, b = read_dlib_xml(det / "dlib.xml")
    assert a.boxes.tolist() == [[4, 3, 19, 19], [30, 10, 40, 20]] and a.ignore.tolist() == [False, True]
    assert len(b.boxes) == 0 and a.landmarks is None


def test_dlib_examples_with_68_parts(data):
    photos = read_dlib_xml(data / "detect/dlib_examples/testing_with_face_landmarks.xml")
    assert sum(len(p.boxes) for p in photos) > 0
    assert all(p.landmarks.shape == (len(p.boxes), 68, 2) for p in photos)


def test_scenes_boxes_bound_the_landmarks(data):
    photos = read_scenes(data / "faces68/scenes/afw")
    assert len(photos) == 185 and sum(len(p.boxes) for p in photos) == 337
    p = photos[0]
    assert np.allclose(p.boxes[:, :2], p.landmarks.min(axis=1)) and np.allclose(p.boxes[:, 2:], p.landmarks.max(axis=1))


@pytest.mark.parametrize("name, text, message", [
    ("a.xml", "<annotation><size><width>48</width><height>x</height></size></annotation>", "size/height: not a number"),
    ("a.xml", "<annotation", "cannot parse XML"),
    ("wider_face_val_bbx_gt.txt", "img/a.png\n1\n1 2 3\n", ":3: expected 10 fields per face"),
    ("FDDB-fold-01-ellipseList.txt", "img/a\nx\n", ":1: expected a face count"),
])
def test_malformed_annotations_name_file_and_line(det, name, text, message):
    (det / name).write_text(text)
    read = {"a.xml": lambda p: read_voc(p), "wider_face_val_bbx_gt.txt": lambda p: read_wider(p, det),
            "FDDB-fold-01-ellipseList.txt": lambda p: read_fddb(p, det)}[name]
    with pytest.raises(DataError, match=message):
        read(det / name)


def test_yolo_bad_line(det):
    (det / "yolo" / "labels" / "a.txt").write_text("0 0.5 0.5 0.25\n")
    with pytest.raises(DataError, match="a.txt:1: expected 'class cx cy w h'"):
        read_yolo(det / "yolo")
    errors = []
    assert len(read_yolo(det / "yolo", errors)) == 1 and len(errors) == 1


def test_iou_matching_and_ap():
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]], float)
    assert iou(gt[:1], np.array([[5, 0, 15, 10]]))[0, 0] == pytest.approx(50 / 150)
    det = np.array([[0, 0, 10, 10], [21, 21, 31, 31], [100, 100, 110, 110], [40, 40, 50, 50]], float)
    owner, taken = match(det, gt, np.array([False, False, True]), 0.5)
    assert owner.tolist() == [0, 1, -1, -2] and taken.tolist() == [True, True, False]
    # two faces; detections scored 0.9 (hit), 0.8 (false), 0.7 (hit): precision 1 up to recall 0.5, 2/3 at 1
    assert average_precision(np.array([0.9, 0.8, 0.7]), np.array([True, False, True]), 2) == \
        pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
