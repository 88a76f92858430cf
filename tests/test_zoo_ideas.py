"""Issue 36's ideas, each against its formula on a hand-made case: HIH's codec and loss, boundary heatmaps and
tangents (LAB / PropagationNet / ADNet), the anisotropic direction loss, the differentiable soft-argmax."""
import math

import numpy as np
import pytest
import torch

from facemark.core.boundaries import boundary_maps, curve_neighbours, tangents
from facemark.core.codecs import HeatmapCodec, HIHCodec
from facemark.core.schemes import scheme
from facemark.training.config import ModelSpec
from facemark.training.losses import LOSSES, AdaptiveWingLoss, direction_loss, local_soft_argmax
from facemark.training.models import MODELS

IBUG = scheme("ibug68")


# --- HIH ----------------------------------------------------------------------------------------------------

def test_hih_round_trip_is_exact():
    rng = np.random.default_rng(0)
    pts = rng.uniform(4, 124, (3, 68, 2))
    codec = HIHCodec(128, 68, stride=4, sigma=1.5, radius=1)
    t = codec.encode(pts)
    assert t["target"].shape == (3, 68, 32, 32) and t["offset"].shape == (3, 136, 32, 32)
    assert np.allclose(codec.decode((t["target"], t["offset"])), pts, atol=1e-4)
    # without the decimal part the same maps read to the nearest cell centre only
    assert np.abs(HIHCodec(128, 68, decoder="argmax").decode((t["target"], t["offset"])) - pts).max() <= 2.0 + 1e-9


def test_hih_offsets_train_within_radius_of_the_point():
    codec = HIHCodec(32, 1, stride=4, radius=1)
    t = codec.encode(np.array([[[13.5, 17.5]]]))       # cell (x, y) = (3.0, 4.0) + (0.0, 0.0): (p + 0.5) / 4 - 0.5
    mask = t["offset_mask"][0, 0]
    assert mask.sum() == 9 and mask[3:6, 2:5].all()
    assert t["offset"][0, 0, 4, 2] == pytest.approx(1.0) and t["offset"][0, 1, 5, 3] == pytest.approx(-1.0)


def test_hih_loss_is_awing_plus_masked_l1():
    codec = HIHCodec(32, 2, stride=4, radius=1)
    t = {k: torch.from_numpy(v) for k, v in codec.encode(np.array([[[10.0, 12.0], [20.0, 6.0]]])).items()}
    maps = torch.rand(1, 2, 8, 8)
    offsets = t["offset"] + 0.25 * t["offset_mask"].repeat_interleave(2, dim=1)   # every trained offset off by 1/4
    loss = LOSSES.build("hih", offset_weight=2.0)(maps, offsets, t)
    awing = AdaptiveWingLoss()(maps, t["target"])
    assert loss.item() == pytest.approx(awing.item() + 2.0 * 0.5, rel=1e-5)   # |dx| + |dy| = 0.5 per cell


# --- boundaries ---------------------------------------------------------------------------------------------

def test_boundary_maps_peak_on_the_curve_and_fall_with_distance():
    pts = np.zeros((1, 68, 2))
    pts[0, :17] = np.stack([np.linspace(10, 110, 17), np.full(17, 62.0)], axis=1)   # a straight jaw, row y = 62
    maps = boundary_maps(pts, IBUG, 32, 4, sigma=1.0)
    assert maps.shape == (1, 13, 32, 32)
    row = (62 + 0.5) / 4 - 0.5                                                       # 15.125 cells
    col = maps[0, 0, :, 16]
    assert col.argmax() == 15 and col[15] > 0.95
    for dy in (2, 3):     # the distance transform is within a fifth of a cell of the exact distance
        exact = math.exp(-((15 + dy - row) ** 2) / 2)
        assert col[15 + dy] == pytest.approx(exact, abs=0.12)
    start = (10 + 0.5) / 4 - 0.5                                                     # the jaw ends 2.125 cells in
    assert maps[0, 0, :, 0].max() == pytest.approx(math.exp(-start ** 2 / 2), abs=0.12)


