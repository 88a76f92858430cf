"""Pose, crop, codec and alignment: the geometry between image, crop and model."""
import numpy as np
import pytest

from facemark.core.align import align_face, template, umeyama
from facemark.core.codecs import RegressionCodec
from facemark.core.crop import Crop, crop_from_landmarks, landmark_box
from facemark.core.pose import (euler_from_rotation, fit_landmarks, head_pose, head_poses, lift_3d, project_model,
                                rotation_from_euler)
from facemark.core.shape3d import shape_model
from facemark.io.datasets import read_pts_folder


@pytest.mark.parametrize("angles", [(0, 0, 0), (35, 0, 0), (-35, 0, 0), (0, 20, 0), (0, -20, 0), (0, 0, 30),
                                    (25, -15, 10), (-50, 10, -20), (80, 0, 0)])
def test_known_rotation_comes_back(angles):
    pts = project_model(*angles, scale=80.0, centre=(320.0, 240.0))
    assert np.allclose(head_pose(pts), angles, atol=0.5)


def test_euler_round_trip():
    rng = np.random.default_rng(0)
    for a in rng.uniform(-60, 60, (20, 3)):
        assert np.allclose(euler_from_rotation(rotation_from_euler(*a)), a, atol=1e-9)


def test_pose_signs_match_the_documented_axes():
    front = project_model(0, 0, 0)
    nose, chin, eye_l, eye_r = 30, 8, 36, 45   # nose tip (in front of the face plane), chin, outer eye corners
    assert front[nose, 2] < front[eye_l, 2] - 0.1      # z grows away from the camera
    # yaw > 0: the face turns towards the image's right, so the nose moves right
    assert project_model(30, 0, 0)[nose, 0] > front[nose, 0] + 5
    # pitch > 0: the face tilts up, so the chin moves up (smaller y)
    assert project_model(0, 20, 0)[chin, 1] < front[chin, 1] - 5
    # roll > 0: counter-clockwise in the image, so the image-right eye rises above the image-left one
    rolled = project_model(0, 0, 20)
    assert rolled[eye_r, 1] < rolled[eye_l, 1] - 5


def test_shape_model_is_mirror_symmetric_and_unit_sized():
    from facemark.core.schemes import IBUG68
    mean = shape_model().mean
    assert np.sqrt((mean ** 2).sum(axis=1).mean()) == pytest.approx(1.0, abs=1e-3)
    mirrored = mean[list(IBUG68.flip)] * [-1, 1, 1]
    assert np.abs(mirrored - mean).max() < 0.03


def test_rotating_the_image_rotates_the_face_about_the_optical_axis(data):
    # Euler angles in AFLW2000-3D's composition (roll innermost) all change when a turned face rotates in the
    # image plane; the rotation itself gains exactly the in-plane turn
    s = read_pts_folder(data / "faces68/test/ytf")[0].landmarks
    c = np.array([150.0, 150.0])
    a = np.deg2rad(-15)                       # counter-clockwise on screen (y down)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    base, turned = fit_landmarks(np.stack([s, (s - c) @ rot.T + c])).rotation
    diff = rotation_from_euler(0, 0, 15) @ base @ turned.T
    assert np.degrees(np.arccos(np.clip((np.trace(diff) - 1) / 2, -1, 1))) < 1.0
    front = project_model(0, 0, 0)[:, :2]     # a frontal face: roll alone
    assert np.allclose(head_pose(front @ rot.T), (0, 0, 15), atol=0.5)


def test_pose_does_not_depend_on_where_the_face_is_or_its_size(data):
    s = read_pts_folder(data / "faces68/test/ytf")[0].landmarks
    base = np.array(head_pose(s))
    for shift, scale in [((900.0, 0.0), 1.0), ((-100.0, 700.0), 1.0), ((0.0, 0.0), 3.0)]:
        assert np.allclose(head_pose(s * scale + shift), base, atol=1e-6)


def test_fit_gives_depth_that_turns_with_the_face():
    pts = project_model(40, 0, 0, scale=100.0)
    lifted = lift_3d(pts[:, :2])
    assert np.allclose(lifted[:, :2], pts[:, :2])
    assert np.abs(lifted[:, 2] - pts[:, 2]).mean() < 2.0     # pixels, on a face of radius 100
    # a batch fits each face on its own
    assert np.allclose(head_poses(np.stack([pts, project_model(-20, 5, 0)])), [[40, 0, 0], [-20, 5, 0]], atol=0.5)


def test_crop_maps_points_and_pixels_consistently():
    yy, xx = np.mgrid[0:200, 0:300]
    blob = np.exp(-((xx - 80.0) ** 2 + (yy - 120.0) ** 2) / (2 * 4.0 ** 2))   # a blob centred at (80, 120)
    img = np.repeat((blob * 255).astype(np.uint8)[:, :, None], 3, axis=2)
    for crop in (Crop(100.0, 100.0, 100.0, 50), Crop(90.0, 110.0, 60.0, 64, angle=30.0)):
        out = crop.warp(img)[:, :, 0].astype(np.float64)
        cy, cx = np.mgrid[0:out.shape[0], 0:out.shape[1]]
        centroid = [(out * cx).sum() / out.sum(), (out * cy).sum() / out.sum()]
        assert np.allclose(crop.to_crop([80, 120]), centroid, atol=0.15)
    crop = Crop(100.0, 100.0, 100.0, 50)
    for angle in (0.0, 17.0):
        c = Crop(100.0, 90.0, 80.0, 64, angle)
        p = np.array([[10.0, 20.0], [150.0, 95.5]])
        assert np.allclose(c.to_source(c.to_crop(p)), p)
    # the crop centre maps to the centre pixel
    assert np.allclose(crop.to_crop([100, 100]), [24.5, 24.5])


