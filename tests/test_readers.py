import json

import h5py
import numpy as np
import pytest
from scipy.io import savemat

from facemark.core.errors import DataError
from facemark.io.datasets import (read_300w_list, read_aflw_csv, read_cofw, read_ljson, read_mtfl, read_pts,
                              read_pts_folder, read_wflw, write_pts)


# --- .pts --------------------------------------------------------------------------------------------------

def test_pts_with_and_without_header_are_1_based(fixtures):
    for name in ("pts_header.pts", "pts_noheader.pts"):
        pts = read_pts(fixtures / name)
        assert pts.tolist() == [[0.0, 0.0], [9.5, 19.25], [99.0, 199.0]]


@pytest.mark.parametrize("name, message", [
    ("bad_count.pts", "header says 4 points, file has 3"),
    ("bad_nan.pts", "bad_nan.pts:5: landmark value is NaN"),
    ("bad_line.pts", "bad_line.pts:5: expected 'x y'"),
])
def test_pts_errors_name_file_and_line(fixtures, name, message):
    with pytest.raises(DataError, match=message):
        read_pts(fixtures / name)


def test_pts_wrong_point_count(fixtures):
    with pytest.raises(DataError, match="expected 68 points, file has 3"):
        read_pts(fixtures / "pts_header.pts", 68)


def test_write_pts_round_trip(tmp_path):
    pts = np.array([[0.0, 1.5], [10.25, 20.0]])
    write_pts(tmp_path / "x.pts", pts)
    assert (tmp_path / "x.pts").read_text().startswith("version: 1\nn_points: 2\n{\n1.000 2.500\n")
    assert np.allclose(read_pts(tmp_path / "x.pts"), pts)


def test_real_pts_sample(data):
    pts = read_pts(data / "samples/einstein.pts")
    assert pts.shape == (68, 2)
    first = (data / "samples/einstein.pts").read_text().splitlines()[3].split()
    assert np.allclose(pts[0], [float(first[0]) - 1, float(first[1]) - 1])


def test_pts_folder_real_data(data):
    test = read_pts_folder(data / "faces68/test/ytf", 68)
    assert len(test) == 631
    assert all(s.image.suffix == ".jpg" and s.image.is_file() for s in test[:20])


def test_pts_folder_scenes_layout(data):
    # scenes: PHOTO_K.pts annotates face K of PHOTO.jpg
    faces = read_pts_folder(data / "faces68/scenes/afw", 68)
    assert len(faces) == 337
    multi = [s for s in faces if s.image.stem == "111076519"]
    assert len(multi) >= 2 and len({s.image for s in multi}) == 1


def test_pts_folder_missing_image_is_an_error_or_collected(tmp_path, fixtures):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "lonely.pts").write_text((fixtures / "pts_header.pts").read_text())
    with pytest.raises(DataError, match="lonely.pts: no image"):
        read_pts_folder(tmp_path / "d")
    errors = []
    assert read_pts_folder(tmp_path / "d", errors=errors) == []
    assert len(errors) == 1 and "lonely.pts" in str(errors[0])


# --- lists -------------------------------------------------------------------------------------------------

def test_300w_list(fixtures):
    faces = read_300w_list(fixtures / "list_300w.txt", n_points=3)
    assert [f.image.name for f in faces] == ["a.png", "b.png"]
    assert faces[0].landmarks[1].tolist() == [9.5, 19.25]


def test_mtfl_list(fixtures):
    faces = read_mtfl(fixtures / "mtfl.txt")
    assert faces[0].landmarks.tolist() == [[10, 30], [20, 30], [15, 40], [11, 50], [19, 50]]
    assert faces[0].attributes == {}
    assert faces[1].attributes == {"gender": 1, "smile": 2, "glasses": 1, "pose": 3}
    with pytest.raises(DataError, match="mtfl_bad.txt:1: expected a path and 10"):
        read_mtfl(fixtures / "mtfl_bad.txt")