def test_tangents_follow_each_curve():
    prev, nxt = curve_neighbours(IBUG)
    assert (prev[5], nxt[5]) == (4, 6) and (prev[0], nxt[0]) == (0, 1)               # jaw: inside and at an end
    assert (prev[36], nxt[36]) == (41, 37) and (prev[39], nxt[39]) == (38, 40)       # eye corners join both lids
    pts = np.zeros((1, 68, 2))
    pts[0, :17] = np.stack([np.linspace(10, 110, 17), np.full(17, 62.0)], axis=1)
    assert np.allclose(tangents(pts, IBUG)[0, 3], [1.0, 0.0])


def test_direction_loss_weights_across_more_than_along():
    tangent = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])          # point 0 on a horizontal curve, point 1 on none
    target = torch.zeros(1, 2, 2)
    along = direction_loss(torch.tensor([[[2.0, 0.0], [0.0, 0.0]]]), target, tangent, tangent_weight=0.5)
    across = direction_loss(torch.tensor([[[0.0, 2.0], [0.0, 0.0]]]), target, tangent, tangent_weight=0.5)
    free = direction_loss(torch.tensor([[[0.0, 0.0], [3.0, 4.0]]]), target, tangent, tangent_weight=0.5)
    assert along.item() == pytest.approx(0.5 * 2.0 / 2) and across.item() == pytest.approx(2.0 / 2)
    assert free.item() == pytest.approx(5.0 / 2)


def test_torch_soft_argmax_equals_the_codec_decoder():
    rng = np.random.default_rng(3)
    maps = rng.random((2, 5, 16, 16)).astype(np.float32)
    maps[0, 0, 0, 1] = 3.0                                        # a peak at the border: the window is cut
    codec = HeatmapCodec(64, 5, stride=4, decoder="soft_argmax", window=5, tau=10.0)
    cells = local_soft_argmax(torch.from_numpy(maps), 5, 10.0).numpy()
    assert np.allclose((cells + 0.5) * 4 - 0.5, codec.decode(maps), atol=1e-4)


def test_boundary_refiner_trains_both_heads_and_exports_the_last():
    spec = ModelSpec("ibug68", 68, 2, 64, {"name": "heatmap", "stride": 4})
    m = MODELS.build("hrnet", spec=spec, width=8, blocks=1, modules=[1, 1, 1], stem_blocks=1, boundaries=True,
                     attention="anisotropic").eval()
    x = torch.rand(1, 3, 64, 64)
    out = m.forward_train(x)
    assert [o.shape for o in out["out"]] == [(1, 68, 16, 16)] * 2 and out["boundary"].shape == (1, 13, 16, 16)
    assert torch.equal(m(x), out["out"][-1])
    with pytest.raises(ValueError, match="no boundary curves"):
        MODELS.build("hrnet", spec=ModelSpec("cofw29", 29, 2, 64, {}), width=8, boundaries=True)


# --- AnchorFace ---------------------------------------------------------------------------------------------

def test_anchor_codec_finds_the_pose_clusters_and_round_trips():
    from facemark.core.codecs import AnchorCodec

    rng = np.random.default_rng(0)
    base = rng.uniform(20, 100, (68, 2))
    left, right = base + [-15.0, 0.0], base + [15.0, 0.0]          # two "poses"
    faces = np.concatenate([left + rng.normal(0, 0.5, (40, 68, 2)), right + rng.normal(0, 0.5, (60, 68, 2))])
    codec = AnchorCodec(128, 68, count=2)
    codec.fit(faces)
    centres = sorted(codec.anchors.mean(axis=1)[:, 0])
    assert centres == pytest.approx(sorted([left[:, 0].mean(), right[:, 0].mean()]), abs=0.5)
    t = codec.encode(faces[:1])
    assert np.allclose(codec.anchors[t["anchor"][0]], left, atol=1.0)
    # offsets that move the nearest anchor onto the face, and a sure score for it, decode to the face
    k = t["anchor"][0]
    out = np.zeros((1, 2 * 136 + 2))
    out[0, k * 136:(k + 1) * 136] = t["target"][0] - codec.encoded_anchors()[k]
    out[0, 272 + k] = 50.0
    assert np.allclose(codec.decode(out), faces[:1], atol=1e-6)
    rebuilt = AnchorCodec(128, 68, **{k: v for k, v in codec.config().items() if k != "name"})
    assert np.allclose(rebuilt.anchors, codec.anchors, atol=1e-3)


