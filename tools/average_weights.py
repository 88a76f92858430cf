"""Average detector checkpoints in weight space: WiSE-FT (Wortsman et al., 2022), the weights of a run and of its
fine-tune mixed, ``(1 - a) * first + a * second``, which tends to keep the first model's robustness while it
gains what the fine-tune learnt. The runs must share the network (a fine-tune ``init_from`` the other); the
BatchNorm statistics are mixed the same way. Writes a checkpoint ``facemark export`` reads (the second run's
config and epoch, no optimizer state; the card records ``mixed_from``).

    python tools/average_weights.py runs/detector_cv/last.pt runs/detector_v5_cv/last.pt --share 0.5 \
        --out runs/detector_wise_cv_50/last.pt
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from facemark.training.engine import load_checkpoint


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("first", type=Path, help="checkpoint of the run fine-tuned from")
    ap.add_argument("second", type=Path, help="checkpoint of its fine-tune")
    ap.add_argument("--share", type=float, required=True, help="the second's share a, in [0, 1]")
    ap.add_argument("--out", type=Path, required=True, help="the mixed checkpoint (.pt)")
    a = ap.parse_args()
    if not 0 <= a.share <= 1:
        print(f"--share {a.share}: must lie in [0, 1]", file=sys.stderr)
        return 2
    first, second = (load_checkpoint(p)["modules"]["model"] for p in (a.first, a.second))
    if first.keys() != second.keys() or any(v.shape != second[k].shape for k, v in first.items()):
        print(f"{a.second}: its network differs from {a.first}'s", file=sys.stderr)
        return 2
    mixed = {k: (v.double() * (1 - a.share) + second[k].double() * a.share).to(v.dtype)
             if v.is_floating_point() else second[k] for k, v in first.items()}
    last = load_checkpoint(a.second)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"kind": last["kind"], "modules": {"model": mixed}, "epoch": last["epoch"], "done": last["done"],
                "config": last["config"],
                "mixed_from": {"first": str(a.first), "second": str(a.second), "share": a.share}}, a.out)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
