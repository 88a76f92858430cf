"""Train several configs at once on one CUDA GPU, from a packed data root, and bring the results back small.

For a lent GPU machine (one GPU, many cores, minutes of time, a size limit on what travels each way):
1. the packed root (tools/pack_crops.py) is pre-cropped once into a cache the runs share;
2. every config trains in its own process (``facemark train --device cuda --workers W``), all at once,
   each stopped at ``--limit`` seconds (its log says how far it got);
3. each run's last state (all of it when it is small, so a run the limit stopped resumes elsewhere; else the
   weights without optimiser state, as float16 where they exceed 16 MB, which the export reads back into
   float32), log and config are tarred and split into 15 MiB parts.

    python3 tools/gpu_runs.py CONFIG... --data-root .pack --out $OUT [--limit 430] [--workers 2]
    cat OUT/results.tar.part* | tar -x -C runs/gpu    # then: facemark export runs/gpu/NAME/last.pt ...
"""
from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import torch

from facemark.training.config import load_config
from facemark.training.data import build_cropset, load_datasets
from facemark.training.engine import load_checkpoint

PART = 15 * 2**20
BIG = 16 * 2**20


def warm_cache(configs: list[Path], root: Path, cache: Path) -> None:
    """Pre-crop each distinct training set once, so the parallel runs only read the cache."""
    done = set()
    for c in configs:
        cfg = load_config(c)
        d, n_points = cfg.data, cfg.spec.n_points
        key = (repr(d.train), d.precrop_size, d.precrop_margin, n_points)
        if key not in done:
            done.add(key)
            build_cropset(load_datasets(root, d.train, n_points), d.precrop_size, d.precrop_margin, cache,
                          os.cpu_count() or 2)


def slim(run: Path) -> bytes | None:
    """The run's last state: all of it (``--resume`` continues it) when small, else its weights, epoch and config
    (what ``facemark export`` reads)."""
    if not (run / "last.pt").is_file():
        return None
    st = load_checkpoint(run / "last.pt")
    model = st["modules"]["model"]
    if sum(v.numel() * v.element_size() for v in model.values()) * 3 <= BIG:   # weights + AdamW's two moments
        return (run / "last.pt").read_bytes()                                   # small: the full state, resumable
    if sum(v.numel() * v.element_size() for v in model.values()) > BIG:
        model = {k: v.half() if v.is_floating_point() else v for k, v in model.items()}
    buf = io.BytesIO()
    torch.save({"kind": st["kind"], "modules": {"model": model}, "epoch": st["epoch"], "done": st["done"],
                "config": st["config"]}, buf)
    return buf.getvalue()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("configs", nargs="+", type=Path)
    ap.add_argument("--data-root", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True, help="where the result parts are written")
    ap.add_argument("--runs", type=Path, default=Path("/tmp/facemark-runs"))
    ap.add_argument("--limit", type=float, default=430.0, help="seconds each run may train")
    ap.add_argument("--workers", type=int, default=2, help="batch-preparing threads per run")
    ap.add_argument("--device", default="cuda", help="the device every run trains on (cpu for a dry run)")
    a = ap.parse_args()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    print(f"torch {torch.__version__}, {gpu}, {os.cpu_count()} cores", flush=True)
    cache = a.runs / "cache"
    t0 = time.time()
    warm_cache(a.configs, a.data_root, cache)
    print(f"cache ready in {time.time() - t0:.0f} s", flush=True)
    env = dict(os.environ, FACEMARK_CACHE=str(cache), PYTHONUNBUFFERED="1")
    procs = {}
    for c in a.configs:
        name = load_config(c).name
        (a.runs / name).mkdir(parents=True, exist_ok=True)
        log = (a.runs / name / "stdout.log").open("w")
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "facemark", "train", str(c), "--out", str(a.runs / name), "--data-root",
             str(a.data_root), "--device", a.device, "--workers", str(a.workers)], stdout=log, stderr=log, env=env)
    deadline = time.time() + a.limit
    for name, p in procs.items():
        try:
            p.wait(timeout=max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w") as tar:
        for name, p in procs.items():
            run = a.runs / name
            records = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()] \
                if (run / "log.jsonl").is_file() else []
            last = records[-1] if records else {}
            print(f"{name}: exit {p.returncode}, {len(records)} epochs, last val NME "
                  f"{last.get('val', {}).get('nme', float('nan')) * 100:.2f}%, "
                  f"{sum(r['train_s'] + r['val_s'] for r in records) / 60:.1f} min", flush=True)
            files = {f: (run / f).read_bytes() for f in ("log.jsonl", "config.yaml", "stdout.log")
                     if (run / f).is_file()}
            ckpt = slim(run)
            if ckpt is not None:
                files["last.pt"] = ckpt
            for f, data in files.items():
                info = tarfile.TarInfo(f"{name}/{f}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    data = tar_bytes.getvalue()
    a.out.mkdir(parents=True, exist_ok=True)
    for k in range(0, len(data), PART):
        (a.out / f"results.tar.part{k // PART:02d}").write_bytes(data[k:k + PART])
    print(f"results: {len(data) / 2**20:.1f} MiB in {(len(data) + PART - 1) // PART} parts", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
