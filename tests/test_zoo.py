"""Heatmap and PIPNet codecs, their losses, CoordConv and the model zoo's shapes; a tiny training run each."""
import math

import numpy as np
import pytest
import torch

from facemark.core.codecs import HeatmapCodec, PIPCodec
from facemark.training.losses import LOSSES, AdaptiveWingLoss
from facemark.training.config import ModelSpec
from facemark.training.models import MODELS
from facemark.training.models.backbones import BACKBONES
from facemark.training.models.hrnet import Exchange
from facemark.training.models.layers import CoordConv2d


# --- heatmap codec ----------------------------------------------------------------------------------------

def test_heatmap_peak_is_at_the_point():
    codec = HeatmapCodec(64, 2, stride=4, sigma=1.0)
    pts = np.array([[[1.5, 5.5], [33.5, 61.5]]])           # cells (0, 1) and (8, 15): (p + 0.5) / 4 - 0.5
    hm = codec.encode(pts)
    assert hm.shape == (1, 2, 16, 16) and hm.max() == pytest.approx(1.0)
    assert np.unravel_index(hm[0, 0].argmax(), (16, 16)) == (1, 0)
    assert np.unravel_index(hm[0, 1].argmax(), (16, 16)) == (15, 8)


def test_decoders_rank_by_precision():
    rng = np.random.default_rng(0)
    pts = rng.uniform(8, 120, (4, 68, 2))
    err = {}
    for dec in ("argmax", "quarter", "soft_argmax"):
        codec = HeatmapCodec(128, 68, stride=4, sigma=1.5, decoder=dec)
        err[dec] = np.abs(codec.decode(codec.encode(pts)) - pts).mean()
    assert err["soft_argmax"] < 0.15 < err["quarter"] < err["argmax"] < 1.5


def test_local_soft_argmax_formula():
    codec = HeatmapCodec(40, 1, stride=4, decoder="soft_argmax", window=5, tau=10.0)
    hm = np.zeros((1, 1, 10, 10))
    hm[0, 0, 4, 6] = 1.0
    hm[0, 0, 4, 7] = 0.5                                     # a weaker response right of the peak
    # offset = sum(softmax(10 * patch) * dx) over the 5x5 window: the peak (dx 0) weighs e^10, its right
    # neighbour (dx +1) e^5, and the 23 zero cells e^0 with dx summing to 5*(-2) + 5*(-1) + 4*1 + 5*2 = -1
    z = math.exp(10) + math.exp(5) + 23
    dx = (math.exp(5) - 1) / z
    got = codec.decode(hm)[0, 0]
    assert got[0] == pytest.approx((6 + dx + 0.5) * 4 - 0.5, abs=1e-9)
    assert got[1] == pytest.approx((4 + 0.5) * 4 - 0.5, abs=1e-9)


def test_unknown_decoder():
    with pytest.raises(ValueError, match="unknown heatmap decoder"):
        HeatmapCodec(64, 68, decoder="mean")


# --- PIPNet codec -----------------------------------------------------------------------------------------

def test_pip_round_trip_and_neighbours():
    rng = np.random.default_rng(1)
    train = rng.uniform(10, 240, (20, 68, 2))
    codec = PIPCodec(256, 68, stride=32, num_nb=10)
    codec.fit(train)
    mean = train.mean(0)
    d = np.linalg.norm(mean[0] - mean, axis=1)
    d[0] = np.inf
    assert set(codec.neighbours[0]) == set(np.argsort(d)[:10])
    t = codec.encode(train[:3])
    assert t["score"].shape == (3, 68, 8, 8) and t["nb_x"].shape == (3, 680, 8, 8)
    assert t["score"].sum() == 3 * 68
    out = codec.decode((t["score"], t["off_x"], t["off_y"], t["nb_x"], t["nb_y"]))
    assert np.allclose(out, train[:3], atol=1e-4)
    rebuilt = PIPCodec(256, 68, **{k: v for k, v in codec.config().items() if k != "name"})
    assert np.array_equal(rebuilt.neighbours, codec.neighbours)


