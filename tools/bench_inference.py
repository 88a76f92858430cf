"""Inference cost of configs' models before training them: parameters, MACs and ONNX Runtime ms per crop.

Each model is built with random weights, exported to ONNX like ``facemark export`` does, and timed on 1 thread,
batch 1 (the network only: no crop warp, no decoding). ``--int8`` also times a static int8 (QDQ) quantisation
calibrated on random inputs, which is enough for timing, not for accuracy. On the 2-core AVX2 machine this
project trains on (no AVX-512 VNNI), int8 ran slower than fp32 for every model tried, and fp32 reached about
16 GMAC/s on 1 thread, so a 5 ms budget per face is about 70 M MACs.

    python tools/bench_inference.py configs/pfld68_fast.yaml configs/experiments/hourglass2x32_128.yaml [--int8]
"""
from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from facemark.training.config import load_config
from facemark.training.export import count_inference_cost
from facemark.training.models import build_model


def ms_per_run(path: Path, size: int, repeats: int = 50) -> float:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: np.random.default_rng(0).uniform(-1, 1, (1, 3, size, size))
            .astype(np.float32)}
    for _ in range(10):
        session.run(None, feed)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1000)


def quantize(src: Path, dst: Path, size: int) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Random(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(0)
            self.feeds = iter([{"image": rng.uniform(-1, 1, (1, 3, size, size)).astype(np.float32)}
                               for _ in range(8)])

        def get_next(self) -> dict | None:
            return next(self.feeds, None)

    pre = dst.with_name("pre.onnx")
    quant_pre_process(str(src), str(pre))
    quantize_static(str(pre), str(dst), Random(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("configs", nargs="+")
    ap.add_argument("--int8", action="store_true", help="also time a static int8 (QDQ) model")
    a = ap.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    print("| config | input | params | MACs | ms fp32 (1 thread) |" + (" ms int8 QDQ |" if a.int8 else ""))
    print("|---|---|---|---|---|" + ("---|" if a.int8 else ""))
    with tempfile.TemporaryDirectory() as tmp:
        for config in a.configs:
            cfg = load_config(config)
            model = build_model(cfg.spec, cfg.model).eval()
            params, macs = count_inference_cost(model, cfg.input_size)
            fp32 = Path(tmp) / "model.onnx"
            torch.onnx.export(model, (torch.zeros(1, 3, cfg.input_size, cfg.input_size),), str(fp32),
                              input_names=["image"], opset_version=17, dynamo=False)
            line = (f"| {cfg.name} | {cfg.input_size} | {params / 1e6:.2f}M | {macs / 1e6:.0f}M | "
                    f"{ms_per_run(fp32, cfg.input_size):.2f} |")
            if a.int8:
                int8 = Path(tmp) / "int8.onnx"
                quantize(fp32, int8, cfg.input_size)
                line += f" {ms_per_run(int8, cfg.input_size):.2f} |"
            print(line, flush=True)


if __name__ == "__main__":
    main()
