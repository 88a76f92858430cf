import json
import subprocess
import sys

import numpy as np
import pytest

from facemark.evaluation.metrics import auc, ced, failure_rate, nme, normaliser, summary
from facemark.evaluation.plots import plot_ced
from facemark.io.datasets import read_pts, write_pts


def _square68(side=10.0):
    gt = np.zeros((68, 2))
    gt[36] = [0.0, 0.0]
    gt[45] = [side, 0.0]
    gt[42:48] = [side, 2.0]        # right eye points (mean = pupil)
    gt[45] = [side, 0.0]
    gt[36:42] = [0.0, 2.0]
    gt[36] = [0.0, 0.0]
    gt[8] = [5.0, 20.0]             # chin: makes the landmark box 10 x 20
    return gt


def test_nme_iod_hand_computed():
    gt = _square68()
    pred = gt.copy()
    pred[:, 0] += 1.0               # every point 1 px off; iod = 10
    assert nme(pred, gt, "iod")[0] == pytest.approx(0.1)


def test_norms_hand_computed():
    gt = _square68()[None]
    # pupils: means of points 36-41 and 42-47
    left, right = gt[0, 36:42].mean(0), gt[0, 42:48].mean(0)
    assert normaliser(gt, "ipd")[0] == pytest.approx(np.linalg.norm(left - right))
    assert normaliser(gt, "box")[0] == pytest.approx(np.sqrt(10 * 20))
    assert normaliser(gt, "diag")[0] == pytest.approx(np.hypot(10, 20))
    box = np.array([[0, 0, 4, 9]])
    assert normaliser(gt, "box", box)[0] == pytest.approx(6.0)


def test_norm_must_be_named():
    gt = _square68()
    with pytest.raises(TypeError):
        nme(gt, gt)  # no default normaliser: always an explicit choice
    with pytest.raises(ValueError, match="unknown norm"):
        nme(gt, gt, "eyes")


def test_fr_ced_auc_hand_computed():
    e = np.array([0.02, 0.04, 0.06, 0.2])
    assert failure_rate(e, 0.1) == 0.25
    # AUC = mean over faces of max(0, 0.1 - e) / 0.1 = (0.8 + 0.6 + 0.4 + 0) / 4
    assert auc(e, 0.1) == pytest.approx(0.45)
    x, y = ced(e, 0.1, steps=11)
    assert y[0] == 0 and y[2] == 0.25 and y[4] == 0.5 and y[-1] == 0.75
    # the exact AUC agrees with integrating the sampled CED
    x, y = ced(e, 0.1, steps=100001)
    assert np.trapezoid(y, x) / 0.1 == pytest.approx(0.45, abs=1e-4)
    s = summary(e, "iod")
    assert s == {"n": 4, "nme": pytest.approx(0.08), "fr": 0.25, "auc": pytest.approx(0.45), "norm": "iod",
                 "threshold": 0.1}


def test_plot_ced_writes_png(tmp_path):
    plot_ced({"a": np.array([0.01, 0.05]), "b": np.array([0.03, 0.2])}, tmp_path / "ced.png")
    assert (tmp_path / "ced.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "facemark", *map(str, args)], capture_output=True, text=True)


def test_evaluate_cli_json_and_plot(tmp_path, data):
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    names = sorted((data / "faces68/test/ytf").glob("*.pts"))[:5]
    gts = []
    for k, p in enumerate(names):
        gt = read_pts(p)
        gts.append(gt)
        write_pts(gt_dir / p.name, gt)
        iod = np.linalg.norm(gt[36] - gt[45])
        write_pts(pred_dir / p.name, gt + [0.02 * (k + 1) * iod, 0.0])   # NME = 2%, 4%, ..., 10%
    r = _cli("evaluate", gt_dir, "--pred", pred_dir, "--json", "--plot", tmp_path / "ced.png")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["n"] == 5 and report["norm"] == "iod" and report["threshold"] == 0.1
    assert report["nme"] == pytest.approx(0.06, abs=1e-4)
    assert report["fr"] == 0.0           # 10% is not above the threshold
    assert report["auc"] == pytest.approx((0.8 + 0.6 + 0.4 + 0.2 + 0) / 5, abs=1e-3)
    assert (tmp_path / "ced.png").is_file()
    table = _cli("evaluate", gt_dir, "--pred", pred_dir, "--norm", "box")
    assert table.returncode == 0 and "normalised by box" in table.stdout and "NME" in table.stdout


def test_evaluate_cli_missing_prediction(tmp_path, data):
    src = sorted((data / "faces68/test/ytf").glob("*.pts"))[:2]
    for p in src:
        write_pts(tmp_path / "gt" / p.name, read_pts(p))
    write_pts(tmp_path / "pred" / src[0].name, read_pts(src[0]))
    r = _cli("evaluate", tmp_path / "gt", "--pred", tmp_path / "pred")
    assert r.returncode == 2
    assert "no prediction for ground truth" in r.stderr and src[1].name in r.stderr
    assert "Traceback" not in r.stderr
