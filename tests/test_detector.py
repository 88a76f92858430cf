"""The face detector: its codec both ways, its loss against the formula, its config checks, its augmentation."""
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from facemark.core.detection import cells, decode, encode, overlaps
from facemark.core.errors import DataError, FacemarkError

CONFIG = Path(__file__).parents[1] / "configs" / "experiments" / "detector.yaml"   # the detector's first recipe
RECALL_BOUND = 0.7   # on this subset: facemark 0.82, facemark_any 0.76 (upright and turned)


def _output_from(t, grid):
    """A head output that says exactly the targets (a perfect network)."""
    out = np.zeros((len(grid.strides), 15), np.float32)
    out[:, 0] = np.where(t.score == 1, 8.0, -8.0)
    out[:, 1:5] = t.box
    out[:, 5:] = t.points
    return out


@pytest.mark.parametrize("strides", [(8, 16, 32), (8, 16, 32, 4)])
def test_codec_round_trip_at_every_level(strides):
    grid = cells(320, 320, strides)
    boxes = np.array([[10, 12, 22, 26], [100, 60, 140, 100], [150, 170, 310, 318]], float)
    five = np.stack([np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]]) * (b[2:] - b[:2]) + b[:2]
                     for b in boxes])
    t = encode(grid, boxes, five, np.zeros(3, bool))
    assert set(strides) == set(grid.strides[t.score == 1].tolist())
    # the 13 px face: on the finest level only (with the fine level, on stride 4 and not 8, below its 16 px)
    small = (grid.centres[:, 0] > 10) & (grid.centres[:, 0] < 22) & (grid.centres[:, 1] > 12) & (grid.centres[:, 1] < 26)
    assert set(grid.strides[small & (t.score == 1)].tolist()) == {min(strides)}
    got, scores, pts = decode(_output_from(t, grid), grid)
    order = np.argsort(got[:, 0])
    assert len(got) == 3 and np.allclose(got[order], boxes, atol=1e-3) and np.allclose(pts[order], five, atol=1e-3)
    assert ((scores > 0.99) & (scores <= 1.0)).all()


def test_ignored_and_pointless_faces():
    grid = cells(160, 160)
    t = encode(grid, np.array([[20, 20, 60, 60], [100, 100, 104, 104]], float), None, np.array([True, False]))
    inside = (grid.centres[:, 0] > 20) & (grid.centres[:, 0] < 60) & (grid.centres[:, 1] > 20) & (grid.centres[:, 1] < 60)
    assert (t.score[inside] == -1).all()
    assert (t.score == 1).sum() >= 1 and not t.has_points.any()   # a 4 px face still owns its nearest cell


def test_overlaps_counts_a_box_half_inside_a_face_as_on_it():
    face = np.array([[0, 0, 100, 100]], float)
    boxes = np.array([[10, 10, 40, 40],      # an eye: IoU 0.09, wholly inside
                      [50, 0, 150, 100],     # half over: IoU 1/3
                      [80, 0, 180, 100],     # a fifth over: IoU 1/9, not half inside
                      [200, 200, 240, 240]], float)
    assert overlaps(boxes, face)[:, 0].tolist() == [True, True, False, False]


def test_loss_is_focal_plus_giou_plus_points():
    from facemark.training.detect_train import detection_loss, giou_loss
    torch.manual_seed(0)
    out = torch.randn(2, 6, 15)
    t = {"score": torch.tensor([[1, 0, 0, -1, 0, 0], [0, 1, 0, 0, 0, 1]], dtype=torch.float32),
         "box": torch.randn(2, 6, 4) * 0.3, "points": torch.randn(2, 6, 10),
         "has_points": torch.tensor([[True] + [False] * 5, [False] * 6])}
    total, _ = detection_loss(out, t, box_weight=2.0, points_weight=0.5)
    valid, pos = t["score"] >= 0, t["score"] > 0
    y = t["score"].clamp(min=0)
    p = torch.sigmoid(out[..., 0])
    ce = F.binary_cross_entropy_with_logits(out[..., 0], y, reduction="none")
    focal = ((0.25 * y + 0.75 * (1 - y)) * (1 - (p * y + (1 - p) * (1 - y))) ** 2 * ce)[valid].sum() / 3
    giou = giou_loss(out[..., 1:5][pos].exp(), t["box"][pos].exp()).sum() / 3
    pts = F.smooth_l1_loss(out[0, 0, 5:], t["points"][0, 0], reduction="sum") / 10
    assert torch.allclose(total, focal + 2.0 * giou + 0.5 * pts)
    same = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    assert giou_loss(same, same).item() == pytest.approx(0.0, abs=1e-6)


