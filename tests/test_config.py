"""Training configs: every file under configs/ builds, ``base:`` inheritance merges as documented, and a
setting that does not fit the others is an error naming the file and the setting."""
from pathlib import Path

import pytest
import yaml

from facemark.core.codecs import build_codec
from facemark.core.errors import DataError
from facemark.training.config import config_from_dict, config_kind, load_config
from facemark.training.models import build_model
from facemark.training.tasks import build_task

ROOT = Path(__file__).parents[1] / "configs"
CONFIGS = sorted(p for p in ROOT.rglob("*.yaml") if not p.name.startswith("_"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_config_builds(path):
    if config_kind(path) == "detector":
        from facemark.training.detect_train import load_detector_config
        from facemark.training.models.detector import FaceDetector

        det = load_detector_config(path)
        assert det.name == path.stem and FaceDetector(**det.model)
        return
    if config_kind(path) == "mtcnn":
        from facemark.training.mtcnn_train import load_mtcnn_config

        assert load_mtcnn_config(path).name == path.stem
        return
    if config_kind(path) in ("asm", "aam"):
        from facemark.training.classical import load_classical_config

        assert load_classical_config(path).name == path.stem
        return
    cfg = load_config(path)
    assert cfg.name == path.stem
    codec = build_codec(cfg.codec, cfg.input_size, cfg.spec.n_points, cfg.dim)
    build_model(cfg.spec, cfg.model), build_task(cfg, codec, str(path))


def test_one_config_per_shipped_model_without_a_base():
    """configs/NAME.yaml for each shipped model and nothing else at the top, every setting in the file itself."""
    from facemark.cli.models import shipped_models

    assert {p.stem for p in ROOT.glob("*.yaml")} == {r["name"] for r in shipped_models()}
    assert not any("base" in yaml.safe_load(p.read_text()) for p in ROOT.glob("*.yaml"))


def test_paths_in_a_config_are_relative_to_its_folder(tmp_path, monkeypatch):
    """``base``, ``init_from`` and ``data.ignore_boxes`` resolve from the config's folder, whatever the working
    directory; absolute paths stay."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.yaml").write_text(yaml.safe_dump({**PFLD, "name": "a", "init_from": "w/a.onnx"}))
    (tmp_path / "sub" / "b.yaml").write_text(yaml.safe_dump({"base": "../a.yaml", "name": "b"}))
    (tmp_path / "sub" / "c.yaml").write_text(yaml.safe_dump({"base": "../a.yaml", "name": "c",
                                                             "init_from": "../runs/c.pt"}))
    monkeypatch.chdir(tmp_path / "sub")
    assert load_config("b.yaml").init_from == str(Path("..") / "w" / "a.onnx")
    assert load_config(tmp_path / "sub" / "c.yaml").init_from == str(tmp_path / "runs" / "c.pt")
    monkeypatch.chdir(tmp_path)
    assert load_config("sub/c.yaml").init_from == str(Path("runs") / "c.pt")


def test_base_merges_data_and_replaces_the_rest(tmp_path):
    (tmp_path / "a.yaml").write_text(yaml.safe_dump({
        "name": "a", "model": {"name": "pfld", "width": 0.25}, "codec": {"name": "regression"},
        "loss": {"name": "wing", "w": 10.0}, "epochs": 7, "data": {"val": "v", "precrop_size": 200}}))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({
        "base": "a.yaml", "name": "b", "loss": {"name": "l2"}, "data": {"precrop_size": 300}}))
    b = load_config(tmp_path / "b.yaml")
    assert (b.name, b.epochs, b.loss, b.model["width"]) == ("b", 7, {"name": "l2"}, 0.25)
    assert (b.data.val, b.data.precrop_size) == ("v", 300)


def test_base_errors_name_the_file(tmp_path):
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\nname: x\n")
    with pytest.raises(DataError, match="loops back"):
        load_config(tmp_path / "loop.yaml")
    (tmp_path / "orphan.yaml").write_text("base: missing.yaml\nname: x\n")
    with pytest.raises(DataError, match="missing.yaml: config file not found"):
        load_config(tmp_path / "orphan.yaml")


PFLD = {"name": "x", "model": {"name": "pfld", "width": 0.25}, "codec": {"name": "regression"},
        "loss": {"name": "wing"}}
PIP = {"name": "x", "model": {"name": "pipnet", "backbone": {"name": "mobilenetv2", "width": 0.25}},
       "codec": {"name": "pip", "stride": 32, "num_nb": 10}, "loss": {"name": "pip"}, "input_size": 128}


@pytest.mark.parametrize("over, message", [
    ({"model": {"name": "pfld", "n_points": 98}}, "model.n_points: set once, by `scheme`"),
    ({"loss": {"name": "wing", "scale": 112}}, "loss.scale: set once, by `input_size`"),
    ({"scheme": "ibug67"}, "scheme/dim: unknown landmark scheme 'ibug67'"),
    ({"dim": 4}, "scheme/dim: points have 2 .* not 4"),
    ({"input_size": 100}, "model: PFLD input size must be a multiple of 16"),
    ({"codec": {"name": "heatmap"}}, r"model: pfld gives outputs \[\(136,\)\] .* the heatmap codec decodes"),
    ({"loss": {"name": "nope"}}, "loss: .*unknown loss 'nope'"),
    ({"model": {"name": "hrnet", "width": 8}, "codec": {"name": "heatmap"}, "loss": {"name": "awing"},
      "pose_weighting": True}, "pose_weighting: only regression models have a pose branch"),
    ({"stc": {"unlabeled": "u"}}, "stc: STC needs a PIPNet"),
])
def test_mismatched_settings_name_file_and_setting(tmp_path, over, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**PFLD, **over}))
    with pytest.raises(DataError, match=f"bad.yaml: {message}"):
        load_config(path)


def test_codec_stride_reaches_the_model_and_is_checked(tmp_path):
    path = tmp_path / "pip.yaml"
    path.write_text(yaml.safe_dump(PIP))
    assert load_config(path).spec.codec["stride"] == 32
    path.write_text(yaml.safe_dump({**PIP, "codec": {"name": "pip", "stride": 8, "num_nb": 10}}))
    with pytest.raises(DataError, match="model: backbone mobilenetv2: output stride 16 or 32, not 8"):
        load_config(path)


def test_checkpoint_configs_of_older_versions_are_read():
    # what a checkpoint of the previous layout stored: settings repeated in model, data and loss
    old = {"name": "o", "model": {"name": "pipnet_mobilenetv2", "n_points": 68, "num_nb": 10, "stride": 16,
                                  "width": 0.5}, "codec": {"name": "pip", "stride": 16, "num_nb": 10},
           "loss": {"name": "pip"}, "input_size": 128, "pose_weighting": False,
           "data": {"n_points": 68, "train": ["t"], "val": "v"}}
    cfg = config_from_dict(old, "old.pt")
    assert cfg.scheme == "ibug68" and cfg.model == {"name": "pipnet", "backbone": {"name": "mobilenetv2",
                                                                                    "width": 0.5}}