def test_mtfl_real(data):
    faces = read_mtfl(data / "faces5/new_testing.txt")
    assert len(faces) == 2995
    line = (data / "faces5/new_testing.txt").read_text().splitlines()[0].split()
    assert np.allclose(faces[0].landmarks[:, 0], [float(v) for v in line[1:6]])
    assert np.allclose(faces[0].landmarks[:, 1], [float(v) for v in line[6:11]])


def test_missing_image_in_list_names_line(fixtures):
    (fixtures / "img" / "b.png").unlink()
    with pytest.raises(DataError, match="mtfl.txt:2: image not found"):
        read_mtfl(fixtures / "mtfl.txt")
    errors = []
    assert len(read_mtfl(fixtures / "mtfl.txt", errors=errors)) == 1 and len(errors) == 1


def test_wflw_list(fixtures):
    faces = read_wflw(fixtures / "wflw_list.txt", fixtures)
    assert len(faces) == 2
    f = faces[0]
    assert f.landmarks.shape == (98, 2)
    assert f.landmarks[5].tolist() == [5.5, 10.25]
    assert f.box.tolist() == [10, 20, 210, 220]
    assert f.attributes == {"pose": 1, "expression": 0, "illumination": 0, "make_up": 1, "occlusion": 0, "blur": 1}
    assert faces[1].landmarks[0].tolist() == [1.5, 1.25]


def test_wflw_malformed_line(fixtures):
    lines = (fixtures / "wflw_list.txt").read_text().splitlines()
    (fixtures / "wflw_list.txt").write_text(lines[0] + "\n" + " ".join(lines[1].split()[1:]) + "\n")
    with pytest.raises(DataError, match="wflw_list.txt:2: expected 207 fields"):
        read_wflw(fixtures / "wflw_list.txt", fixtures)


def test_aflw_csv(fixtures):
    faces = read_aflw_csv(fixtures / "aflw.csv", fixtures)
    assert len(faces) == 2
    assert faces[0].landmarks.shape == (19, 2)
    assert faces[0].landmarks[2].tolist() == [32.5, 44.0]
    assert faces[1].box.tolist() == [60 - 50.5, 70 - 50.5, 60 + 50.5, 70 + 50.5]


def test_ljson_v3_real_and_v2(data, fixtures):
    lenna = read_ljson(data / "samples/lenna.ljson")
    raw = json.loads((data / "samples/lenna.ljson").read_text())["groups"]["LJSON"]["landmarks"]["points"]
    assert lenna.shape == (68, 2) and lenna[8].tolist() == [raw[8][1], raw[8][0]]
    assert read_ljson(data / "samples/lenna.ljson", group="pupils").tolist() == [[265.0, 265.0], [328.0, 265.0]]
    assert read_ljson(fixtures / "v2.ljson").tolist() == [[10.0, 20.0], [30.25, 40.5], [50.0, 60.0]]


# --- COFW .mat ---------------------------------------------------------------------------------------------

def _cofw_arrays():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (20, 30), dtype=np.uint8), rng.integers(0, 255, (25, 25, 3), dtype=np.uint8)]
    phis = np.zeros((2, 87))
    phis[:, :29] = np.arange(29) + 1.0      # x, 1-based
    phis[:, 29:58] = np.arange(29) + 11.0   # y, 1-based
    phis[1, 58 + 16] = 1                    # second face: left pupil occluded
    boxes = np.array([[1.0, 2.0, 10.0, 12.0], [3.0, 4.0, 5.0, 6.0]])
    return images, phis, boxes


def _check_cofw(faces):
    assert len(faces) == 2
    assert faces[0].landmarks[0].tolist() == [0.0, 10.0]
    assert faces[0].landmarks[28].tolist() == [28.0, 38.0]
    assert faces[0].visible.all() and not faces[1].visible[16] and faces[1].visible.sum() == 28
    assert faces[0].box.tolist() == [0.0, 1.0, 10.0, 13.0]
    assert faces[0].load_image().shape == (20, 30, 3) and faces[1].load_image().shape == (25, 25, 3)