def test_pip_decode_averages_own_and_neighbour_predictions():
    codec = PIPCodec(64, 2, stride=32, num_nb=1, neighbours=[[1], [0]])
    score = np.zeros((1, 2, 2, 2))
    score[0, 0, 0, 0] = score[0, 1, 1, 1] = 1.0
    off_x, off_y = np.full((1, 2, 2, 2), 0.5), np.full((1, 2, 2, 2), 0.5)
    nb_x, nb_y = np.zeros((1, 2, 2, 2)), np.zeros((1, 2, 2, 2))
    nb_x[0, 0, 0, 0] = nb_y[0, 0, 0, 0] = 1.5   # point 0 (cell 0,0) says point 1 is at cell coords (1.5, 1.5)
    nb_x[0, 1, 1, 1] = nb_y[0, 1, 1, 1] = -0.5  # point 1 (cell 1,1) says point 0 is at (0.5, 0.5)
    pts = codec.decode((score, off_x, off_y, nb_x, nb_y))
    # own and neighbour agree: centres of cells (0, 0) and (1, 1) -> pixels 15.5 and 47.5
    assert np.allclose(pts[0], [[15.5, 15.5], [47.5, 47.5]])
    nb_x[0, 0, 0, 0] = 2.5                        # the neighbour now says x = 2.5 cells: average with 1.5
    assert codec.decode((score, off_x, off_y, nb_x, nb_y))[0, 1, 0] == pytest.approx(((1.5 + 2.5) / 2) * 32 - 0.5)


# --- losses -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("y, yhat", [(0.0, 0.2), (0.0, 0.9), (1.0, 0.7), (1.0, 0.1), (0.5, 0.45), (0.3, -0.4)])
def test_awing_matches_formula(y, yhat):
    w, th, a, e = 14.0, 0.5, 2.1, 1.0
    x, p = abs(y - yhat), a - y
    big_a = w * (1 / (1 + (th / e) ** p)) * p * (th / e) ** (p - 1) / e
    c = th * big_a - w * math.log(1 + (th / e) ** p)
    expected = w * math.log(1 + (x / e) ** p) if x < th else big_a * x - c
    got = AdaptiveWingLoss().raw(torch.tensor([yhat], dtype=torch.float64), torch.tensor([y], dtype=torch.float64))
    assert got.item() == pytest.approx(expected)


@pytest.mark.parametrize("y", [0.0, 0.4, 1.0])
def test_awing_value_and_slope_continuous_at_theta(y):
    loss = AdaptiveWingLoss()
    t = torch.tensor([y], dtype=torch.float64)

    def f(x):
        return loss.raw(torch.tensor([y - x], dtype=torch.float64), t).item()

    h = 1e-6
    assert f(0.5 - h) == pytest.approx(f(0.5 + h), abs=1e-4)
    left = (f(0.5 - h) - f(0.5 - 2 * h)) / h
    right = (f(0.5 + 2 * h) - f(0.5 + h)) / h
    assert left == pytest.approx(right, rel=1e-3)


def test_awing_weight_map_and_heatmap_mse():
    target = torch.zeros(1, 1, 5, 5)
    target[0, 0, 2, 2] = 1.0
    pred = torch.full((1, 1, 5, 5), 0.1)
    raw = AdaptiveWingLoss().raw(pred, target)
    weight = torch.ones(5, 5)
    weight[1:4, 1:4] = 11.0                     # the 3x3 dilation of the peak is >= 0.2
    assert LOSSES.build("awing")(pred, target).item() == pytest.approx((weight * raw[0, 0]).mean().item())
    mse = LOSSES.build("heatmap_mse")
    assert mse(pred, target).item() == pytest.approx((24 * 0.01 + 0.81) / 25)
    assert mse([pred, pred], target).item() == pytest.approx(2 * (24 * 0.01 + 0.81) / 25)   # stacks add up


def test_pip_loss_zero_when_perfect_and_reads_gt_cells():
    rng = np.random.default_rng(2)
    codec = PIPCodec(128, 68, stride=32, num_nb=10)
    pts = rng.uniform(5, 120, (2, 68, 2))
    codec.fit(pts)
    t = {k: torch.from_numpy(v) for k, v in codec.encode(pts).items()}
    pred = tuple(t[k].clone() for k in ("score", "off_x", "off_y", "nb_x", "nb_y"))
    loss = LOSSES.build("pip")
    assert torch.allclose(loss(pred, t), torch.zeros(2))
    shifted = list(pred)
    shifted[1] = shifted[1] + 0.2               # every x offset 0.2 off: L1 mean 0.2 at the GT cells
    assert loss(tuple(shifted), t)[0].item() == pytest.approx(0.2, abs=1e-5)


