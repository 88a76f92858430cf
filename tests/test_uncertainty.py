"""Per-point uncertainty read from the heatmaps: the calibration's formula and fit, the rank correlation, and
the shipped default's uncertainty on real faces (larger where the face is covered or blurred); per-point
visibility: its loss, the AUC it is judged by, and the shipped default's visibility under a pasted occluder."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

import facemark
from facemark.core.uncertainty import Calibration, face_quality, fit_calibration, spearman
from facemark.inference.runtime import DEFAULT_MODEL
from facemark.io.datasets import read_pts_folder



def test_expected_error_is_its_formula_with_the_features_clipped():
    cal = Calibration((0.5, 2.0, -1.0), (8.0, 0.3), (10.0, 1.0))
    f = np.array([[[9.0, 0.5], [12.0, 0.1], [7.0, 2.0]]])
    want = [np.exp(0.5 + 2 * np.log(9.5) - np.log(0.5)), np.exp(0.5 + 2 * np.log(10.5) - np.log(0.3)),
            np.exp(0.5 + 2 * np.log(8.5) - np.log(1.0))]
    np.testing.assert_allclose(cal.expected_error(f)[0], want, rtol=1e-12)
    assert Calibration.from_card(cal.to_card()) == cal and Calibration.from_card(None) is None
    np.testing.assert_allclose(face_quality(np.array([[2.0, 4.0]]), 100.0), [0.7])   # 1 - 0.03 / 0.1


def test_fit_recovers_the_relation_and_matches_the_mean_error():
    rng = np.random.default_rng(0)
    f = np.column_stack([rng.uniform(8, 10, 20000), rng.uniform(0.3, 1.0, 20000)])
    err = np.exp(-10 + 5 * np.log(f[:, 0] + 0.5) - 0.5 * np.log(f[:, 1])) * rng.lognormal(0, 0.3, len(f))
    cal = fit_calibration(f, err)
    assert cal.coef[1] == pytest.approx(5, abs=0.1) and cal.coef[2] == pytest.approx(-0.5, abs=0.05)
    assert cal.expected_error(f).mean() == pytest.approx(err.mean(), rel=1e-9)


def test_spearman_matches_scipy_with_ties():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    a = rng.integers(0, 20, 300).astype(float)
    b = a + rng.normal(0, 5, 300)
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)


@pytest.fixture(scope="module")
def lm():
    return facemark.Landmarker(threads=2)


def test_uncertainty_grows_where_the_face_is_covered_or_blurred(data, lm):
    faces = read_pts_folder(data / "faces68" / "test" / "ytf", 68)[:12]
    mouth, eyes, whole = [], [], []
    for s in faces:
        image = s.load_image()
        box = np.array([s.landmarks[:, 0].min(), s.landmarks[:, 1].min(), s.landmarks[:, 0].max(),
                        s.landmarks[:, 1].max()])
        clean = lm.from_boxes(image, box[None])[0]
        covered = image.copy()
        m = s.landmarks[48:68]
        x1, y1 = (m.min(axis=0) - 6).astype(int)
        x2, y2 = (m.max(axis=0) + 6).astype(int)
        covered[max(y1, 0):y2, max(x1, 0):x2] = 128                      # a grey rectangle over the mouth
        occ = lm.from_boxes(covered, box[None])[0]
        blurred = lm.from_boxes(cv2.GaussianBlur(image, (0, 0), 5), box[None])[0]
        mouth.append(occ.uncertainty[48:68].mean() / clean.uncertainty[48:68].mean())
        eyes.append(occ.uncertainty[36:48].mean() / clean.uncertainty[36:48].mean())
        whole.append(blurred.uncertainty.mean() / clean.uncertainty.mean())
        assert 0 <= clean.quality <= 1 and clean.to_dict()["quality"] == round(clean.quality, 4)
    # hrnet68_pose (session 22): mouth 1.32x, eyes 1.01x, blur 6.1x (hrnet68_w16's mouth ratio was above 1.5)
    assert np.median(mouth) > 1.2 and np.median(mouth) > 1.2 * np.median(eyes)
    assert np.median(whole) > 1.3


def test_a_model_without_calibration_gives_none(data):
    from facemark.io.images import read_image

    face = facemark.Landmarker("pfld68", threads=1).detect(read_image(data / "samples" / "lenna.png"))[0]
    assert face.uncertainty is None and face.quality is None and "uncertainty" not in face.to_dict()
    assert face.visibility is None and "visibility" not in face.to_dict()   # no visibility head either


def test_visibility_loss_is_binary_cross_entropy():
    torch = pytest.importorskip("torch")
    from facemark.training.losses import visibility_loss

    logits = torch.tensor([[2.0, -1.0, 0.0], [0.5, 0.5, -3.0]])
    seen = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    p = 1 / (1 + np.exp(-logits.numpy()))
    want = -(seen.numpy() * np.log(p) + (1 - seen.numpy()) * np.log(1 - p)).mean(axis=1)
    np.testing.assert_allclose(visibility_loss(logits, seen).numpy(), want, rtol=1e-6)


def test_separation_auc_counts_pairs():
    from facemark.evaluation.visibility import separation_auc

    assert separation_auc(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 1.0
    assert separation_auc(np.array([0.1]), np.array([0.9])) == 0.0
    # 3 x 2 pairs: (0.5 > 0.2), (0.5 = 0.5: half), (0.9 > both), (0.1 < both) -> 3.5 / 6
    assert separation_auc(np.array([0.5, 0.9, 0.1]), np.array([0.2, 0.5])) == pytest.approx(3.5 / 6)


def test_visibility_drops_under_a_pasted_occluder(data):
    """The default model's visibility head (docs/results.md) on 25 validation
    faces (faces68/test/ytf): high on the clean faces, and with a grey rectangle over the mouth the mouth points
    fall below the brow, nose and eye points."""
    from facemark.evaluation.visibility import visibility_report
    from facemark.inference.runtime import OnnxLandmarkModel
    from facemark.io.images import read_image

    model = OnnxLandmarkModel(DEFAULT_MODEL, threads=2, precision="fp32")
    r = visibility_report(model, read_pts_folder(data / "faces68" / "test" / "ytf", 68)[::26])
    assert r["faces"] == 25 and r["clean_mean"] >= 0.8
    assert r["mouth_covered"]["auc"] >= 0.9 and r["mouth_covered"]["mouth_mean"] < r["mouth_covered"]["upper_mean"] - 0.2
    face = facemark.Landmarker(threads=2).detect(read_image(data / "samples" / "lenna.png"))[0]
    assert face.visibility.shape == (68,) and len(face.to_dict()["visibility"]) == 68


def test_evaluate_reports_the_calibration(data):
    r = subprocess.run([sys.executable, "-m", "facemark", "evaluate", str(data / "faces68" / "test" / "ytf"), "--json"],
                       capture_output=True, text=True)
    u = json.loads(r.stdout)["uncertainty"]
    assert 0.8 <= u["calibration"] <= 1.25 and u["spearman"] > 0.3
    assert u["reject"]["80"] < u["reject"]["100"]                # dropping the least certain faces lowers the NME