def test_config_errors_name_the_key(tmp_path):
    from facemark.training.detect_train import load_detector_config
    cfg = load_detector_config(CONFIG)
    assert cfg.kind == "detector" and cfg.augment["rotate"] > 0 and cfg.model["dilated"] == 1
    for change, key in [({"epoch": 3}, "epoch: not a detector setting"),
                        ({"augment": {"spin": 1}}, "augment.spin: not a setting"),
                        ({"data": {"train": [{"format": "voc", "path": "x", "part": "a/b"}]}}, "data.train\\[0\\].part"),
                        ({"input_size": 300}, "input_size: a multiple of 32"),
                        ({"augment": {"turned_faces": "maybe"}}, "augment.turned_faces: face or background"),
                        ({"augment": {"mosaic_grid": 1}}, "augment.mosaic_grid: tiles per side"),
                        ({"augment": {"paste_count": [3, 1]}}, "augment.paste_count"),
                        ({"augment": {"jpeg_prob": 2}}, "augment.jpeg_prob: a probability"),
                        ({"ema": 1.5}, "ema: a decay in")]:
        values = {**yaml.safe_load(CONFIG.read_text()), **change}
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump(values))
        with pytest.raises(FacemarkError, match=key):
            load_detector_config(path)


CROWD = {"paste_count": [2, 12], "paste_small": 0.6, "stretch": 0.25, "motion_blur_prob": 0.3, "low_res_prob": 0.3,
         "low_light_prob": 0.3, "jpeg_prob": 0.3}


@pytest.mark.parametrize("extra", [{}, CROWD], ids=["default", "crowd"])
def test_augmented_samples_keep_faces_and_points_together(data, extra):
    from facemark.training.detect_data import DetectionAugmenter, load_patches, load_photos
    from facemark.training.detect_train import load_detector_config
    cfg = load_detector_config(CONFIG)
    photos = load_photos([{"format": "scenes", "path": "faces68/scenes/afw", "part": "0/40"}], data)
    patches = load_patches(["faces68/train/helen"], data, 5)
    aug = DetectionAugmenter(photos, patches, 320, {**cfg.augment, "mosaic_prob": 0.5, "mosaic_grid": 4,
                                                 "paste_prob": 1.0, **extra})
    rng = np.random.default_rng(0)
    for _ in range(20):
        s = aug(int(rng.integers(len(photos))), rng)
        assert s.image.shape == (320, 320, 3) and len(s.boxes) == len(s.points) == len(s.ignore)
        assert (s.boxes[:, 2] > s.boxes[:, 0]).all() and (s.boxes >= 0).all() and (s.boxes <= 320).all()
        known = np.isfinite(s.points).all(axis=(1, 2)) & ~s.ignore
        # every face's 5 points lie in (or near) its box, the eyes above the mouth up to a rotation
        for b, p in zip(s.boxes[known], s.points[known]):
            c, half = (b[:2] + b[2:]) / 2, (b[2:] - b[:2]).max()
            assert np.abs(p - c).max() < half


def test_turned_samples_can_teach_turned_faces_as_background(data):
    from facemark.training.detect_data import DetectionAugmenter, load_photos
    from facemark.training.detect_train import load_detector_config
    cfg = load_detector_config(CONFIG)
    photos = load_photos([{"format": "scenes", "path": "faces68/scenes/afw", "part": "0/40"}], data)
    settings = {**cfg.augment, "mosaic_prob": 0.0, "paste_prob": 0.0, "rotate90_prob": 1.0}
    rng = np.random.default_rng(0)
    as_faces = DetectionAugmenter(photos, [], 320, {**settings, "turned_faces": "face"})
    as_background = DetectionAugmenter(photos, [], 320, {**settings, "turned_faces": "background"})
    assert sum(len(as_faces(k % len(photos), rng).boxes) for k in range(10)) > 0
    assert all(len(as_background(k % len(photos), rng).boxes) == 0 for k in range(10))