def test_crop_from_landmarks_frames_the_face():
    pts = np.array([[10.0, 20.0], [50.0, 20.0], [30.0, 100.0]])
    c = crop_from_landmarks(pts, 112, scale=1.2)
    assert (c.cx, c.cy, c.side) == (30.0, 60.0, 96.0)
    assert landmark_box(pts).tolist() == [10, 20, 50, 100]


def test_regression_codec_round_trip():
    codec = RegressionCodec(112, 3)
    pts = np.array([[[-0.5, -0.5], [55.5, 55.5], [111.5, 0.0]]])
    enc = codec.encode(pts)
    assert enc.shape == (1, 6) and enc[0, :4].tolist() == [0.0, 0.0, 0.5, 0.5] and enc[0, 4] == 1.0
    assert np.allclose(codec.decode(enc), pts, atol=1e-5)


def test_umeyama_recovers_a_similarity():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (5, 2))
    a, s, t = np.deg2rad(25), 1.7, np.array([3.0, -8.0])
    m_true = np.hstack([s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]), t[:, None]])
    dst = src @ m_true[:, :2].T + m_true[:, 2]
    assert np.allclose(umeyama(src, dst), m_true)


def test_align_face_puts_the_five_points_on_the_template():
    img = np.zeros((300, 300, 3), np.uint8)
    five = template(112) * 2.0 + [40, 30]      # a face twice the template's size
    for x, y in five:
        img[int(round(y)), int(round(x))] = 255
    out = align_face(img, five, 112)
    assert out.shape == (112, 112, 3)
    m = umeyama(five, template(112))
    assert np.allclose(five @ m[:, :2].T + m[:, 2], template(112), atol=1e-6)
    assert np.allclose(template(224), template(112) * 2)


def test_large_face_warp_blurs_only_its_region_with_the_same_pixels():
    import cv2

    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (600, 900, 3), dtype=np.uint8)
    for crop in (Crop(450.0, 300.0, 400.0, 64), Crop(30.0, 580.0, 500.0, 64, angle=25.0)):
        k = int(crop.side / crop.size) | 1
        whole = cv2.GaussianBlur(img, (k, k), crop.side / crop.size / 3)
        ref = cv2.warpAffine(whole, crop.matrix(), (64, 64), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        assert np.array_equal(crop.warp(img), ref)
    assert not Crop(5000.0, 5000.0, 300.0, 32).warp(img).any()      # a crop off the image is black



def test_the_mesh_of_a_turned_face_hides_its_far_side():
    """``core.mesh.self_occlusion`` on the shape model's mean face: nothing hidden seen from the front; turned to
    60 degrees, the far jaw, the far eye's outer corner and the far nose wing go behind the face, and only far
    points do (the other side's when turned the other way); more of it the further it turns."""
    from facemark.core.mesh import self_occlusion
    from facemark.core.pose import project_model

    def hidden(yaw: float) -> set[int]:
        return set(np.flatnonzero(~self_occlusion(project_model(yaw, 0, 0, scale=40.0, centre=(100.0, 100.0)))))

    assert not hidden(0)
    right, left = hidden(60), hidden(-60)
    assert {14, 15, 16, 45, 35} <= right and {0, 1, 2, 36, 31} <= left and not right & left
    assert right < hidden(85)


def test_the_shape_model_is_built_back_from_faces_it_made(tmp_path):
    """``core.shape_build`` (what tools/build_shape_model.py writes into shape68.npz): faces drawn from the shipped
    model (random expression and identity coefficients, turned, scaled and moved) build a model with its mean,
    whose basis reconstructs a new face of the same kind; saved, it loads back as ``ShapeModel``."""
    from facemark.core.pose import rotation_from_euler
    from facemark.core.shape3d import ShapeModel
    from facemark.core.shape_build import build_shape_model, save_shape_model

    m = shape_model()
    rng = np.random.default_rng(0)

    def faces(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        coeffs = rng.normal(size=(n, len(m.std))) * m.std
        poses = rng.uniform(-40, 40, (n, 3))
        pts = [80 * s @ rotation_from_euler(*p).T + [200, 150, 0] for s, p in zip(m.shapes(coeffs), poses)]
        return np.array(pts), poses, coeffs[:, :m.n_expression]

    built, share = build_shape_model(*faces(200), m.n_expression, len(m.std) - m.n_expression)
    assert np.sqrt(((built.mean - m.mean) ** 2).sum(axis=1).mean()) < 0.01 and 0 < share < 1
    shape = m.shapes(rng.normal(size=(1, len(m.std))) * m.std)[0]
    shape = shape - shape.mean(axis=0)
    dev = (shape / np.sqrt((shape ** 2).sum(axis=1).mean()) - built.mean).ravel()
    basis = built.basis.reshape(len(built.basis), -1)
    fit = basis.T @ np.linalg.lstsq(basis.T, dev, rcond=None)[0]
    assert np.linalg.norm(dev - fit) < 0.05 * np.linalg.norm(dev)
    save_shape_model(built, tmp_path / "s.npz")
    with np.load(tmp_path / "s.npz") as z:
        back = ShapeModel(z["mean"], z["basis"], z["std"], int(z["n_expression"]))
    np.testing.assert_allclose(back.mean, built.mean, atol=1e-6)