def test_anchor_loss_is_wing_on_mean_and_nearest_plus_cross_entropy():
    from facemark.training.losses import WingLoss

    anchors = torch.tensor([[0.0, 0.0], [1.0, 1.0]])                # two anchors of one point (M = 2)
    pred = torch.tensor([[0.1, 0.0, 0.0, 0.2, 0.0, math.log(3.0)]])   # offsets, then scores: p = (1/4, 3/4)
    target = {"target": torch.tensor([[0.5, 0.5]]), "anchor": torch.tensor([1])}
    loss = LOSSES.build("anchors", cls_weight=2.0, w=10.0, epsilon=2.0, scale=1.0)(pred, target, anchors)
    wing = WingLoss(10.0, 2.0)
    mean = 0.25 * torch.tensor([[0.1, 0.0]]) + 0.75 * torch.tensor([[1.0, 1.2]])
    best = torch.tensor([[1.0, 1.2]])
    expected = wing(mean, target["target"]) + wing(best, target["target"]) + 2.0 * -math.log(0.75)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


# --- SPIGA --------------------------------------------------------------------------------------------------

def test_spiga_starts_from_the_mean_face_and_its_rotation_turns_it():
    from facemark.training.models.spiga import rotation

    r = rotation(torch.tensor([[math.pi / 2, 0.0, 0.0]]))[0]       # yaw 90 degrees: x goes into depth
    assert torch.allclose(r @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, -1.0]), atol=1e-6)
    spec = ModelSpec("ibug68", 68, 2, 64, {"name": "cascade", "stride": 4})
    m = MODELS.build("spiga", spec=spec, width=8, steps=2, dim=16, heads=2).eval()
    rng = np.random.default_rng(0)
    mean_face = torch.from_numpy(rng.uniform(0.2, 0.8, (68, 2))).float()
    m.init_output_bias(mean_face.flatten())
    out = m.forward_train(torch.rand(1, 3, 64, 64))
    # untrained steps do not move the points; the start is the mean 3D face fitted to the mean training face
    assert len(out["steps"]) == 3 and torch.equal(out["steps"][0], out["out"])
    assert out["heatmaps"].shape == (1, 68, 16, 16)
    start = out["out"].view(68, 2)
    assert torch.allclose(start.mean(dim=0), mean_face.mean(dim=0), atol=1e-5)


def test_cascade_loss_sums_every_step_and_the_heatmaps():
    from facemark.core.codecs import CascadeCodec
    from facemark.training.losses import WingLoss

    codec = CascadeCodec(32, 2, stride=4)
    t = {k: torch.from_numpy(v) for k, v in codec.encode(np.array([[[10.0, 12.0], [20.0, 6.0]]])).items()}
    steps = [t["target"] + 0.1, t["target"] - 0.05, t["target"]]
    maps = torch.rand(1, 2, 8, 8)
    loss = LOSSES.build("cascade", heatmap_weight=0.5, scale=32.0)(steps, maps, t)
    wing = WingLoss(10.0, 2.0, 32.0)
    expected = sum(wing(s, t["target"]) for s in steps) + 0.5 * AdaptiveWingLoss()(maps, t["heatmap"])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert np.allclose(codec.decode(t["target"].numpy()), [[[10.0, 12.0], [20.0, 6.0]]], atol=1e-5)


# --- CU-Net -------------------------------------------------------------------------------------------------