def test_five_point_faces_get_the_68_point_face_box_and_paste_small(data):
    from facemark.core.detection import iou
    from facemark.core.schemes import scheme
    from facemark.io.datasets import read_pts_folder
    from facemark.training.detect_data import face_box, five_box, load_patches
    faces = read_pts_folder(data / "faces68/test/ytf", 68)[:50]
    overlap = [iou(face_box(f.landmarks)[None], five_box(scheme("ibug68").five_points(f.landmarks))[None])[0, 0]
               for f in faces]
    assert np.median(overlap) > 0.7                # the same framing from 5 points as from 68
    mtfl = {"format": "mtfl", "list": "faces5/new_training.txt", "images": "faces5"}
    patches = load_patches(["faces68/train/helen", mtfl], data, 20)
    small = patches[20:]                           # 20 faces of the folder, then the MTFL crops the box fits in
    assert len(patches[:20]) == 20 and 10 <= len(small) <= 20
    for p in small:
        h, w = p.image.shape[:2]
        assert (p.box[:2] >= 0).all() and p.box[2] <= w and p.box[3] <= h
        assert p.max_face == pytest.approx(1.5 * np.sqrt(np.prod(p.box[2:] - p.box[:2])))
    assert all(p.max_face == np.inf for p in patches[:20])
    even = load_patches([{"format": "pts", "path": "faces68/train/afw", "part": "0/2"}], data, 1000)
    assert len(even) == (len(read_pts_folder(data / "faces68/train/afw", 68)) + 1) // 2   # a part of a 68-point set


def test_paste_faces_are_checked_at_load(tmp_path):
    from facemark.training.detect_train import load_detector_config
    for bad, key in (([{"format": "viola", "path": "x"}], r"data.paste_faces\[0\]: expected"),
                     (["faces68/train/afw", {"format": "pts", "path": "x", "part": "1-2"}], r"data.paste_faces\[1\].part")):
        values = yaml.safe_load(CONFIG.read_text())
        values["data"]["paste_faces"] = bad
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump(values))
        with pytest.raises(DataError, match=key) as e:
            load_detector_config(path)
        assert "bad.yaml" in str(e.value)


def test_ignore_regions_join_their_photos_and_are_checked_at_load(tmp_path, data):
    import json
    from facemark.io.boxes import read_scenes, select_part
    from facemark.training.detect_data import face_box, load_photos
    from facemark.training.detect_train import ignore_boxes, load_detector_config
    spec = {"format": "scenes", "path": "faces68/train/helen", "part": "0/300"}
    plain = load_photos([spec], data)
    name = sorted((data / "faces68/train/helen").glob("*.jpg"))[0].relative_to(data).as_posix()
    region = [[1.0, 2.0, 41.0, 52.0]]
    mined = load_photos([spec], data, ignore_boxes={name: region})
    first, with_region = plain[0], mined[0]
    assert max(first.image.shape[:2]) <= 640                                  # decoded at its own size
    assert with_region.ignore.tolist() == [False, True] and np.isnan(with_region.points[1]).all()
    assert np.allclose(with_region.boxes, np.r_[first.boxes, region])
    # a landmark photo's face is boxed as the pasted faces are (face_box), not by its landmarks' bounds
    lm = select_part(read_scenes(data / "faces68/train/helen"), "0/300")[0].landmarks[0]
    assert np.allclose(first.boxes[0], face_box(lm))
    good = tmp_path / "ignore.json"
    good.write_text(json.dumps({"photos": {name: region}}))
    assert ignore_boxes({"ignore_boxes": str(good)}) == {name: region}
    for text, why in (("{}", "KeyError"), (json.dumps({"photos": {name: [[1, 2, 3]]}}), "ValueError")):
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        with pytest.raises(DataError, match=f"bad.json.*data.ignore_boxes.*{why}"):
            ignore_boxes({"ignore_boxes": str(bad)})
    values = yaml.safe_load(CONFIG.read_text())
    values["data"]["ignore_boxes"] = str(tmp_path / "missing.json")
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(values))
    with pytest.raises(DataError, match="missing.json: data.ignore_boxes: file not found"):
        load_detector_config(path)


def test_pasted_faces_fade_into_the_photo_at_their_square_edge():
    from facemark.training.detect_data import _feather
    alpha = _feather(40, 0.1)[..., 0]              # a 4 px ramp: 1/8, 3/8, 5/8, 7/8, then 1
    assert np.allclose(alpha[20, :5], [0.125, 0.375, 0.625, 0.875, 1.0]) and np.allclose(alpha, alpha[::-1, ::-1])
    assert alpha[0, 0] == alpha[0, 20] == 0.125 and (alpha[4:36, 4:36] == 1).all()
    assert (_feather(40, 0.0) == 1).all()          # no feather: the patch replaces the photo


def test_rotated_photos_carry_their_boxes_and_landmarks():
    from facemark.evaluation.detection import rotate_photo
    from facemark.io.boxes import PhotoBoxes
    image = np.zeros((60, 100, 3), np.uint8)
    image[10:20, 30:50] = 255                                   # a bright box x 30-50, y 10-20
    lms = np.array([[[30.0, 10.0], [49.0, 19.0]]])               # its corner pixels
    photo = PhotoBoxes(Path("x.jpg"), np.array([[30.0, 10.0, 50.0, 20.0]]), landmarks=lms)
    for q in range(1, 5):
        img, p = rotate_photo(image, photo, q)
        x1, y1, x2, y2 = p.boxes[0].astype(int)
        assert img[y1:y2, x1:x2].min() == 255 and img.sum() == image.sum()
        assert all(img[int(y), int(x)].min() == 255 for x, y in p.landmarks[0])
    assert np.allclose(rotate_photo(image, photo, 4)[1].boxes, photo.boxes)


