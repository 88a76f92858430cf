"""Training throughput of a model under fp32 / bf16 autocast and NCHW / channels_last (images per second).

On the 2-core AVX2 machine this project trains on, bf16 autocast was ~10x slower than fp32 (no AVX-512 BF16 /
AMX), and channels_last helped fp32 a little; hence `bf16: false` in the configs.

    python tools/bench_train_step.py [--width 1.0] [--batch 64] [--steps 5]
"""
from __future__ import annotations

import argparse
import time

import torch

from facemark.losses import WingLoss
from facemark.models import MODELS


def images_per_second(width: float, bf16: bool, channels_last: bool, batch: int, steps: int) -> float:
    torch.manual_seed(0)
    m = MODELS.build("pfld", width=width)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    m = m.to(memory_format=fmt)
    opt = torch.optim.AdamW(m.parameters(), 1e-3)
    x = torch.randn(batch, 3, 112, 112).contiguous(memory_format=fmt)
    y = torch.rand(batch, 68, 2)
    loss = WingLoss(scale=112)
    times = []
    for _ in range(steps + 1):
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = m.forward_train(x)
        total = loss(out["out"], y).mean() + 0 * out["angles"].float().sum()
        opt.zero_grad()
        total.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return batch / min(times[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"CPU capability: {torch.backends.cpu.get_cpu_capability()}")
    for bf16 in (False, True):
        for cl in (False, True):
            ips = images_per_second(a.width, bf16, cl, a.batch, a.steps)
            print(f"width {a.width} {'bf16' if bf16 else 'fp32'} {'channels_last' if cl else 'NCHW'}: {ips:.1f} img/s",
                  flush=True)


if __name__ == "__main__":
    main()
