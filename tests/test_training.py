"""The training loop on a handful of faces: it runs, it is reproducible, and --resume continues exactly."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from facemark.core.errors import FacemarkError
from facemark.training.config import load_config
from facemark.training.data import build_cropset, load_datasets
from facemark.training.trainer import train

CONFIG = {
    "name": "tiny",
    "model": {"name": "pfld", "width": 0.25},
    "codec": {"name": "regression"},
    "loss": {"name": "wing", "w": 10.0, "epsilon": 2.0},
    "input_size": 64, "epochs": 2, "batch_size": 8, "lr": 0.002, "threads": 1, "seed": 3,
    "pose_weighting": True, "pose_weight_floor": 1.0,
    "data": {"train": ["faces"], "val": "faces", "precrop_size": 96},
}


def _config(tmp_path, root, **over):
    cfg = dict(CONFIG, data_root=str(root), **over)
    path = tmp_path / f"{cfg['name']}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return load_config(path)


def test_resume_continues_exactly(tmp_path, tiny_root):
    straight = train(_config(tmp_path, tiny_root), tmp_path / "a")
    half = _config(tmp_path, tiny_root)
    half.epochs = 1
    train(half, tmp_path / "b")
    train(_config(tmp_path, tiny_root), tmp_path / "b", resume=True)
    a = torch.load(straight / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=False)
    assert a["epoch"] == b["epoch"] == 2
    for k in a["modules"]["model"]:
        assert torch.equal(a["modules"]["model"][k], b["modules"]["model"][k]), k
    log = (tmp_path / "a" / "log.jsonl").read_text().splitlines()
    assert len(log) == 2 and (tmp_path / "a" / "best.pt").is_file()


def test_batch_workers_do_not_change_the_weights(tmp_path, tiny_root):
    one = train(_config(tmp_path, tiny_root, epochs=1), tmp_path / "one")
    three = train(_config(tmp_path, tiny_root, epochs=1), tmp_path / "three", workers=3)
    a = torch.load(one / "last.pt", weights_only=False)["modules"]["model"]
    b = torch.load(three / "last.pt", weights_only=False)["modules"]["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert '"device": "cpu"' in (three / "log.jsonl").read_text()


def test_packed_faces_give_the_same_precrops(tmp_path, tiny_root):
    # tools/pack_crops.py stores each face as its pre-crop: re-cropping it is the identity warp
    if not (tiny_root / "val").is_dir():
        shutil.copytree(tiny_root / "faces", tiny_root / "val")
    cfg = _config(tmp_path, tiny_root, data=dict(CONFIG["data"], val="val"))
    tool = Path(__file__).resolve().parents[1] / "tools" / "pack_crops.py"
    r = subprocess.run([sys.executable, str(tool), str(tmp_path / "tiny.yaml"), "--out", str(tmp_path / "pack")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    d = cfg.data
    src = build_cropset(load_datasets(tiny_root, d.train, 68), d.precrop_size, d.precrop_margin)
    packed = build_cropset(load_datasets(tmp_path / "pack", d.train, 68), d.precrop_size, d.precrop_margin)
    assert np.abs(src.landmarks - packed.landmarks).max() < 0.01
    assert np.abs(src.images.astype(float) - packed.images).mean() < 3.0   # WebP at quality 90
    assert len(list((tmp_path / "pack" / "val").glob("*.jpg"))) == 16      # validation images copied as they are
    _config(tmp_path, tiny_root)                                            # rewrites tiny.yaml: val is "faces" again
    same = subprocess.run([sys.executable, str(tool), str(tmp_path / "tiny.yaml"), "--out", str(tmp_path / "pack2")],
                          capture_output=True, text=True)
    assert same.returncode == 1 and "also a training folder" in same.stderr


def test_unknown_device_is_a_clear_error(tmp_path, tiny_root):
    with pytest.raises(FacemarkError, match="device 'tpu'"):
        train(_config(tmp_path, tiny_root, epochs=1), tmp_path / "d", device="tpu")


def test_existing_run_needs_resume_flag(tmp_path, tiny_root):
    cfg = _config(tmp_path, tiny_root, epochs=1)
    train(cfg, tmp_path / "r")
    r = subprocess.run([sys.executable, "-m", "facemark", "train", str(tmp_path / "tiny.yaml"), "--out",
                        str(tmp_path / "r")], capture_output=True, text=True)
    assert r.returncode == 2 and "already holds a run; pass --resume" in r.stderr


def test_export_matches_torch_and_loads(tmp_path, tiny_root):
    from facemark.inference.runtime import OnnxLandmarkModel
    from facemark.training.export import export

    run = train(_config(tmp_path, tiny_root, epochs=1), tmp_path / "e")
    onnx_path = export(run / "best.pt", "tiny", tmp_path / "w")
    before = onnx_path.read_bytes()
    with pytest.raises(FacemarkError, match="tiny.onnx: already exists; pass --force"):
        export(run / "last.pt", "tiny", tmp_path / "w")
    assert onnx_path.read_bytes() == before                                 # nothing replaced
    export(run / "last.pt", "tiny", tmp_path / "w", force=True)
    r = subprocess.run([sys.executable, "-m", "facemark", "export", str(run / "last.pt"), "--name", "pfld68_fast"],
                       capture_output=True, text=True)                      # default: the run's export/, not the package
    assert r.returncode == 0 and (run / "export" / "pfld68_fast.onnx").is_file(), r.stderr
    model = OnnxLandmarkModel(onnx_path)
    assert model.card.input_size == 64 and model.card.meta["macs"] > 0
    out = model(np.zeros((3, 64, 64, 3), np.uint8))
    assert out.shape == (3, 68, 2) and np.isfinite(out).all()


def test_98_point_training_on_wflw_fixture(tmp_path, fixtures):
    cfg = _config(tmp_path, fixtures, pose_weighting=False, epochs=1, batch_size=2, scheme="wflw98",
                  data={"precrop_size": 96,
                        "train": [{"format": "wflw", "list": "wflw_list.txt", "images": "."}],
                        "val": {"format": "wflw", "list": "wflw_list.txt", "images": "."}})
    run = train(cfg, tmp_path / "w98")
    assert (run / "best.pt").is_file()


@pytest.mark.parametrize("model, codec, loss", [
    ({"name": "hourglass", "stacks": 2, "channels": 32, "depth": 2},
     {"name": "heatmap", "stride": 4, "sigma": 1.5, "decoder": "soft_argmax"}, {"name": "awing"}),
    ({"name": "hrnet", "width": 8, "blocks": 1, "modules": [1, 1, 1], "stem_blocks": 1},
     {"name": "heatmap", "stride": 4, "sigma": 1.5, "decoder": "argmax"}, {"name": "heatmap_mse"}),
    ({"name": "pipnet", "backbone": {"name": "mobilenetv2", "width": 0.25}},
     {"name": "pip", "stride": 32, "num_nb": 10}, {"name": "pip"}),
    ({"name": "hrnet", "width": 8, "blocks": 1, "modules": [1, 1, 1], "stem_blocks": 1, "offsets": True},
     {"name": "hih", "stride": 4, "sigma": 1.5}, {"name": "hih"}),
    ({"name": "hrnet", "width": 8, "blocks": 1, "modules": [1, 1, 1], "stem_blocks": 1, "boundaries": True,
      "attention": "anisotropic"}, {"name": "heatmap", "stride": 4, "sigma": 1.5},
     {"name": "awing", "boundary_weight": 1.0, "direction_weight": 0.5}),
    ({"name": "pfld", "width": 0.25}, {"name": "anchors", "count": 3}, {"name": "anchors"}),
    ({"name": "spiga", "width": 8, "steps": 2, "dim": 16, "heads": 2}, {"name": "cascade", "stride": 4},
     {"name": "cascade"}),
    ({"name": "cunet", "stacks": 2, "growth": 8, "depth": 2, "channels": 8},
     {"name": "heatmap", "stride": 4, "sigma": 1.5}, {"name": "awing"}),
])
def test_every_family_trains_exports_and_decodes(tmp_path, tiny_root, model, codec, loss):
    from facemark.inference.runtime import OnnxLandmarkModel
    from facemark.training.export import export

    cfg = _config(tmp_path, tiny_root, model=model, codec=codec, loss=loss, pose_weighting=False, epochs=1)
    run = train(cfg, tmp_path / "run")
    log = (run / "log.jsonl").read_text()
    assert '"nme"' in log
    onnx_path = export(run / "best.pt", "m", tmp_path / "w")
    m = OnnxLandmarkModel(onnx_path)
    assert m.card.codec["name"] == codec["name"]
    out = m(np.zeros((2, 64, 64, 3), np.uint8))
    assert out.shape == (2, 68, 2) and np.isfinite(out).all()
    if codec["name"] in ("heatmap", "hih"):  # the decoder ablation reads the same network out differently
        assert OnnxLandmarkModel(onnx_path, decoder="quarter").codec.decoder == "quarter"
    else:
        with pytest.raises(FacemarkError, match="has no decoder 'argmax'"):
            OnnxLandmarkModel(onnx_path, decoder="argmax")


def test_stc_rounds_pseudo_label_and_resume_exactly(tmp_path, tiny_root, data):
    pip = {"model": {"name": "pipnet", "backbone": {"name": "mobilenetv2", "width": 0.25}},
           "codec": {"name": "pip", "stride": 16, "num_nb": 10}, "loss": {"name": "pip"},
           "pose_weighting": False, "input_size": 64}
    base = train(_config(tmp_path, tiny_root, epochs=1, **pip), tmp_path / "base")
    unlabeled = tiny_root / "unlabeled"
    unlabeled.mkdir(exist_ok=True)
    for p in sorted((data / "unlabeled/ytf").glob("*.jpg"))[:12]:
        shutil.copy(p, unlabeled / p.name)
    held_out = sorted(unlabeled.glob("*.jpg"))[0].stem.rsplit("_", 1)[0]
    (tiny_root / "held_out").mkdir(exist_ok=True)
    shutil.copy(sorted(unlabeled.glob("*.jpg"))[0], tiny_root / "held_out" / f"{held_out}_99.jpg")
    stc = dict(pip, epochs=2, init_from=str(base / "last.pt"),
               stc={"unlabeled": "unlabeled", "epochs_per_round": 1, "exclude_people_of": "held_out"})
    straight = train(_config(tmp_path, tiny_root, **stc), tmp_path / "stc")
    with np.load(straight / "pseudo-round1.npz") as z:
        kept = [str(p) for p in z["paths"]]
        assert z["landmarks"].shape == (len(kept), 68, 2)
    assert kept and not any(held_out in p for p in kept)       # the held-out person's frames stay out
    assert (straight / "pseudo-round2.npz").is_file()
    half = _config(tmp_path, tiny_root, **stc)
    half.epochs = 1
    train(half, tmp_path / "stc2")
    train(_config(tmp_path, tiny_root, **stc), tmp_path / "stc2", resume=True)
    a = torch.load(straight / "last.pt", weights_only=False)["modules"]["model"]
    b = torch.load(tmp_path / "stc2" / "last.pt", weights_only=False)["modules"]["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_stc_needs_a_trained_pipnet(tmp_path, tiny_root):
    with pytest.raises(FacemarkError, match="STC needs a PIPNet"):
        train(_config(tmp_path, tiny_root, stc={"unlabeled": "faces"}), tmp_path / "x")


# Weights of one epoch on the first 16 afw faces, written by the trainer as it was before the layered redesign
# (commit ce40f09): the redesign must give the same weights bit for bit (fixtures/golden/README.md).
GOLDEN = json.loads((Path(__file__).parent / "fixtures" / "golden" / "weights.json").read_text())
GOLDEN_CONFIGS = {
    "pfld": {"model": {"name": "pfld", "width": 0.25}, "codec": {"name": "regression"},
             "loss": {"name": "wing", "w": 10.0, "epsilon": 2.0}, "pose_weighting": True, "pose_weight_floor": 1.0},
    "hrnet": {"model": {"name": "hrnet", "width": 8, "blocks": 1, "modules": [1, 1, 1], "stem_blocks": 1,
                        "stem_channels": 16},
              "codec": {"name": "heatmap", "stride": 4, "sigma": 1.5, "decoder": "soft_argmax"},
              "loss": {"name": "awing"}, "pose_weighting": False},
    "pipnet": {"model": {"name": "pipnet", "backbone": {"name": "mobilenetv2", "width": 0.25}},
               "codec": {"name": "pip", "stride": 32, "num_nb": 10}, "loss": {"name": "pip"}, "pose_weighting": False},
}


@pytest.mark.parametrize("family", sorted(GOLDEN_CONFIGS))
def test_same_weights_as_before_the_redesign(tmp_path, tiny_root, family):
    run = train(_config(tmp_path, tiny_root, epochs=1, **GOLDEN_CONFIGS[family]), tmp_path / family)
    got = {k: v.numpy() for k, v in torch.load(run / "last.pt", weights_only=False)["modules"]["model"].items()}
    if os.environ.get("FACEMARK_RECORD_GOLDEN"):   # a deliberate change of the training results (README there)
        _record_golden(family, got)
        return
    ref = GOLDEN["weights"][family]
    assert set(got) == set(ref)
    if GOLDEN.get("cpu") == _cpu():   # the machine the weights were recorded on: bit for bit
        for k, v in got.items():
            assert hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest() == ref[k]["sha256"], k
        return
    # another CPU rounds differently in the last bits, and Adam turns that into a step of the learning rate's
    # size wherever a gradient is near 0, so single tensors can move far; the whole model's sum of |w| moved
    # 2e-6 between two CPUs, and a 1-degree change of the rotation augmentation moves it 1e-4
    total = sum(float(np.abs(v.astype(np.float64)).sum()) for v in got.values())
    assert total == pytest.approx(sum(r["abs"] for r in ref.values()), rel=1e-5)


@pytest.mark.parametrize("family", sorted(GOLDEN_CONFIGS))
def test_an_exported_model_is_rebuilt_for_fine_tuning(tmp_path, tiny_root, family):
    from facemark.training.export import export
    from facemark.training.from_onnx import load_onnx_weights
    from facemark.training.models import build_model

    cfg = _config(tmp_path, tiny_root, epochs=1, **GOLDEN_CONFIGS[family])
    run = train(cfg, tmp_path / "run")
    onnx_path = export(run / "last.pt", "m", tmp_path / "w")
    st = torch.load(run / "last.pt", weights_only=False)
    trained, rebuilt = build_model(cfg.spec, cfg.model), build_model(cfg.spec, cfg.model)
    trained.load_state_dict(st["modules"]["model"])
    x = torch.rand(8, 3, 64, 64) * 2 - 1
    load_onnx_weights(rebuilt, onnx_path, x)     # the export folded every BatchNorm into its convolution
    with torch.no_grad():
        a, b = trained.eval()(x), rebuilt.eval()(x)
        for u, v in zip(a if isinstance(a, tuple) else [a], b if isinstance(b, tuple) else [b]):
            assert torch.allclose(u, v, atol=1e-4)
    fine = _config(tmp_path, tiny_root, epochs=1, init_from=str(onnx_path), **GOLDEN_CONFIGS[family])
    assert (train(fine, tmp_path / "fine") / "last.pt").is_file()


def _cpu() -> str:
    """This machine's CPU as torch's kernels see it: their instruction set, the vendor and the model."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    fields = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in info.splitlines() if ":" in line)}
    return " / ".join([torch.backends.cpu.get_cpu_capability(), fields.get("vendor_id", "?"),
                       fields.get("model name", "?")])