def test_pip_loss_curriculum_tasks():
    rng = np.random.default_rng(4)
    codec = PIPCodec(128, 68, stride=16, num_nb=10)          # 8x8 grid; coarse maps 4x4 and 2x2
    pts = rng.uniform(5, 120, (3, 68, 2))
    codec.fit(pts)
    t = {k: torch.from_numpy(v) for k, v in codec.encode(pts).items()}
    pred = tuple(t[k].clone() + 0.1 for k in ("score", "off_x", "off_y", "nb_x", "nb_y"))
    coarse = (torch.zeros(3, 68, 4, 4), torch.zeros(3, 68, 2, 2))
    loss = LOSSES.build("pip", cls_weight=10.0)
    full = loss(pred, t)
    # a zero coarse map misses exactly one hot cell per point: MSE = 1 / cells
    out = loss(pred, t, coarse, torch.tensor([1, 2, 3]))
    assert out[0].item() == pytest.approx(10 * (1 / 4))
    assert out[1].item() == pytest.approx(10 * (1 / 4 + 1 / 16))
    assert out[2].item() == pytest.approx(full[2].item() + 10 * (1 / 4 + 1 / 16))
    assert torch.equal(loss(pred, t), full)                 # without a curriculum: the plain PIPNet loss


def test_pipnet_coarse_maps_share_the_score_head():
    m = MODELS.build("pipnet", spec=_spec(128, {"name": "pip", "stride": 16, "num_nb": 10}),
                     backbone={"name": "mobilenetv2", "width": 0.25}).eval()
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        out = m.forward_train(x)
        f = m.backbone(x)
        assert torch.allclose(out["coarse"][1], m.score(torch.nn.functional.max_pool2d(f, 4)), atol=1e-6)
    assert [c.shape[-1] for c in out["coarse"]] == [4, 2]


# --- layers and models ------------------------------------------------------------------------------------

def test_coordconv_appends_coordinates():
    conv = CoordConv2d(1, 1, 1)
    with torch.no_grad():
        conv.conv.weight.zero_()
        conv.conv.weight[0, 1] = 1.0             # pass the x channel through
    out = conv(torch.zeros(2, 1, 3, 5))
    assert torch.allclose(out[0, 0, 1], torch.linspace(-1, 1, 5))


def test_exchange_unit_shapes_and_paths():
    ex = Exchange([8, 16, 32])
    xs = [torch.randn(1, 8, 16, 16), torch.randn(1, 16, 8, 8), torch.randn(1, 32, 4, 4)]
    out = ex(xs)
    assert [o.shape[1:] for o in out] == [x.shape[1:] for x in xs]
    assert len(ex.paths[2][0]) == 2              # 1/4 -> 1/16: two strided 3x3 convs


def _spec(size: int, codec: dict) -> ModelSpec:
    return ModelSpec("ibug68", 68, 2, size, codec)


HEATMAP = {"name": "heatmap", "stride": 4}


@pytest.mark.parametrize("name, kw, codec, size, shapes", [
    ("hourglass", {"stacks": 2, "channels": 32, "depth": 2}, HEATMAP, 64, [(68, 16, 16)]),
    ("hrnet", {"width": 8, "blocks": 1, "modules": [1, 1, 1], "stem_blocks": 1}, HEATMAP, 64, [(68, 16, 16)]),
    ("pipnet", {"backbone": {"name": "resnet18", "coordconv": True}}, {"name": "pip", "stride": 32, "num_nb": 10},
     64, [(68, 2, 2)] * 3 + [(680, 2, 2)] * 2),
    ("pipnet", {"backbone": {"name": "mobilenetv2", "width": 0.25}}, {"name": "pip", "stride": 16, "num_nb": 10},
     64, [(68, 4, 4)] * 3 + [(680, 4, 4)] * 2),
])
def test_model_output_shapes(name, kw, codec, size, shapes):
    m = MODELS.build(name, spec=_spec(size, codec), **kw).eval()
    with torch.no_grad():
        out = m(torch.zeros(1, 3, size, size))
    outs = out if isinstance(out, tuple) else (out,)
    assert [tuple(o.shape[1:]) for o in outs] == shapes


@pytest.mark.parametrize("name, stride", [("resnet18", 32), ("resnet18", 16), ("mobilenetv2", 16)])
def test_backbones_state_their_stride_and_channels(name, stride):
    net = BACKBONES.build(name, output_stride=stride).eval()
    with torch.no_grad():
        f = net(torch.zeros(1, 3, 64, 64))
    assert net.stride == stride and f.shape[1:] == (net.out_channels, 64 // stride, 64 // stride)


def test_hourglass_supervises_every_stack():
    m = MODELS.build("hourglass", spec=_spec(64, HEATMAP), stacks=3, channels=32, depth=2)
    out = m.forward_train(torch.zeros(2, 3, 64, 64))["out"]
    assert len(out) == 3 and all(o.shape == (2, 68, 16, 16) for o in out)