def test_a_tiny_detector_run_trains_resumes_and_exports(tmp_path, data):
    from facemark.inference.detectors import SingleShotDetector
    from facemark.io.images import read_image
    from facemark.training.detect_train import load_detector_config, train_detector
    from facemark.training.export import export
    values = yaml.safe_load(CONFIG.read_text())
    values.update(name="tiny", epochs=2, batch_size=4, threads=1, ema=0.9, data_root=str(data), data={
        "train": [{"format": "yolo", "path": "detect/roboflow_faces/train", "part": "0/150"}],
        "val": [{"format": "yolo", "path": "detect/roboflow_faces/valid", "part": "0/100"}],
        "paste_faces": ["faces68/train/afw"], "paste_limit": 8})
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(values))
    cfg = load_detector_config(path)
    cfg.epochs = 1
    run = train_detector(cfg, tmp_path / "run")
    with pytest.raises(FacemarkError, match="already holds a run"):
        train_detector(cfg, tmp_path / "run")
    cfg.epochs = 2
    train_detector(cfg, tmp_path / "run", resume=True)
    log = (run / "log.jsonl").read_text().splitlines()
    assert len(log) == 2 and '"val"' in log[1]
    # with ema the checkpoint's model is the weights' moving average, "raw" the weights training goes on from
    st = torch.load(run / "last.pt", weights_only=False)
    assert not all(torch.equal(v, st["raw"]["model"][k]) for k, v in st["modules"]["model"].items())
    onnx = export(run / "last.pt", "tiny_det", tmp_path / "export")
    det = SingleShotDetector(onnx, min_score=0.01)
    boxes, scores, five = det.detect_points(read_image(data / "samples" / "lenna.png"))
    assert boxes.shape[1:] == (4,) and five.shape[1:] == (5, 2) and ((scores >= 0.01) & (scores <= 1)).all()
    # an exported detector (its BatchNorm folded away) is rebuilt into a trainable model that answers as the
    # checkpoint's did, and fine-tunes
    from facemark.training.from_onnx import load_onnx_weights
    from facemark.training.models.detector import FaceDetector
    x = torch.rand(4, 3, 128, 128) * 2 - 1
    trained = FaceDetector(**cfg.model)
    trained.load_state_dict(st["modules"]["model"])
    rebuilt = FaceDetector(**cfg.model)
    load_onnx_weights(rebuilt, onnx, x)
    with torch.no_grad():
        assert torch.allclose(rebuilt.eval()(x), trained.eval()(x), atol=1e-4)
    # a fine-tuning may grow the stride-4 level (issue 37): the cells it shares with the file start as the file's
    grown = FaceDetector(**dict(cfg.model, fine=8))
    load_onnx_weights(grown, onnx, x)
    with torch.no_grad():
        out = grown.eval()(x)
    assert out.shape[1] == len(cells(128, 128, (8, 16, 32, 4)).strides)
    assert torch.allclose(out[:, :len(cells(128, 128).strides)], trained.eval()(x), atol=1e-4)
    cfg.init_from, cfg.epochs, cfg.model = str(onnx), 1, dict(cfg.model, fine=8)
    det = SingleShotDetector(export(train_detector(cfg, tmp_path / "fine") / "last.pt", "tiny_fine",
                                    tmp_path / "export"), min_score=0.01)
    assert det.strides == (8, 16, 32, 4) and det.detect_points(read_image(data / "samples" / "lenna.png"))[0].ndim == 2
    cfg.model = dict(cfg.model, fine=0)
    with pytest.raises(DataError, match="tiny_det.onnx.*layers"):
        load_onnx_weights(FaceDetector(**dict(cfg.model, dilated=cfg.model.get("dilated", 0) + 1)), onnx, x)


def test_haar_scores_are_calibrated_probabilities(data):
    from facemark.inference.detectors import HaarDetector
    from facemark.io.images import read_image
    image = read_image(data / "samples" / "breakingbad.jpg")
    raw_boxes, raw = HaarDetector(calibrated=False).detect(image)
    boxes, scores = HaarDetector().detect(image)
    assert len(scores) == len(raw) > 0 and ((scores > 0) & (scores < 1)).all()
    assert np.array_equal(boxes, raw_boxes) and (np.diff(scores) <= 0).all()   # the same order, best first


