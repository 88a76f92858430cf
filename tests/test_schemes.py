import numpy as np
import pytest

from facemark.io.datasets import read_pts_folder
from facemark.core.schemes import IBUG68, SCHEMES, WFLW98_TO_68, convert, scheme, scheme_for_points


@pytest.fixture(scope="module")
def shapes68(data):
    return np.array([s.landmarks for s in read_pts_folder(data / "faces68/test/ytf")])


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_flip_is_an_involution(name):
    n = scheme(name).n_points
    flip = np.array(scheme(name).flip)
    assert sorted(flip) == list(range(n))
    assert np.array_equal(flip[flip], np.arange(n))


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_groups_and_regions_cover_valid_indices(name):
    s = scheme(name)
    for parts in (s.groups, s.regions):
        idx = [i for g in parts.values() for i in g]
        assert len(idx) == len(set(idx)) and all(0 <= i < s.n_points for i in idx)
    assert sorted(i for g in s.regions.values() for i in g) == list(range(s.n_points))
    for target, groups in s.to.items():
        assert len(groups) == scheme(target).n_points


def test_schemes_by_name_and_by_count():
    assert set(SCHEMES) == {"ibug68", "wflw98", "cofw29", "aflw19", "five"}
    assert scheme_for_points(98) is scheme("wflw98")
    with pytest.raises(ValueError, match="unknown landmark scheme 'ibug69'"):
        scheme("ibug69")


def test_unknown_point_count_is_a_clear_error():
    with pytest.raises(ValueError, match="no landmark scheme has 7 points"):
        scheme_for_points(7)


def test_shape_points_are_the_same_face_points_in_every_scheme_that_has_them():
    assert IBUG68.shape_points == tuple(range(68))
    assert scheme("wflw98").shape_points == WFLW98_TO_68
    assert not scheme("cofw29").shape_points and not scheme("five").shape_points


def test_flip_maps_left_to_right_on_real_shapes(shapes68):
    width = 400.0
    flipped = IBUG68.flip_points(shapes68, width)
    g = IBUG68.groups
    for shape in (shapes68, flipped):
        # after relabelling, image-left groups stay on the image left for (near-)frontal faces
        left_eye = shape[:, g["left_eye"]].mean(axis=1)[:, 0]
        right_eye = shape[:, g["right_eye"]].mean(axis=1)[:, 0]
        assert np.mean(left_eye < right_eye) > 0.99
        assert np.mean(shape[:, 0, 0] < shape[:, 16, 0]) > 0.99
        assert np.mean(shape[:, 48, 0] < shape[:, 54, 0]) > 0.99
    # mirroring twice restores the shape exactly
    assert np.allclose(IBUG68.flip_points(flipped, width), shapes68)
    # the mean face is nearly symmetric, so the flipped mean matches the original one; a wrong pair would
    # move its points by about one inter-ocular distance
    def centred(s):
        return (s - s.mean(axis=1, keepdims=True)) / np.linalg.norm(s[:, 36] - s[:, 45], axis=1)[:, None, None]
    gap = np.linalg.norm(centred(flipped).mean(0) - centred(shapes68).mean(0), axis=1)
    assert gap.mean() < 0.05 and gap.max() < 0.2


def test_68_to_5_on_real_shapes(shapes68):
    five = convert(shapes68, "five")
    assert five.shape == (len(shapes68), 5, 2)
    assert np.allclose(five[:, 0], shapes68[:, 36:42].mean(axis=1))
    assert np.allclose(five[:, 2], shapes68[:, 30])
    assert np.allclose(five[:, 4], shapes68[:, 54])
    # eyes above the nose above the mouth, left before right
    assert np.mean(five[:, 0, 0] < five[:, 1, 0]) > 0.99
    assert np.mean(five[:, :2, 1].mean(1) < five[:, 2, 1]) > 0.99
    assert np.mean(five[:, 2, 1] < five[:, 3:, 1].mean(1)) > 0.99


def test_98_to_68_and_5():
    pts98 = np.stack([np.arange(98.0), np.arange(98.0) * 2], axis=1)
    p68 = convert(pts98, "ibug68")
    assert p68.shape == (68, 2)
    assert list(p68[:17, 0]) == list(range(0, 33, 2))          # every other jaw point
    assert p68[36, 0] == 60 and p68[45, 0] == 72                 # outer eye corners
    assert list(p68[48:, 0]) == list(range(76, 96))              # mouth
    assert len(set(WFLW98_TO_68)) == 68
    five = convert(pts98, "five")
    assert five[:, 0].tolist() == [96, 97, 54, 76, 82]


def test_98_to_68_is_consistent_with_the_flips():
    # converting a flipped 98 shape equals flipping the converted 68 shape
    rng = np.random.default_rng(0)
    pts98 = rng.uniform(0, 100, (98, 2))
    a = convert(scheme("wflw98").flip_points(pts98, 100), "ibug68")
    b = scheme("ibug68").flip_points(convert(pts98, "ibug68"), 100)
    assert np.allclose(a, b)


def test_no_conversion_between_unrelated_schemes():
    with pytest.raises(ValueError, match="no conversion from cofw29 to ibug68"):
        convert(np.zeros((29, 2)), "ibug68")


def test_3d_points_flip_and_convert_with_their_depth():
    rng = np.random.default_rng(1)
    pts = rng.uniform(0, 100, (68, 3))
    flipped = IBUG68.flip_points(pts, 100)
    assert flipped.shape == (68, 3)
    assert np.allclose(flipped[:, 2], pts[list(IBUG68.flip), 2])        # depth moves with its point, unchanged
    assert np.allclose(flipped[:, 0], 99 - pts[list(IBUG68.flip), 0])
    five = convert(pts, "five")
    assert five.shape == (5, 3) and np.allclose(five[2], pts[30])
