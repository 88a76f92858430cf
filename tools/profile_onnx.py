"""Where a shipped landmark model's network time goes (issue 14): ONNX Runtime's own profile on 1 thread,
batch 1, summed by operator type, and the time of the same file with its batch size fixed to 1 (what the
graph's shape arithmetic for a dynamic batch costs).

    python tools/profile_onnx.py hrnet68_w16.int8 hrnet68_w16 pfld68_fast.int8

Names are files under src/facemark/weights (without .onnx) or paths. Run it alone on the machine: the
shares are of kernel time, the milliseconds are the median of 5 rounds of 300 runs without profiling.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "facemark" / "weights"


def session(model: bytes | str, profile: str | None = None) -> ort.InferenceSession:
    """A 1-thread CPU session of a serialised model or a file, profiled into ``profile``* if given."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
    if profile:
        opts.enable_profiling, opts.profile_file_prefix = True, profile
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def ms_per_run(s: ort.InferenceSession, feed: dict, runs: int = 300) -> float:
    for _ in range(50):
        s.run(None, feed)
    rounds = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(runs):
            s.run(None, feed)
        rounds.append((time.perf_counter() - t) / runs * 1000)
    return float(np.median(rounds))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--top", type=int, default=6, help="operator types listed")
    a = ap.parse_args()
    for name in a.models:
        path = Path(name) if name.endswith(".onnx") else WEIGHTS / f"{name}.onnx"
        model = onnx.load(str(path))
        dims = model.graph.input[0].type.tensor_type.shape.dim
        feed = {model.graph.input[0].name: np.random.default_rng(0).uniform(
            -1, 1, [1] + [d.dim_value for d in dims[1:]]).astype(np.float32)}
        dynamic = ms_per_run(session(model.SerializeToString()), feed)
        dims[0].dim_value = 1
        fixed = ms_per_run(session(model.SerializeToString()), feed)
        with tempfile.TemporaryDirectory() as tmp:
            s = session(str(path), os.path.join(tmp, "p"))
            for _ in range(200):
                s.run(None, feed)
            events = json.loads(Path(s.end_profiling()).read_text())
        kernel = Counter()
        for e in events:
            if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
                kernel[e["args"]["op_name"]] += e["dur"]
        total = sum(kernel.values())
        shares = ", ".join(f"{op} {100 * t / total:.0f}%" for op, t in kernel.most_common(a.top))
        print(f"{path.name}: {dynamic:.2f} ms (batch fixed to 1: {fixed:.2f}); {len(model.graph.node)} nodes; "
              f"kernel time: {shares}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
