"""MTCNN: the cascade's window arithmetic, the multi-task loss against the seed's formula (sample-type
indicators, online hard-sample mining), the window sampler's IoU rules, config checks, a tiny run, and the
shipped cascade's recall."""
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from facemark.core.cascade import apply_offsets, crop_window, offsets, pyramid, square
from facemark.core.detection import iou
from facemark.core.errors import DataError, FacemarkError

CONFIG = Path(__file__).parents[1] / "configs" / "mtcnn.yaml"
RECALL_BOUND = 0.5   # the shipped cascade on roboflow_faces/test part 0/4: measured in docs/detection.md's session


def test_windows_are_integer_squares_and_offsets_invert():
    sq = square(np.array([[10.2, 20.0, 30.2, 60.0]]))
    assert np.array_equal(sq, [[0.0, 20.0, 40.0, 60.0]])
    box, pts = np.array([5.0, 25.0, 35.0, 58.0]), np.array([[12.0, 30.0], [28.0, 31.0], [20, 40], [14, 50], [26, 50]])
    b, p = offsets(sq[0], box, pts)
    out = np.concatenate([[0.0], b, p])[None]
    boxes, points = apply_offsets(sq, out)
    assert np.allclose(boxes[0], box) and np.allclose(points[0], pts)


def test_window_crops_pad_outside_the_photo():
    image = np.full((20, 20, 3), 200, np.uint8)
    crop = crop_window(image, np.array([-10, -10, 10, 10]), 12)
    assert crop.shape == (12, 12, 3) and crop[0, 0, 0] == 114 and crop[-1, -1, 0] == 200


def test_pyramid_covers_min_face_to_the_whole_image():
    scales = pyramid(480, 640, 20.0)
    assert scales[0] == pytest.approx(12 / 20) and 480 * scales[-1] >= 12 > 480 * scales[-1] * 0.709


def test_loss_is_the_seeds_weighted_sum_with_indicators_and_hard_mining():
    from facemark.training.mtcnn_train import LANDMARKS, NEG, PART, POS, mtcnn_loss
    g = torch.Generator().manual_seed(0)
    kind = torch.tensor([NEG, NEG, NEG, POS, POS, PART, LANDMARKS, LANDMARKS, NEG, POS])
    out = torch.randn(10, 15, generator=g)
    box = torch.randn(10, 4, generator=g)
    pts = torch.randn(10, 10, generator=g)
    box[kind == NEG] = float("nan")          # types without a label carry NaN targets: they must not leak
    box[kind == LANDMARKS] = float("nan")
    pts[kind != LANDMARKS] = float("nan")
    weights = (1.0, 0.5, 1.0)

    def expected(share):
        det_rows = (kind == NEG) | (kind == POS)
        det = F.binary_cross_entropy_with_logits(out[det_rows, 0], (kind[det_rows] == POS).float(), reduction="none")
        b = ((out[(kind == POS) | (kind == PART), 1:5] - box[(kind == POS) | (kind == PART)]) ** 2).mean(1)
        p = ((out[kind == LANDMARKS, 5:] - pts[kind == LANDMARKS]) ** 2).mean(1)
        top = lambda x: x.sort(descending=True).values[:int(np.ceil(share * len(x)))].mean()  # noqa: E731
        return weights[0] * top(det) + weights[1] * top(b) + weights[2] * top(p)

    for share in (1.0, 0.7):
        total, parts = mtcnn_loss(out, kind, box, pts, weights, share)
        assert torch.isfinite(total) and float(total) == pytest.approx(float(expected(share)), rel=1e-6)
    # 70% of 7 labelled det samples: the 5 largest
    total, parts = mtcnn_loss(out, kind, box, pts, (1.0, 0.0, 0.0), 0.7)
    det_rows = (kind == NEG) | (kind == POS)
    det = F.binary_cross_entropy_with_logits(out[det_rows, 0], (kind[det_rows] == POS).float(), reduction="none")
    assert float(total) == pytest.approx(float(det.sort(descending=True).values[:5].mean()), rel=1e-6)


def test_sampled_windows_keep_the_papers_iou_ranges():
    from facemark.training.detect_data import Patch, Photo
    from facemark.training.mtcnn_train import LANDMARKS, NEG, PART, POS, MtcnnConfig, WindowSampler
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (200, 300, 3), dtype=np.uint8)
    boxes = np.array([[40.0, 50, 100, 120], [180, 30, 240, 100]])
    photo = Photo(image, boxes, np.full((2, 5, 2), np.nan), np.zeros(2, bool))
    pts = np.array([[50.0, 60], [70, 60], [60, 70], [52, 80], [68, 80]])
    patch = Patch(image[:128, :128].copy(), np.array([40.0, 45, 80, 95]), pts)
    cfg = MtcnnConfig(name="t", data={})
    sampler = WindowSampler([photo], [patch], 24, cfg)
    for _ in range(40):
        i, w = sampler._negative(rng)
        if w is not None:
            assert iou(w, boxes).max() < 0.3
        for kind, lo, hi in ((POS, 0.65, 1.01), (PART, 0.4, 0.65)):
            i, w = sampler._jittered(kind, rng)
            if w is not None:
                assert lo <= iou(w, boxes).max() < hi and w[2] - w[0] == w[3] - w[1]
    cfg.landmark_positives = 1.0            # positives cut around the landmark face instead
    for _ in range(20):
        i, w = sampler._jittered(POS, rng)
        assert i == 1 and (w is None or iou(w, patch.box)[0, 0] >= 0.65)
    crop, box, p = sampler(POS, rng)
    assert crop.shape == (24, 24, 3) and np.isfinite(box).all() and np.isnan(p).all()
    crop, box, p = sampler(NEG, rng)
    assert np.isnan(box).all() and np.isnan(p).all()
    crop, box, p = sampler(LANDMARKS, rng)
    assert np.isnan(box).all() and np.isfinite(p).all() and ((p > -0.2) & (p < 1.2)).all()