def _record_golden(family: str, weights: dict[str, np.ndarray]) -> None:
    path = Path(__file__).parent / "fixtures" / "golden" / "weights.json"
    golden = json.loads(path.read_text())
    golden["cpu"] = _cpu()
    golden["weights"][family] = {k: {"sha256": hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest(),
                                     "sum": float(v.astype(np.float64).sum()),
                                     "abs": float(np.abs(v.astype(np.float64)).sum())} for k, v in weights.items()}
    path.write_text(json.dumps(golden, indent=1) + "\n")


def test_distillation_teacher_labels_the_crops_and_shares_the_loss(tmp_path, tiny_root):
    from facemark.core.codecs import build_codec
    from facemark.training.tasks import build_task

    cfg = _config(tmp_path, tiny_root, epochs=1, distill={"teachers": ["pfld68_fast"], "weight": 0.25, "flip": False})
    task = build_task(cfg, build_codec(cfg.codec, 64, 68), "tiny.yaml")
    run = train(cfg, tmp_path / "kd")
    assert '"nme"' in (run / "log.jsonl").read_text()
    # the teacher (a 112 px model) labels the student's 64 px crops: on a face it lands near the annotation
    s = load_datasets(tiny_root, ["faces"], 68)[0]
    from facemark.core.crop import crop_from_landmarks
    crop = crop_from_landmarks(s.landmarks, 64)
    pts = crop.to_crop(s.landmarks)[None]
    t = task.targets(pts, {}, crop.warp(s.load_image())[None])
    assert set(t) == {"target", "teacher.target", "angles"}
    taught = t["teacher.target"].reshape(1, 68, 2) * 64 - 0.5
    assert np.abs(taught - pts).mean() < 3.0
    # loss = (1 - w) * loss(annotation) + w * loss(teacher)
    tt = {k: torch.from_numpy(v) for k, v in t.items()}
    out = {"out": torch.zeros(1, 136)}
    expected = 0.75 * task.loss_fn(out["out"], tt["target"]) + 0.25 * task.loss_fn(out["out"], tt["teacher.target"])
    assert torch.allclose(task.loss(out, tt), expected)