def test_cunet_couples_each_level_to_the_previous_unets():
    spec = ModelSpec("ibug68", 68, 2, 64, {"name": "heatmap", "stride": 4})
    coupled = MODELS.build("cunet", spec=spec, stacks=3, growth=8, depth=2, channels=8, order=2)
    plain = MODELS.build("cunet", spec=spec, stacks=3, growth=8, depth=2, channels=8, coupled=False)
    # the third U-Net's first block reads the stem (8) + 2 earlier outputs (16), plus 2 earlier level-0 features
    assert coupled.unets[2].down[0].body[0].num_features == 8 + 16 + 16
    assert plain.unets[2].down[0].body[0].num_features == 8 + 8
    out = coupled.forward_train(torch.rand(2, 3, 64, 64))["out"]
    assert len(out) == 3 and all(o.shape == (2, 68, 16, 16) for o in out)


# --- the Active Shape Model (issue 35) ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def asm_faces(data):
    from facemark.core.crop import crop_from_landmarks
    from facemark.io.datasets import read_pts_folder

    faces = read_pts_folder(data / "faces68" / "train" / "afw", 68)[:120]
    crops = [crop_from_landmarks(s.landmarks, 128) for s in faces]
    return [c.warp(s.load_image()) for c, s in zip(crops, faces)], np.array([c.to_crop(s.landmarks)[:, :2]
                                                                            for c, s in zip(crops, faces)])


def test_the_shape_model_reconstructs_training_shapes_within_its_residual(asm_faces):
    from facemark.core.asm import point_distribution, procrustes, similarity

    _, points = asm_faces
    mean, modes, sd = point_distribution(points)
    _, aligned = procrustes(points)
    flat = modes.reshape(len(modes), -1)
    dev = (aligned - mean).reshape(len(points), -1)
    residual = dev - (dev @ flat.T) @ flat
    kept = 1 - (residual ** 2).sum() / (dev ** 2).sum()
    assert kept == pytest.approx(0.98, abs=0.01)          # the modes explain VARIANCE of the aligned shapes
    m, t = similarity(mean, points[0])                     # the closed-form similarity lands on the shape
    assert np.abs(mean @ m.T + t - points[0]).mean() < 0.15 * np.linalg.norm(points[0][36] - points[0][45])


def test_asm_search_converges_from_a_perturbed_mean_shape(asm_faces):
    from facemark.core.asm import build_asm

    crops, points = asm_faces
    model = build_asm(crops[10:], points[10:], 128)
    iod = np.linalg.norm(points[:10, 36] - points[:10, 45], axis=1)
    start = model.init + np.array([4.0, -3.0])            # the mean shape, shifted by 5 px
    before = np.linalg.norm(start - points[:10], axis=-1).mean(axis=1) / iod
    after = np.array([np.linalg.norm(model.fit(c, start) - p, axis=-1).mean() for c, p in
                      zip(crops[:10], points[:10])]) / iod
    assert after.mean() < 0.6 * before.mean()


@pytest.mark.parametrize("name", ["asm68", "aam68"])
def test_the_shipped_classical_models_run_like_any_model(name):
    from facemark.inference.runtime import OnnxLandmarkModel

    m = OnnxLandmarkModel(name)
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (2, 128, 128, 3), dtype=np.uint8)
    pts = m(crops)
    assert pts.shape == (2, 68, 2) and np.isfinite(pts).all() and m.card.meta["format"] == name[:3]


def test_aam_fitting_lowers_its_error_and_moves_towards_the_face(asm_faces):
    from facemark.core.aam import build_aam, orientations

    crops, points = asm_faces
    model = build_aam(crops[10:], points[10:], 128)
    lv = model.levels[0]
    start = model.init + np.array([3.0, -2.0])
    for crop, truth in zip(crops[:5], points[:5]):
        fitted = model.fit(crop, start)
        image = orientations(crop, 1.0)
        r0, r1 = (model._residual(image, s, lv) for s in (start, fitted))
        assert r1 @ r1 < r0 @ r0                          # the line search only takes steps that lower it
    errs = [np.abs(model.fit(c, start) - p).mean() - np.abs(start - p).mean() for c, p in zip(crops[:10], points[:10])]
    assert np.mean(errs) < 0


# --- DCNN (issue 35) ----------------------------------------------------------------------------------------

