"""Benchmark shipped models on faces68/test/ytf: accuracy, size, speed. Prints a markdown table and JSON.

Accuracy follows the standard protocol (boxes from the ground-truth landmarks, NME by inter-ocular distance);
speed is ONNX Runtime on 1 thread, batch 1, median of repeated runs after warm-up (the crop warp is included,
detection is not). Also reports the detector pipeline (haar + refine) on faces68/test/ytf images.

    python tools/benchmark.py [--models pfld68 ...] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from facemark.crop import crop_from_landmarks
from facemark.landmarker import Landmarker, predict_with_landmark_boxes
from facemark.metrics import nme, summary
from facemark.readers import read_pts_folder
from facemark.runtime import OnnxLandmarkModel, available_models

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def ms_per_face(model: OnnxLandmarkModel, samples, repeats: int = 200) -> float:
    images = [s.load_image() for s in samples[:20]]
    crops = [crop_from_landmarks(s.landmarks, model.input_size) for s in samples[:20]]
    times = []
    for k in range(repeats + 20):
        i = k % len(images)
        t = time.perf_counter()
        x = crops[i].warp(images[i])[None]
        crops[i].to_source(model(x)[0])
        if k >= 20:
            times.append(time.perf_counter() - t)
    return float(np.median(times) * 1000)


def detector_pipeline(name: str, samples, refine: bool) -> dict:
    """NME of detector -> mapped box -> model (-> refine) on faces the detector finds."""
    lm = Landmarker(name, "haar", refine=refine, threads=1)
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=available_models())
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    samples = read_pts_folder(a.data / "faces68/test/ytf")
    gt = np.array([s.landmarks for s in samples])
    rows = {}
    for name in a.models:
        model = OnnxLandmarkModel(name, threads=1)
        errors = nme(predict_with_landmark_boxes(model, samples), gt, "iod")
        flip_errors = nme(predict_with_landmark_boxes(OnnxLandmarkModel(name, threads=1, flip=True), samples), gt,
                          "iod")
        card = model.card.meta
        rows[name] = {
            **summary(errors, "iod"), "flip": summary(flip_errors, "iod"),
            "params": card.get("parameters"), "macs": card.get("macs"),
            "ms_per_face_1thread": round(ms_per_face(model, samples), 3),
            "train_minutes": card.get("train_minutes"),
            "haar": detector_pipeline(name, samples, refine=False),
            "haar_refine": detector_pipeline(name, samples, refine=True),
        }
        print(name, json.dumps(rows[name]), file=sys.stderr, flush=True)
    print("| model | NME (IOD) | FR@10% | AUC@10% | NME with --flip | params | MACs | ms/face (1 thread) | "
          "haar boxes: NME / +refine (found) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        h, hr = r["haar"], r["haar_refine"]
        print(f"| {name} | {r['nme'] * 100:.2f}% | {r['fr'] * 100:.2f}% | {r['auc']:.4f} | "
              f"{r['flip']['nme'] * 100:.2f}% | {r['params']:,} | {r['macs'] / 1e6:.1f}M | "
              f"{r['ms_per_face_1thread']:.2f} | {h['nme'] * 100:.2f}% / {hr['nme'] * 100:.2f}% "
              f"({h['detected']}/{len(samples)}) |")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