def test_distillation_teacher_must_share_the_scheme(tmp_path, tiny_root):
    from facemark.core.errors import DataError

    with pytest.raises(DataError, match="distill.weight"):
        _config(tmp_path, tiny_root, distill={"teachers": ["pfld68_fast"], "weight": 0.0})
    with pytest.raises(DataError, match="distill.teachers: pfld68_fast predicts ibug68, the student wflw98"):
        _config(tmp_path, tiny_root, scheme="wflw98", pose_weighting=False,
                distill={"teachers": ["pfld68_fast"]})


def test_a_2d_run_starts_a_3d_run_on_lifted_labels_with_profiled_faces(tmp_path, tiny_root):
    flat = train(_config(tmp_path, tiny_root, epochs=1), tmp_path / "flat")
    cfg = _config(tmp_path, tiny_root, epochs=1, dim=3, init_from=str(flat / "last.pt"),
                  augment={"profile_prob": 1.0})
    deep = train(cfg, tmp_path / "deep")
    a = torch.load(flat / "last.pt", weights_only=False)["modules"]["model"]
    b = torch.load(deep / "last.pt", weights_only=False)["modules"]["model"]
    assert a["fc.weight"].shape[0] == 136 and b["fc.weight"].shape[0] == 204
    # the 2D samples were lifted: x, y as annotated, z from the shape-model fit, centred per face
    s = load_datasets(tiny_root, ["faces"], 68)
    from facemark.training.data import lift_samples
    lifted = lift_samples(s)
    assert lifted[0].landmarks.shape == (68, 3) and np.array_equal(lifted[0].landmarks[:, :2], s[0].landmarks)
    assert abs(lifted[0].landmarks[:, 2].mean()) < 1e-6 and lifted[0].landmarks[30, 2] < lifted[0].landmarks[0, 2]
    with pytest.raises(FacemarkError, match="dim: 3D labels come from the iBUG-68"):
        _config(tmp_path, tiny_root, dim=3, scheme="cofw29")


