"""``detect --engine ray`` on a local Ray instance (2 CPUs): the same records as the local engine, in JSON lines
and in Parquet, and a stopped job resumed."""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from facemark.cli import main

ray = pytest.importorskip("ray", reason="the Ray engine's tests need its extra: pip install -e '.[ray]'")
pq = pytest.importorskip("pyarrow.parquet", reason="the Ray engine's tests need its extra: pip install -e '.[ray]'")


def _records(path) -> list[dict]:
    return sorted((json.loads(line) for line in path.read_text().splitlines()), key=lambda r: r["image"])


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_ray_engine_gives_the_local_engines_records_and_resumes(tmp_path, data, local_ray, capsys):
    images = tmp_path / "images"
    images.mkdir()
    for src in sorted((data / "faces68" / "test" / "ytf").glob("*.jpg"))[:24]:
        shutil.copy(src, images / src.name)
    (images / "broken.jpg").write_bytes(b"not a jpeg")
    assert main(["detect", str(images), "--out", str(tmp_path / "local.jsonl"), "--quiet", "--threads", "1"]) == 3
    local = _records(tmp_path / "local.jsonl")
    assert len(local) == 24
    # a job stopped after 10 records, resumed on Ray: the rest is added, nothing twice
    partial = tmp_path / "ray.jsonl"
    partial.write_text("".join(json.dumps(r) + "\n" for r in local[:10]))
    code = main(["detect", str(images), "--engine", "ray", "--out", str(partial), "--resume", "--quiet",
                 "--threads", "1", "--batch", "4"])
    assert code == 3 and "broken.jpg: cannot decode image" in capsys.readouterr().err
    assert _records(partial) == local
    # Parquet: one row per image, faces as JSON text
    assert main(["detect", str(images), "--engine", "ray", "--out", str(tmp_path / "r.parquet"), "--quiet",
                 "--threads", "1", "--batch", "4"]) == 3
    rows = pq.read_table(tmp_path / "r.parquet").to_pylist()
    assert sorted(({**r, "faces": json.loads(r["faces"])} for r in rows), key=lambda r: r["image"]) == local
    # resumed again: nothing left to do, nothing added
    assert main(["detect", str(images), "--engine", "ray", "--out", str(tmp_path / "r.parquet"), "--resume",
                 "--quiet"]) == 3
    assert len(pq.read_table(tmp_path / "r.parquet")) == 24
    # align: the local engine's crops (the model batched, so a grey level or two may differ), listed for --resume
    assert main(["align", str(images), "--out", str(tmp_path / "local_crops"), "--quiet", "--threads", "1"]) == 3
    assert main(["align", str(images), "--engine", "ray", "--out", str(tmp_path / "ray_crops"), "--quiet",
                 "--threads", "1", "--batch", "4"]) == 3
    local_crops = sorted(p.name for p in (tmp_path / "local_crops").glob("*.png"))
    assert local_crops == sorted(p.name for p in (tmp_path / "ray_crops").glob("*.png")) and len(local_crops) >= 24
    for name in local_crops:
        a, b = (cv2.imread(str(tmp_path / d / name)).astype(int) for d in ("local_crops", "ray_crops"))
        assert np.abs(a - b).mean() < 0.5
    assert len((tmp_path / "ray_crops" / "aligned.jsonl").read_text().splitlines()) == 24


def test_ray_engine_refuses_what_it_cannot_do(tmp_path, data, capsys):
    assert main(["detect", str(data / "samples"), "--engine", "ray"]) == 2
    assert "--engine ray writes its results to --out" in capsys.readouterr().err
    assert main(["detect", str(data / "video"), "--engine", "ray", "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "videos are tracked by the local engine" in capsys.readouterr().err