def test_config_errors_name_the_file_and_key(tmp_path):
    from facemark.training.mtcnn_train import load_mtcnn_config
    values = yaml.safe_load(CONFIG.read_text())
    for change, key in (({"stages": {"xnet": {"epochs": 1}}}, "stages.xnet"),
                        ({"stages": {"pnet": {"lr": 1}}}, "stages.pnet.lr"),
                        ({"mix": [1, 2]}, "mix"), ({"bogus": 1}, "bogus")):
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump({**values, **change}))
        with pytest.raises(DataError, match=rf"bad.yaml.*{key}"):
            load_mtcnn_config(path)


def test_a_tiny_mtcnn_run_trains_resumes_and_exports(tmp_path, data):
    from facemark.inference.detectors import MtcnnDetector
    from facemark.io.images import read_image
    from facemark.training.export import export
    from facemark.training.mtcnn_train import load_mtcnn_config, train_mtcnn
    values = yaml.safe_load(CONFIG.read_text())
    values.update(name="tiny", threads=1, batch_size=32, data_root=str(data),
                  stages={"pnet": {"epochs": 1, "samples": 64}, "rnet": {"epochs": 1, "samples": 64},
                          "onet": {"epochs": 2, "samples": 64}},
                  data={"train": [{"format": "yolo", "path": "detect/roboflow_faces/train", "part": "0/150"}],
                        "val": [{"format": "yolo", "path": "detect/roboflow_faces/valid", "part": "0/100"}],
                        "landmark_faces": ["faces68/train/afw"], "landmark_limit": 8})
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(values))
    cfg = load_mtcnn_config(path)
    cfg.stages["onet"]["epochs"] = 1
    run = train_mtcnn(cfg, tmp_path / "run")
    with pytest.raises(FacemarkError, match="already holds a run"):
        train_mtcnn(cfg, tmp_path / "run")
    cfg.stages["onet"]["epochs"] = 2
    train_mtcnn(cfg, tmp_path / "run", resume=True)
    log = [yaml.safe_load(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in log] == ["pnet", "rnet", "onet", "onet"] and "val" in log[-1]
    card = export(run / "last.pt", "tiny", tmp_path / "export")
    det = MtcnnDetector(card, thresholds=(0.01, 0.01, 0.01))
    boxes, scores, five = det.detect_points(read_image(data / "samples" / "lenna.png"))
    assert boxes.shape[1:] == (4,) and five.shape[1:] == (5, 2) and ((scores >= 0.01) & (scores <= 1)).all()


def test_shipped_mtcnn_finds_faces_and_close_ups(data):
    from facemark.evaluation.detection import evaluate_detector
    from facemark.inference.detectors import build_detector
    from facemark.io.boxes import read_yolo, select_part
    from facemark.io.images import read_image
    det = build_detector("mtcnn")
    r = evaluate_detector(det, select_part(read_yolo(data / "detect/roboflow_faces/test"), "0/4"))   # 44 photos
    assert r["recall"] > RECALL_BOUND and r["false_per_photo"] < 0.5
    boxes, scores, five = det.detect_points(read_image(data / "samples" / "lenna.png"))   # a close-up face
    assert len(boxes) == 1 and scores[0] > 0.9 and 200 < boxes[0, 0] < 230 and 350 < boxes[0, 2] < 380
    assert five[0, 0, 0] < five[0, 1, 0]                    # the left eye as the viewer sees it comes first


def test_replaced_mtcnn_weights_are_refused(tmp_path):
    import shutil

    from facemark.inference.detectors import DETECTOR_WEIGHTS, MtcnnDetector
    for f in ("mtcnn.json", "mtcnn_pnet.onnx", "mtcnn_rnet.onnx", "mtcnn_onet.onnx"):
        shutil.copy(DETECTOR_WEIGHTS / f, tmp_path / f)
    with (tmp_path / "mtcnn_rnet.onnx").open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(DataError, match="mtcnn_rnet.onnx.*sha256"):
        MtcnnDetector(tmp_path / "mtcnn.json")
    with pytest.raises(FacemarkError, match="MTCNN card not found"):
        MtcnnDetector(tmp_path / "missing.json")