def test_profiling_turns_the_face_and_its_labels():
    from facemark.core.pose import head_pose, project_model
    from facemark.training.profile import profile
    pts = project_model(10, 0, 0, scale=40.0, centre=(100.0, 100.0))
    yy, xx = np.mgrid[0:200, 0:200]
    image = np.dstack([xx, yy, (xx + yy) // 2]).astype(np.uint8)    # pixels that say where they came from
    out, turned, seen = profile(image, pts[:, :2], 30.0)
    assert out.shape == image.shape and turned.shape == (68, 2) and seen.shape == (68,)
    assert head_pose(turned)[0] == pytest.approx(40.0, abs=1.5)
    # the nose tip's pixel came from the nose tip (bilinear sampling of a smooth ramp)
    nose = np.round(turned[30]).astype(int)
    assert np.abs(out[nose[1], nose[0], :2].astype(float) - pts[30, :2]).max() < 3
    # a tilt: pitch > 0 turns the face up
    assert head_pose(profile(image, pts[:, :2], 0.0, 20.0)[1])[1] == pytest.approx(20.0, abs=1.5)
    # self-occlusion: nothing is hidden unturned; turned to 80 degrees, the far cheek's outline goes behind the
    # face and the near one stays in sight
    assert profile(image, pts[:, :2], 0.0)[2].all()
    seen = profile(image, pts[:, :2], 70.0)[2]
    assert not seen[12:17].any() and seen[0:7].all() and seen[[30, 36, 37]].all()


def test_the_profiling_mesh_covers_the_whole_image():
    """Every Delaunay triangle is kept (once a float32 rounding dropped some, leaving unturned holes)."""
    from facemark.core.mesh import triangles
    rng = np.random.default_rng(3)
    side = 232
    border = np.array([[0, 0], [115.5, 0], [231, 0], [231, 115.5], [231, 231], [115.5, 231], [0, 231], [0, 115.5]])
    for _ in range(20):
        pts = np.concatenate([rng.uniform(20, 210, (90, 2)), border])
        pts[61:64] = pts[65:68][::-1]                                 # coinciding points, as a closed mouth has
        tri = pts[triangles(pts, side)]
        u, v = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
        area = np.abs(u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]).sum() / 2
        assert area == pytest.approx(231.0 ** 2, rel=1e-9)


def test_the_occluder_labels_the_points_it_covers():
    from facemark.core.schemes import scheme
    from facemark.training.config import AugmentConfig
    from facemark.training.data import Augmenter

    aug = Augmenter(AugmentConfig(), 64, scheme("ibug68"))
    pts = np.stack(np.meshgrid(np.arange(2, 64, 4.0), np.arange(2, 64, 4.0)), axis=-1).reshape(-1, 2)
    image, source = np.full((64, 64, 3), 7, np.uint8), np.full((96, 96, 3), 200, np.uint8)
    for seed in range(30):   # every shape and fill: a point is labelled covered where its pixel changed
        out, covered = aug._occlude(image, pts, source, np.random.default_rng(seed))
        changed = (out[pts[:, 1].astype(int), pts[:, 0].astype(int)] != 7).any(axis=1)
        assert covered.any() and np.array_equal(changed, covered)


def test_a_part_occluder_lies_over_one_region_of_the_face():
    """With ``occlusion_parts`` the occluder covers most of one region's points (sunglasses, a mask, a hand)."""
    from facemark.core.pose import project_model
    from facemark.core.schemes import scheme
    from facemark.training.config import AugmentConfig
    from facemark.training.data import Augmenter

    ibug = scheme("ibug68")
    aug = Augmenter(AugmentConfig(occlusion_parts=1.0), 128, ibug)
    pts = project_model(0, 0, 0, scale=40.0, centre=(64.0, 64.0))[:, :2]
    image, source = np.full((128, 128, 3), 7, np.uint8), np.full((192, 192, 3), 200, np.uint8)
    for seed in range(20):
        _, covered = aug._occlude(image, pts, source, np.random.default_rng(seed))
        assert max(covered[list(idx)].mean() for idx in ibug.regions.values()) >= 0.5


def test_a_visibility_head_trains_alone_on_a_frozen_export(tmp_path, tiny_root):
    """A shipped-style export without a visibility head starts a run with one (``optional``); ``train_only``
    trains the head alone, so the points stay the export's; the new export has a ``visibility`` output."""
    from facemark.inference.runtime import OnnxLandmarkModel
    from facemark.training.export import export

    hrnet = GOLDEN_CONFIGS["hrnet"]
    base = export(train(_config(tmp_path, tiny_root, epochs=1, **hrnet), tmp_path / "base") / "last.pt", "b",
                  tmp_path / "w")
    vis = dict(hrnet, model={**hrnet["model"], "visibility": True})
    with pytest.raises(FacemarkError, match="train_only: hrnet has no module 'vis'"):
        _config(tmp_path, tiny_root, epochs=1, init_from=str(base), train_only=["vis"], **vis)
    cfg = _config(tmp_path, tiny_root, epochs=1, init_from=str(base), train_only=["visibility"],
                  augment={"occlusion_prob": 1.0}, **vis)
    run = train(cfg, tmp_path / "vis")
    onnx_path = export(run / "last.pt", "v", tmp_path / "w")
    crops = np.stack([np.asarray(s.load_image()[:64, :64]) for s in load_datasets(tiny_root, ["faces"], 68)[:4]])
    old, new = OnnxLandmarkModel(base), OnnxLandmarkModel(onnx_path)
    a = new.analyse(crops)
    assert not old.has_visibility and old.analyse(crops).visibility is None
    assert a.visibility.shape == (4, 68) and ((a.visibility >= 0) & (a.visibility <= 1)).all()
    np.testing.assert_allclose(a.points, old(crops), atol=1e-3)
