"""The training engine: its schedule, and every family trained by several processes through torchrun
(``facemark train --nproc 2 --max-steps K``) on tiny configs."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from facemark.training.engine import Schedule, load_checkpoint

CONFIGS = Path(__file__).parents[1] / "configs"
LANDMARKS = {"name": "tiny", "model": {"name": "pfld", "width": 0.25}, "codec": {"name": "regression"},
             "loss": {"name": "wing", "w": 10.0, "epsilon": 2.0}, "input_size": 64, "epochs": 2, "batch_size": 8,
             "lr": 0.002, "threads": 2, "seed": 3, "pose_weighting": False,
             "data": {"train": ["faces"], "val": "faces", "precrop_size": 96}}
PHOTOS = {"train": [{"format": "yolo", "path": "detect/roboflow_faces/train", "part": "0/150"}],
          "val": [{"format": "yolo", "path": "detect/roboflow_faces/valid", "part": "0/200"}]}


def test_one_schedule_gives_each_familys_former_schedule():
    total, warm = 1000, 50
    landmark = Schedule(warm, 0.01, after_warmup=True)   # the landmark loop's: warm-up, then a cosine to 1%
    for step in (0, 10, 49):
        assert landmark.factor(step, total) == (step + 1) / warm
    for step in (50, 400, 999):
        t = (step - warm) / (total - warm)
        assert landmark.factor(step, total) == 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * t))
    detector = Schedule(300)                              # the detector's: warm-up times a cosine from step 0
    for step in (0, 299, 700):
        want = min(1.0, (step + 1) / 300) * 0.5 * (1 + math.cos(math.pi * step / total))
        assert detector.factor(step, total) == pytest.approx(want, rel=1e-15)
    assert Schedule(0).factor(0, total) == 1.0


def _train(config: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "facemark", "train", str(config), "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=300)


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_two_processes_train_a_landmark_model_as_one_does(tmp_path, tiny_root):
    """The same global batch over 2 processes: a checkpoint any number of processes resumes, and a first epoch
    whose loss is one process's within the noise of their different augmentations."""
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(dict(LANDMARKS, data_root=str(tiny_root))))
    one, two = tmp_path / "one", tmp_path / "two"
    assert _train(path, one, "--max-steps", "4").returncode == 0
    r = _train(path, two, "--nproc", "2", "--max-steps", "4")
    assert r.returncode == 0, r.stderr[-2000:]
    a, b = _log(one), _log(two)
    assert [x["processes"] for x in b] == [2, 2] and len(a) == len(b) == 2
    assert b[0]["loss"] == pytest.approx(a[0]["loss"], rel=0.1)
    st = load_checkpoint(two / "last.pt")
    assert st["kind"] == "landmarks" and st["done"] == {"train": 2}
    r = _train(path, two, "--resume", "--epochs", "3")   # one process goes on where two stopped
    assert r.returncode == 0, r.stderr[-2000:]
    assert [x["processes"] for x in _log(two)] == [2, 2, 1]


@pytest.mark.parametrize("kind", ["facemark_det", "mtcnn"])
def test_two_processes_train_the_detectors(tmp_path, data, kind):
    """The shipped detectors' configs, shrunk (tiny photo sets, from scratch), train with two processes."""
    values = yaml.safe_load((CONFIGS / f"{kind}.yaml").read_text())
    values.pop("init_from", None)
    values.update(name="tiny", threads=2, batch_size=8, data_root=str(data), data=dict(PHOTOS))
    if kind == "facemark_det":
        values.update(input_size=128, epochs=1)
        values["data"]["paste_faces"], values["data"]["paste_limit"] = ["faces68/train/afw"], 8
    else:
        values["stages"] = {s: {"epochs": 1, "samples": 16} for s in ("pnet", "rnet", "onet")}
        values["data"]["landmark_faces"], values["data"]["landmark_limit"] = ["faces68/train/afw"], 8
    path = tmp_path / f"{kind}.yaml"
    path.write_text(yaml.safe_dump(values))
    r = _train(path, tmp_path / "run", "--nproc", "2", "--max-steps", "4")
    assert r.returncode == 0, r.stderr[-2000:]
    st = load_checkpoint(tmp_path / "run" / "last.pt")
    assert st["kind"] == values["kind"] and all(x["processes"] == 2 for x in _log(tmp_path / "run"))
    assert all(torch.isfinite(v).all() for m in st["modules"].values() for v in m.values() if v.is_floating_point())
