"""Training configs: every file under configs/ builds, and ``base:`` inheritance merges as documented."""
from pathlib import Path

import pytest
import yaml

from facemark.config import load_config
from facemark.errors import DataError
from facemark.losses import build_loss
from facemark.training.trainer import build_codec, build_model

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("[!_]*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_config_builds(path):
    cfg = load_config(path)
    assert cfg.name == path.stem
    build_model(cfg), build_codec(cfg), build_loss(cfg.loss)


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
