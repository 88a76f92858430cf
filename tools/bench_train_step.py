"""Training throughput of a config's model, codec and loss (images per second, augmentation excluded).

Runs the same forward / loss / backward / AdamW step as ``facemark train`` on synthetic faces (a jittered mean
shape encoded by the config's codec), so the schedule of a config can be planned before it is started. On the
2-core AVX2 machine this project trains on, bf16 autocast was ~10x slower than fp32 (no AVX-512 BF16 / AMX),
hence ``bf16: false`` in the configs; ``--bf16`` measures both.

    python tools/bench_train_step.py configs/pfld68_fast.yaml [configs/... ] [--batch 32] [--steps 3] [--bf16]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from facemark.core.codecs import build_codec
from facemark.core.crop import to_input
from facemark.training.config import load_config
from facemark.training.engine import TrainingForward
from facemark.training.tasks import build_task


def images_per_second(config: str, batch: int | None, steps: int, bf16: bool) -> tuple[float, int]:
    cfg = load_config(config)
    batch = batch or cfg.batch_size
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    spec = cfg.spec
    task = build_task(cfg, build_codec(cfg.codec, cfg.input_size, spec.n_points, cfg.dim), config)
    model = task.build_model().to(memory_format=torch.channels_last).train()
    s = cfg.input_size
    mean = rng.uniform(0.2 * s, 0.8 * s, (spec.n_points, cfg.dim))
    pts = (mean + rng.normal(0, 0.02 * s, (batch, spec.n_points, cfg.dim))).astype(np.float32)
    task.prepare(model, pts, fresh=True)
    crops = rng.integers(0, 256, (batch, s, s, 3), dtype=np.uint8)
    target = {k: torch.from_numpy(v) for k, v in task.targets(pts, {}, crops).items()}
    x = torch.from_numpy(to_input(crops)).contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), cfg.lr)
    forward = TrainingForward(model)
    times = []
    for _ in range(steps + 1):
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = task.outputs(forward, x)
        per_sample = task.loss(out, target)
        loss = (task.weights(out, target, torch.ones(batch)) * per_sample).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return batch / float(np.median(times[1:])), batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("configs", nargs="+")
    ap.add_argument("--batch", type=int, help="default: the config's batch size")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bf16", action="store_true", help="also measure bf16 autocast")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"CPU capability: {torch.backends.cpu.get_cpu_capability()}, {a.threads} threads")
    n_train = 4808
    for config in a.configs:
        for bf16 in (False, True) if a.bf16 else (False,):
            ips, batch = images_per_second(config, a.batch, a.steps, bf16)
            print(f"{config} {'bf16' if bf16 else 'fp32'} batch {batch}: {ips:.1f} img/s, "
                  f"~{n_train / ips / 60:.1f} min per epoch of {n_train} faces", flush=True)


if __name__ == "__main__":
    main()
