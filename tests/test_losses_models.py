import math

import pytest
import torch

from facemark.training.losses import LOSSES, build_loss, pfld_weights
from facemark.training.config import ModelSpec
from facemark.training.models import MODELS


def _pair(values):
    """A (1, N, 2) prediction whose x-differences are ``values`` and y-differences 0."""
    v = torch.tensor(values, dtype=torch.float64)
    pred = torch.stack([v, torch.zeros_like(v)], dim=-1)[None]
    return pred, torch.zeros_like(pred)


@pytest.mark.parametrize("x", [0.0, 0.3, -1.0, 4.0, -9.99, 10.0, 25.0])
def test_wing_matches_formula(x):
    w, eps = 10.0, 2.0
    c = w - w * math.log(1 + w / eps)
    expected = w * math.log(1 + abs(x) / eps) if abs(x) < w else abs(x) - c
    got = build_loss({"name": "wing", "w": w, "epsilon": eps})(*_pair([x]))
    assert got.item() == pytest.approx(expected)


def test_wing_is_continuous_where_pieces_meet():
    loss = build_loss({"name": "wing", "w": 10.0, "epsilon": 2.0})
    lo, hi = loss(*_pair([10.0 - 1e-7])), loss(*_pair([10.0 + 1e-7]))
    assert lo.item() == pytest.approx(hi.item(), abs=1e-5)


def test_point_losses_match_formulas():
    pred, target = _pair([0.5, -2.0])
    assert LOSSES.build("l1")(pred, target).item() == pytest.approx(2.5)
    assert LOSSES.build("l2")(pred, target).item() == pytest.approx(0.25 + 4.0)
    assert LOSSES.build("smooth_l1", beta=1.0)(pred, target).item() == pytest.approx(0.125 + 1.5)
    assert LOSSES.build("l1", scale=10.0)(pred, target).item() == pytest.approx(25.0)


def test_pfld_weight_formula():
    pred = torch.tensor([[0.1, 0.0, -0.2], [0.0, 0.0, 0.0]])
    gt = torch.zeros(2, 3)
    cw = torch.tensor([2.0, 1.0])
    expected0 = 2.0 * ((1 - math.cos(0.1)) + 0 + (1 - math.cos(0.2)))
    w = pfld_weights(pred, gt, cw)
    assert w[0].item() == pytest.approx(expected0, rel=1e-5) and w[1].item() == 0.0
    assert pfld_weights(pred, gt, cw, floor=1.0)[1].item() == pytest.approx(1.0)


def test_unknown_names_list_the_known_ones():
    with pytest.raises(KeyError, match="known: .*wing"):
        build_loss({"name": "nope"})
    with pytest.raises(KeyError, match="known: .*pfld"):
        MODELS.build("nope")


@pytest.mark.parametrize("width, params", [(1.0, 1_254_184), (0.25, 95_000)])
def test_pfld_layout(width, params):
    torch.manual_seed(0)
    m = MODELS.build("pfld", spec=ModelSpec("ibug68", 68, 2, 112, {"name": "regression"}), width=width)
    n = sum(p.numel() for name, p in m.named_parameters() if not name.startswith("aux."))
    assert n == params
    x = torch.zeros(2, 3, 112, 112)
    out = m.forward_train(x)
    assert out["out"].shape == (2, 136) and out["angles"].shape == (2, 3)
    # the 14x14 16-channel stage, the 7x7 32-channel conv and the 1x1 128 vector feed the head
    assert m.fc.in_features == {1.0: 16 + 32 + 128, 0.25: 8 + 8 + 32}[width]
    mid = m.stage3(m.stem(x))
    assert mid.shape[1:] == (int(64 * width), 28, 28)


def test_pfld_regresses_3d_points():
    m = MODELS.build("pfld", spec=ModelSpec("ibug68", 68, 3, 112, {"name": "regression"}), width=0.25)
    assert m.forward_train(torch.zeros(2, 3, 112, 112))["out"].shape == (2, 3 * 68)