def test_cofw_v5_mat(tmp_path):
    images, phis, boxes = _cofw_arrays()
    cell = np.empty((2, 1), dtype=object)
    cell[0, 0], cell[1, 0] = images
    savemat(tmp_path / "COFW_test.mat", {"IsT": cell, "phisT": phis, "bboxesT": boxes})
    _check_cofw(read_cofw(tmp_path / "COFW_test.mat", "test"))


def test_cofw_v73_hdf5(tmp_path):
    # MATLAB v7.3 stores arrays transposed and cell arrays as object references, after a 512-byte header
    images, phis, boxes = _cofw_arrays()
    path = tmp_path / "COFW_test_color.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        refs = []
        for k, im in enumerate(images):
            refs.append(f.create_dataset(f"#refs#/{k}", data=im.T).ref)
        f.create_dataset("IsT", data=np.array(refs, dtype=h5py.ref_dtype).reshape(1, 2))
        f.create_dataset("phisT", data=phis.T)
        f.create_dataset("bboxesT", data=boxes.T)
    with open(path, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: test HDF5 schema 1.00 .")
    _check_cofw(read_cofw(path, "test"))


def test_cofw_missing_arrays(tmp_path):
    savemat(tmp_path / "x.mat", {"foo": np.zeros(3)})
    with pytest.raises(DataError, match="lacks"):
        read_cofw(tmp_path / "x.mat", "train")


def test_wflw_per_subset_test_lists_without_box_and_flags(fixtures):
    full = read_wflw(fixtures / "wflw_list.txt", fixtures)
    short = fixtures / "annotations" / "list_98pt_test"
    short.mkdir(parents=True)
    lines = [line.split() for line in (fixtures / "wflw_list.txt").read_text().splitlines()]
    (short / "list_98pt_test.txt").write_text("".join(" ".join(p[:196] + p[-1:]) + "\n" for p in lines))
    (short / "list_98pt_test_blur.txt").write_text(" ".join(lines[1][:196] + lines[1][-1:]) + "\n")
    faces = read_wflw(short / "list_98pt_test.txt", fixtures)
    assert [f.image for f in faces] == [f.image for f in full]
    assert all(np.array_equal(a.landmarks, b.landmarks) for a, b in zip(faces, full))
    assert faces[0].box is None and faces[0].attributes == {}
    from facemark.io.datasets import wflw_test_lists

    assert sorted(wflw_test_lists(fixtures / "annotations")) == ["blur", "full"]


def test_aflw2000_pose_in_facemarks_convention(data):
    from facemark.core.pose import head_pose
    from facemark.io.datasets import read_aflw2000

    faces = read_aflw2000(data / "faces3d/aflw2000")
    assert len(faces) == 994
    f = faces[0]
    assert f.landmarks.shape == (68, 2) and f.landmarks_3d.shape == (68, 3) and set(f.pose) == {"yaw", "pitch", "roll"}
    # facemark's yaw (> 0: towards the image's right) agrees in sign with the pose of the annotated points
    turned = [x for x in faces if 30 < abs(x.pose["yaw"]) < 90][:40]
    assert np.mean([np.sign(head_pose(x.landmarks)[0]) == np.sign(x.pose["yaw"]) for x in turned]) > 0.9
    # z: away from the camera, 0 at the points' mean, so a frontal face's nose tip has the smallest z
    front = [x for x in faces if max(abs(v) for v in x.pose.values()) < 10][0]
    assert abs(front.landmarks_3d[:, 2].mean()) < 1e-9 and np.argmin(front.landmarks_3d[:, 2]) in (30, 33)
    assert f.expression is not None and f.expression.shape == (29,)