@pytest.fixture(scope="module")
def roboflow_subset(data):
    from facemark.io.boxes import read_yolo, select_part
    return select_part(read_yolo(data / "detect/roboflow_faces/test"), "0/4")   # 44 photos


def test_shipped_detector_finds_faces_with_few_false_boxes(roboflow_subset):
    from facemark.evaluation.detection import evaluate_detector
    from facemark.inference.detectors import SingleShotDetector
    r = evaluate_detector(SingleShotDetector(), roboflow_subset)
    assert r["recall"] > RECALL_BOUND and r["false_per_photo"] < 0.5
    by_area = evaluate_detector(SingleShotDetector(), roboflow_subset, size="area")
    assert by_area["faces"] >= r["faces"]           # sqrt(w * h) >= the shorter side: at least as many faces count
    for rep in (r, by_area):                        # the same faces, split by size
        bands = rep["recall_by_size"]
        assert sum(b["faces"] for b in bands.values()) == rep["faces"]
        assert sum(b["faces"] * b["recall"] for b in bands.values()) == pytest.approx(rep["recall"] * rep["faces"])


def test_any_angle_detector_finds_turned_faces_as_upright_ones(roboflow_subset, data):
    from facemark.evaluation.detection import evaluate_detector
    from facemark.inference.detectors import build_detector
    from facemark.io.datasets import read_pts
    from facemark.io.images import read_image
    from facemark.inference.landmarker import Landmarker
    from facemark.evaluation.metrics import nme
    det = build_detector("facemark_any")
    upright = evaluate_detector(det, roboflow_subset)["recall"]
    turned = evaluate_detector(det, roboflow_subset, quarters=1)["recall"]
    assert upright > RECALL_BOUND - 0.05 and abs(turned - upright) < 0.05
    # a face lying on its side: the crop is turned upright from the detector's eyes, so its landmarks hold
    image = read_image(data / "samples/takeo.ppm")
    gt = read_pts(data / "samples/takeo.pts", 68) - 1
    w = image.shape[1]
    face = Landmarker(detector=det, threads=1).detect(np.ascontiguousarray(np.rot90(image)))[0]
    assert face.detector_five is not None
    assert nme(face.landmarks, np.stack([gt[:, 1], w - 1 - gt[:, 0]], axis=1), "iod")[0] < 0.08


def test_second_pass_adds_small_faces_of_large_photos_only(roboflow_subset, data):
    from facemark.evaluation.detection import evaluate_detector
    from facemark.inference.detectors import SingleShotDetector
    from facemark.io.boxes import read_scenes
    from facemark.io.images import read_image
    one, two = SingleShotDetector(fine_below=0), SingleShotDetector()   # the default: two passes
    small = read_image(roboflow_subset[0].image)   # 640 px: no second pass
    assert all(np.array_equal(a, b) for a, b in zip(one.detect_points(small), two.detect_points(small)))
    # two 1024 px group photos whose 34-47 px faces are scored under the threshold at 640 px
    groups = [p for p in read_scenes(data / "faces68/scenes/afw") if p.image.stem in ("2417212918", "4538917191")]
    found = [evaluate_detector(d, groups, scenes=True)["recall"] for d in (one, two)]
    assert found[1] >= found[0] + 0.2


def test_crowd_faults_are_off_by_default_and_do_what_they_say():
    """``detect_data._degrade``: with every probability 0 it draws nothing (earlier runs' samples stay the same);
    low light darkens, motion blur spreads a bright dot along a line, low resolution and JPEG keep the shape."""
    from facemark.training.detect_data import _degrade

    off = {k: 0.0 for k in ("motion_blur_prob", "low_res_prob", "low_light_prob", "jpeg_prob")}
    img = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    rng = np.random.default_rng(1)
    assert _degrade(img, rng, off) is img and rng.random() == np.random.default_rng(1).random()
    assert _degrade(img, np.random.default_rng(2), {**off, "low_light_prob": 1.0}).mean() < 0.8 * img.mean()
    dot = np.zeros((21, 21, 3), np.uint8)
    dot[10, 10] = 255
    blurred = _degrade(dot, np.random.default_rng(3), {**off, "motion_blur_prob": 1.0})
    assert blurred.max() < 255 and (blurred[..., 0] > 0).sum() >= 3
    for key in ("low_res_prob", "jpeg_prob"):
        out = _degrade(img, np.random.default_rng(4), {**off, key: 1.0})
        assert out.shape == img.shape and out.dtype == np.uint8 and not np.array_equal(out, img)
