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