def test_dcnn_has_three_levels_and_starts_from_the_mean_face():
    from facemark.core.codecs import CascadeCodec

    spec = ModelSpec("five", 5, 2, 80, {"name": "cascade", "heatmaps": False})
    m = MODELS.build("dcnn", spec=spec).eval()
    assert len(m.levels) == 2 and all(len(level) == 10 for level in m.levels)      # two nets per point and level
    mean = torch.tensor([0.35, 0.4, 0.65, 0.4, 0.5, 0.55, 0.38, 0.72, 0.62, 0.72])
    m.init_output_bias(mean)
    with torch.no_grad():
        out = m.forward_train(torch.zeros(2, 3, 80, 80))
    assert len(out["steps"]) == 3 and out["out"].shape == (2, 10)
    assert torch.allclose(out["steps"][0], mean.expand(2, 10), atol=0.02)   # level 1 at the mean (small weights)
    assert "heatmap" not in CascadeCodec(80, 5, heatmaps=False).encode(np.zeros((1, 5, 2)))
    with pytest.raises(ValueError, match="5 points"):
        MODELS.build("dcnn", spec=ModelSpec("ibug68", 68, 2, 80, {}))


def test_dcnn_level_two_improves_level_one(data):
    """The trained cascade (checkpoints/zoo/dcnn5.onnx, rebuilt into its torch model) on the first 200 faces5
    test faces: each refining level lowers the error of the one before."""
    from pathlib import Path

    from facemark.core.codecs import RegressionCodec
    from facemark.core.crop import apply_affine, crop_from_landmarks, to_input
    from facemark.io.datasets import read_mtfl
    from facemark.training.from_onnx import load_onnx_weights

    faces = read_mtfl(data / "faces5" / "new_testing.txt", data / "faces5")[:200]
    crops = [crop_from_landmarks(s.landmarks[:, :2], 80) for s in faces]
    x = torch.from_numpy(to_input(np.stack([c.warp(s.load_image()) for c, s in zip(crops, faces)])))
    truth = np.stack([apply_affine(c.matrix(), s.landmarks[:, :2]) for c, s in zip(crops, faces)])
    model = MODELS.build("dcnn", spec=ModelSpec("five", 5, 2, 80, {"name": "cascade", "heatmaps": False}))
    load_onnx_weights(model, Path(__file__).resolve().parents[1] / "checkpoints" / "zoo" / "dcnn5.onnx", x[:16])
    with torch.no_grad():
        steps = model.eval().forward_train(x)["steps"]
    iod = np.linalg.norm(truth[:, 0] - truth[:, 1], axis=1)
    nme = [float((np.linalg.norm(RegressionCodec(80, 5).decode(s.numpy()) - truth, axis=2).mean(1) / iod).mean())
           for s in steps]
    assert nme[1] < nme[0] and nme[2] <= nme[1] and nme[2] < 0.12, nme


def test_a_plain_hrnet_file_grows_the_decimal_and_visibility_heads(tmp_path):
    """HIH carried into the default's recipe starts from a file without its decimal head (and the visibility
    stage from one without visibility): ``load_onnx_weights`` leaves out whichever optional parts the file lacks,
    and the grown model's heatmaps are the file's."""
    from facemark.training.from_onnx import load_onnx_weights
    from facemark.training.models.hrnet import HRNet

    torch.manual_seed(0)
    plain = HRNet(68, 4, 1, (1,), 1, stem_channels=8).eval()
    path = tmp_path / "plain.onnx"
    torch.onnx.export(plain, torch.zeros(1, 3, 64, 64), str(path), input_names=["image"], opset_version=17,
                      dynamo=False)
    x = torch.rand(4, 3, 64, 64) * 2 - 1
    for heads in ({"offsets": True}, {"offsets": True, "visibility": True}):
        grown = HRNet(68, 4, 1, (1,), 1, stem_channels=8, **heads)
        load_onnx_weights(grown, path, x)
        with torch.no_grad():
            assert torch.allclose(grown.eval()(x)[0], plain(x), atol=1e-4)
