"""Benchmark landmark models on faces68/test/ytf: accuracy, size, speed, training cost. Prints a markdown table.

Accuracy follows the standard protocol (boxes from the ground-truth landmarks, NME by inter-ocular distance);
speed is ONNX Runtime on 1 thread, batch 1, median of repeated runs after warm-up (the crop warp and the
decoding are included, detection is not). Every model runs in fp32 here, the reference; ``facemark benchmark``
measures the int8 variants and other tools beside them. Models are shipped names or exported ``.onnx`` files (with their
``.json`` card, e.g. ``runs/NAME/export/NAME.onnx``). ``--decoders`` adds a row per heatmap decoder (the
decoder ablation); ``--detector`` also runs the haar -> model (-> refine) pipeline on the test images.

    python tools/benchmark.py [--models pfld68 runs/x/export/x.onnx ...] [--decoders argmax soft_argmax]
                              [--detector] [--json out.json] [--markdown out.md] [--plot ced.png]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from facemark.core.crop import crop_from_landmarks
from facemark.evaluation.metrics import nme, summary
from facemark.evaluation.plots import plot_ced
from facemark.evaluation.protocols import predict_with_landmark_boxes
from facemark.inference.landmarker import Landmarker
from facemark.inference.predictor import predict
from facemark.inference.runtime import OnnxLandmarkModel, available_models, load_card
from facemark.io.datasets import read_pts_folder

from _data import DATA


def ms_per_face(model: OnnxLandmarkModel, samples, repeats: int = 200) -> float:
    images = [s.load_image() for s in samples[:20]]
    crops = [crop_from_landmarks(s.landmarks, model.input_size) for s in samples[:20]]
    times = []
    for k in range(repeats + 20):
        i = k % len(images)
        t = time.perf_counter()
        predict(model, images[i:i + 1], crops[i:i + 1])
        if k >= 20:
            times.append(time.perf_counter() - t)
    return float(np.median(times) * 1000)


def detector_pipeline(model: str, samples, refine: bool) -> dict:
    """NME of detector -> mapped box -> model (-> refine) on faces the detector finds."""
    lm = Landmarker(model, "haar", refine=refine, threads=1, precision="fp32")
    errs, missed = [], 0
    for s in samples:
        faces = lm.detect(s.load_image())
        c = s.landmarks.mean(0)
        near = [f for f in faces if np.linalg.norm(f.landmarks.mean(0) - c) < np.ptp(s.landmarks[:, 0]) / 2]
        if not near:
            missed += 1
            continue
        errs.append(nme(near[0].landmarks, s.landmarks, "iod")[0])
    return {"detected": len(errs), "missed": missed, **summary(np.array(errs), "iod")}


def measure(model: str, samples, gt: np.ndarray, decoder: str | None, detector: bool) -> tuple[dict, np.ndarray]:
    """One table row, and the per-face NME it summarises (for the CED plot)."""
    net = OnnxLandmarkModel(model, threads=1, decoder=decoder, precision="fp32")
    flipped = OnnxLandmarkModel(model, threads=1, flip=True, decoder=decoder, precision="fp32")
    card = net.card.meta
    errors = nme(predict_with_landmark_boxes(net, samples), gt, "iod")
    row = {
        "model": card["name"], "decoder": decoder or card["codec"].get("decoder"),
        **summary(errors, "iod"),
        "flip": summary(nme(predict_with_landmark_boxes(flipped, samples), gt, "iod"), "iod"),
        "params": card.get("parameters"), "macs": card.get("macs"),
        "ms_per_face_1thread": round(ms_per_face(net, samples), 3),
        "train_minutes": card.get("train_minutes"), "epochs": card.get("epochs_run"),
        "trained_on": card.get("trained_on", ["cpu"]),
        "command": card.get("training_command"),
    }
    if detector:
        row["haar"] = detector_pipeline(model, samples, refine=False)
        row["haar_refine"] = detector_pipeline(model, samples, refine=True)
    return row, errors


def label(row: dict) -> str:
    return row["model"] + (f" ({row['decoder']})" if row["decoder"] else "")


def markdown(rows: list[dict], n_faces: int) -> str:
    head = ("| model | NME (IOD) | FR@10% | AUC@10% | NME with --flip | params | MACs | ms/face (1 thread) | "
            "training |")
    detector = all("haar" in r for r in rows)
    if detector:
        head += " haar boxes: NME / +refine (found) |"
    lines = [head, "|" + "---|" * head.count(" |")]
    for r in rows:
        train = f"{r['train_minutes']:.0f} min, {r['epochs']} epochs" if r["train_minutes"] else "?"
        gpus = [d.split(":", 1)[1].replace("NVIDIA ", "") for d in r.get("trained_on", []) if d.startswith("cuda")]
        train += f" on {', '.join(gpus)}" if gpus else ""
        line = (f"| {label(r)} | {r['nme'] * 100:.2f}% | {r['fr'] * 100:.2f}% | {r['auc']:.4f} | "
                f"{r['flip']['nme'] * 100:.2f}% | {r['params']:,} | {r['macs'] / 1e6:.1f}M | "
                f"{r['ms_per_face_1thread']:.2f} | {train} |")
        if detector:
            h, hr = r["haar"], r["haar_refine"]
            line += f" {h['nme'] * 100:.2f}% / {hr['nme'] * 100:.2f}% ({h['detected']}/{n_faces}) |"
        lines.append(line)
    commands = {r["model"]: r["command"] for r in rows if r["command"]}
    lines += ["", "Training commands:", ""] + [f"- {m}: `{c}`" for m, c in commands.items()]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=available_models(), help="shipped names or .onnx paths")
    ap.add_argument("--decoders", nargs="+", choices=("argmax", "quarter", "soft_argmax"),
                    help="for heatmap models: one row per decoder")
    ap.add_argument("--detector", action="store_true", help="also measure the haar detector pipeline")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--markdown", type=Path)
    ap.add_argument("--plot", type=Path, help="write the CED curves of all rows to this PNG")
    a = ap.parse_args()
    samples = read_pts_folder(a.data / "faces68/test/ytf")
    gt = np.array([s.landmarks for s in samples])
    rows, curves = [], {}
    for model in a.models:
        heatmap = load_card(model)[0].codec["name"] == "heatmap"
        for decoder in (a.decoders if heatmap and a.decoders else [None]):
            row, errors = measure(model, samples, gt, decoder, a.detector)
            rows.append(row)
            curves[label(row)] = errors
            print(json.dumps(row), file=sys.stderr, flush=True)
    table = markdown(rows, len(samples))
    print(table)
    if a.markdown:
        a.markdown.write_text(table)
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2) + "\n")
    if a.plot:
        plot_ced(curves, a.plot, title="faces68/test/ytf, boxes from ground truth", norm="iod")
    return 0


if __name__ == "__main__":
    sys.exit(main())
