import importlib.util

import numpy as np
import pytest

from facemark.inference.detectors import DETECTORS, box_map, build_detector, to_landmark_boxes
from facemark.core.errors import FacemarkError


def test_backends_registered():
    assert {"haar", "yunet", "dlib", "mediapipe"} <= set(DETECTORS.names())


def test_yunet_needs_its_model_file(monkeypatch):
    monkeypatch.delenv("FACEMARK_YUNET", raising=False)
    with pytest.raises(FacemarkError, match="FACEMARK_YUNET"):
        build_detector("yunet")


@pytest.mark.parametrize("name, package", [("dlib", "dlib"), ("mediapipe", "mediapipe")])
def test_optional_backends_say_how_to_install(name, package):
    if importlib.util.find_spec(package) is not None:
        pytest.skip(f"{package} is installed")
    with pytest.raises(FacemarkError, match=rf"pip install 'facemark\[{name}\]'"):
        build_detector(name)


def test_box_map_arithmetic():
    boxes = np.array([[10.0, 20.0, 110.0, 220.0]])          # w 100, h 200, centre (60, 120)
    out = to_landmark_boxes(boxes, {"dx": 0.1, "dy": -0.05, "scale": 0.5})
    side = 0.5 * np.sqrt(100 * 200)
    assert np.allclose(out, [[70 - side / 2, 110 - side / 2, 70 + side / 2, 110 + side / 2]])
    assert box_map("no-such-detector") == {"dx": 0.0, "dy": 0.0, "scale": 1.0}


def test_haar_map_is_fitted():
    m = box_map("haar")
    assert 0.6 < m["scale"] < 1.2 and abs(m["dx"]) < 0.1 and 0.0 < m["dy"] < 0.3


def test_detector_boxes_invert_the_box_map():
    from facemark.inference.detectors import to_detector_boxes

    mapping = {"dx": 0.05, "dy": 0.12, "scale": 0.9}
    det = np.array([[100.0, 50.0, 200.0, 150.0], [10.0, 20.0, 40.0, 50.0]])     # square detector boxes
    assert np.allclose(to_detector_boxes(to_landmark_boxes(det, mapping), mapping), det)


def test_mediapipe_without_solutions_names_the_version_that_works(monkeypatch):
    import sys
    import types

    monkeypatch.setitem(sys.modules, "mediapipe", types.SimpleNamespace(__version__="1.2.3"))
    with pytest.raises(FacemarkError, match=r"needs mediapipe 0.10.21 \(installed: 1.2.3"):
        build_detector("mediapipe")


def test_a_box_map_is_fitted_back_from_boxes_it_made():
    """``evaluation.detector_fit`` (what tools/fit_box_maps.py writes into box_maps.json): landmark boxes made from
    detector boxes by a known map give that map back, and the mapped boxes then frame them exactly."""
    from facemark.evaluation.detector_fit import fit_box_map, mapped_iou
    from facemark.inference.detectors import to_landmark_boxes

    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 300, (50, 2))
    det = np.concatenate([xy, xy + rng.uniform(40, 120, (50, 2))], axis=1)
    truth = {"dx": -0.03, "dy": 0.15, "scale": 0.9}
    gt = to_landmark_boxes(det, truth)
    assert fit_box_map(det, gt) == pytest.approx(truth, abs=1e-4)
    assert mapped_iou(det, gt, truth) == pytest.approx(1.0)
    assert mapped_iou(det, gt, {"dx": 0.0, "dy": 0.0, "scale": 1.0}) < 0.9


def test_platt_scaling_recovers_a_known_logistic():
    from facemark.evaluation.detector_fit import platt

    rng = np.random.default_rng(1)
    raw = rng.normal(0, 2, 20000)
    hit = (rng.uniform(size=raw.size) < 1 / (1 + np.exp(-(1.5 * raw - 0.5)))).astype(float)
    a, b = platt(raw, hit)
    assert a == pytest.approx(1.5, abs=0.08) and b == pytest.approx(-0.5, abs=0.08)


def test_the_threshold_rule_keeps_the_most_recall_within_the_false_box_budget(data):
    """``evaluation.detector_fit`` (what tools/detector_thresholds.py chose the shipped thresholds with): the rule
    on made-up rows, then a one-threshold sweep of the shipped detector on 8 validation photos, where the bundled
    samples pass at its shipped threshold."""
    from facemark.evaluation.detector_fit import choose_setting, sample_scores, samples_ok, threshold_sweep
    from facemark.io.boxes import read_yolo

    rows = [{"detector": "facemark", "min_score": s, "recall": r, "false_per_photo": f, "samples_ok": ok}
            for s, r, f, ok in ((0.4, 0.9, 0.3, True), (0.5, 0.8, 0.15, True), (0.55, 0.85, 0.1, False),
                                (0.6, 0.7, 0.05, True))]
    assert choose_setting(rows, "facemark", 0.15)["min_score"] == 0.5
    assert choose_setting(rows, "facemark", 0.01) is None and choose_setting(rows, "facemark_any", 1.0) is None
    scores = sample_scores(None)
    assert samples_ok(scores, 0.5) and not samples_ok(scores, 0.0)
    photos = read_yolo(data / "detect" / "roboflow_faces" / "valid")[:8]
    sweep = threshold_sweep(None, photos, scores=(0.5,), ious=(0.4,), on_samples=scores)
    assert [(r["detector"], r["min_score"]) for r in sweep] == [("facemark", 0.5), ("facemark_any", 0.5)]
    assert sweep[0]["samples_ok"] and 0 < sweep[0]["recall"] <= 1
