"""``facemark benchmark``: speed and accuracy of every shipped model and runtime variant, and of other tools
(``other_tools.py``), on the same images and the same boxes, in one run on one machine.

Per row: ``ms_per_face``, the landmark step for one face of a 1920x1080 photo (crop warp, network, decoding,
5 points; detection excluded) on 1 thread, batch 1, timed after a warm-up in rounds interleaved across all
rows (``time_rows``);
``ms_per_face_pose``, the same with the face's head pose read (the shape-model fit runs when it is read);
``ms_per_face_refine``, the same with the detector-box framing and the second pass the default pipeline runs;
``faces_per_s``, 32 faces a call on 2 threads; ``nme``, ``fr``, ``auc`` with boxes from the ground-truth
landmarks (inter-ocular NME); ``nme_shared``, the NME on the points MediaPipe's mesh shares with iBUG 68; and
each tool with its own detector on the same images (``detector``: faces found, NME of the matched ones, with
and without the refine pass).

``zoo_row`` / ``zoo_markdown``: the model-zoo table of docs/results.md instead, one row per model (shipped or an
exported ``.onnx`` with its card) and heatmap decoder: NME, FR, AUC, NME with the mirrored crop averaged in
(``--flip``), parameters, MACs, fp32 milliseconds per face on 1 thread and what training cost.
"""
from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..core.crop import crop_from_box, landmark_box
from ..inference.landmarker import Landmarker
from ..inference.predictor import predict
from ..inference.runtime import OnnxLandmarkModel, cpu_has_int8_dot
from ..io.datasets import FaceSample
from .metrics import normaliser, summary
from .other_tools import MESH_TO_IBUG, OTHERS, nearest_face
from .protocols import predict_with_landmark_boxes

SHARED = tuple(sorted(MESH_TO_IBUG))


Timers = dict[str, Callable[[], object]]


def time_rows(rows: list[tuple[dict, Timers]], repeats: int, rounds: int = 5, warmup: int = 20) -> None:
    """Fill in every row's timings, interleaved: each of ``rounds`` rounds runs every row's every timer
    ``repeats / rounds`` times (``batch32`` a tenth as often), and each measurement keeps its lowest round
    median, in milliseconds (``batch32`` becomes ``faces_per_s``). Slowdowns of the machine that last seconds
    to minutes (single medians of 300 calls moved by up to 2.5x between runs here) then fall on every tool
    alike instead of on whichever was being timed."""
    best: dict[tuple[int, str], float] = {}
    for _ in range(warmup):
        for _, timers in rows:
            for fn in timers.values():
                fn()
    for _ in range(rounds):
        for k, (_, timers) in enumerate(rows):
            for key, fn in timers.items():
                n = max(1, (repeats // 10 if key == "batch32" else repeats) // rounds)
                times = []
                for _ in range(n):
                    t = time.perf_counter()
                    fn()
                    times.append(time.perf_counter() - t)
                best[k, key] = min(best.get((k, key), np.inf), float(np.median(times)) * 1000)
    for k, (row, timers) in enumerate(rows):
        for key in timers:
            if key == "batch32":
                row["faces_per_s"] = 32 / (best[k, key] / 1000)
            else:
                row[key] = best[k, key]


def errors_on(pred: list[np.ndarray | None], gt: np.ndarray, points: tuple[int, ...]) -> np.ndarray:
    """Per-face NME (inter-ocular, from the full ground truth) over ``points``; a face without an answer
    counts as a failure (NME 1)."""
    d = normaliser(gt, "iod")
    return np.array([1.0 if p is None else np.linalg.norm(p[:, :2] - g[list(points)], axis=1).mean() / n
                     for p, g, n in zip(pred, gt, d)])


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").is_file() \
        else platform.processor()
    return f"{cpu}; int8 dot-product instructions: {'yes' if cpu_has_int8_dot() else 'no'}"


def _detector_pass(find: Callable[[np.ndarray], list[np.ndarray]], samples: list[FaceSample], gt: np.ndarray,
                   points: tuple[int, ...]) -> dict:
    found = [nearest_face(find(s.load_image()), g, points) for s, g in zip(samples, gt)]
    hit = [k for k, f in enumerate(found) if f is not None]
    e = errors_on([found[k] for k in hit], gt[hit], points)
    return {"found": len(hit), "of": len(samples), "nme": float(e.mean()) if len(e) else None}


def facemark_row(model: str, precision: str, samples: list[FaceSample], gt: np.ndarray, image: np.ndarray,
                 image_box: np.ndarray, detector: str) -> tuple[dict, np.ndarray, Timers]:
    """One facemark model's row (accuracy now; the timings ``time_rows`` fills in), its per-face errors and
    its timers."""
    one = Landmarker(model, detector, refine=False, threads=1, precision=precision)
    two = Landmarker(model, detector, refine=True, threads=1, precision=precision)
    pred = predict_with_landmark_boxes(one.model, samples)
    errors = errors_on(list(pred), gt, tuple(range(68)))
    det_box = one.detector.detect(image)[0][:1]
    batch = OnnxLandmarkModel(model, threads=2, precision=precision)
    crops = [crop_from_box(image_box, batch.input_size)] * 32
    row = {
        "tool": "facemark", "model": one.model.card.name, "variant": one.model.precision,
        "ms_per_face": None, "ms_per_face_pose": None, "ms_per_face_refine": None, "faces_per_s": None,
        **summary(errors, "iod"),
        "nme_shared": float(errors_on(list(pred[:, list(SHARED)]), gt, SHARED).mean()),
        "detector": detector,
        "own_detector": _detector_pass(lambda im: [f.landmarks for f in one.detect(im)], samples, gt, tuple(range(68))),
        "own_detector_refine": _detector_pass(lambda im: [f.landmarks for f in two.detect(im)], samples, gt,
                                              tuple(range(68))),
    }
    timers = {"ms_per_face": lambda: one.from_boxes(image, [image_box]),
              "ms_per_face_pose": lambda: one.from_boxes(image, [image_box])[0].pose,
              "batch32": lambda: predict(batch, [image] * 32, crops)}
    if len(det_box):
        timers["ms_per_face_refine"] = lambda: two.from_boxes(image, det_box, detector)
    return row, errors, timers


def other_row(name: str, samples: list[FaceSample], gt: np.ndarray, image: np.ndarray,
              image_box: np.ndarray) -> tuple[dict, np.ndarray, Timers]:
    """Another tool's row, errors and timers, as ``facemark_row``."""
    tool = OTHERS[name]()
    pred = [tool.from_box(s.load_image(), landmark_box(g)) for s, g in zip(samples, gt)]
    errors = errors_on(pred, gt, tool.points)
    shared = [None if p is None else p[[tool.points.index(i) for i in SHARED]] for p in pred]
    row = {
        "tool": tool.tool, "model": tool.model, "variant": "",
        "ms_per_face": None, "ms_per_face_pose": None, "ms_per_face_refine": None, "faces_per_s": None,
        **summary(errors, "iod"), "points": len(tool.points),
        "nme_shared": float(errors_on(shared, gt, SHARED).mean()),
        "detector": f"{name}'s own",
        "own_detector": _detector_pass(tool.detect, samples, gt, tool.points),
        "own_detector_refine": None,
    }
    return row, errors, {"ms_per_face": lambda: tool.from_box(image, image_box),
                         "batch32": lambda: [tool.from_box(image, image_box) for _ in range(32)]}


def markdown(rows: list[dict], data: str, command: str) -> str:
    """The rows as the table of docs/benchmarks.md."""
    head = ("| tool | model | runtime | ms/face (1 thread) | + head pose | + refine | faces/s (2 threads, batch 32) | NME | FR@10% | "
            f"AUC@10% | NME on the {len(SHARED)} shared points | own detector: found, NME | + refine |")
    lines = [head, "|" + "---|" * head.count(" |")]

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v * 100:.2f}%"

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    def det(d: dict | None) -> str:
        return "-" if d is None else f"{d['found']}/{d['of']}, {pct(d['nme'])}"

    for r in rows:
        pts = "" if r.get("points", 68) == 68 else f" ({r['points']} points)"
        lines.append(f"| {r['tool']} | {r['model']} | {r['variant'] or '-'} | {ms(r['ms_per_face'])} | "
                     f"{ms(r['ms_per_face_pose'])} | {ms(r['ms_per_face_refine'])} | {r['faces_per_s']:.0f} | {pct(r['nme'])}{pts} | "
                     f"{pct(r['fr'])} | {r['auc']:.4f} | {pct(r['nme_shared'])} | {det(r['own_detector'])} | "
                     f"{det(r['own_detector_refine'])} |")
    return f"Data: {data}. Machine: {machine()}.\n\n" + "\n".join(lines) + f"\n\nCommand: `{command}`\n"


def zoo_row(model: str, decoder: str | None, samples: list[FaceSample], gt: np.ndarray, image: np.ndarray,
            image_box: np.ndarray) -> tuple[dict, np.ndarray, Timers]:
    """One model's (and decoder's) zoo row in fp32, its per-face errors and its timer (``time_rows``)."""
    net = OnnxLandmarkModel(model, threads=1, decoder=decoder, precision="fp32")
    flipped = OnnxLandmarkModel(model, threads=1, flip=True, decoder=decoder, precision="fp32")
    card = net.card.meta
    errors = errors_on(list(predict_with_landmark_boxes(net, samples)), gt, tuple(range(68)))
    crop = [crop_from_box(image_box, net.input_size)]
    row = {"model": card["name"], "decoder": decoder or card["codec"].get("decoder"), "ms_per_face": None,
           **summary(errors, "iod"),
           "flip": summary(errors_on(list(predict_with_landmark_boxes(flipped, samples)), gt, tuple(range(68))), "iod"),
           "params": card.get("parameters"), "macs": card.get("macs"),
           **training_cost(card), "command": card.get("training_command")}
    return row, errors, {"ms_per_face": lambda: predict(net, [image], crop)}


def training_cost(card: dict) -> dict:
    """Minutes, epochs and devices of a model's training, summed over the runs it was trained on from (a card's
    ``fine_tuned_from`` chain), and how many runs that was."""
    minutes, epochs, devices, stages = 0.0, 0, [], 0
    while card:
        minutes += card.get("train_minutes") or 0.0
        epochs += card.get("epochs_run") or 0
        devices += [d for d in card.get("trained_on", ["cpu"]) if d not in devices]
        stages += 1
        card = card.get("fine_tuned_from")
    return {"train_minutes": round(minutes, 1) or None, "epochs": epochs, "trained_on": devices, "stages": stages}


def zoo_label(row: dict) -> str:
    return row["model"] + (f" ({row['decoder']})" if row["decoder"] else "")


def zoo_markdown(rows: list[dict], data: str, command: str) -> str:
    """The zoo rows as the table of docs/results.md, with each model's training command."""
    head = "| model | NME (IOD) | FR@10% | AUC@10% | NME with --flip | params | MACs | ms/face (1 thread) | training |"
    lines = [head, "|" + "---|" * head.count(" |")]
    for r in rows:
        train = (f"{r['train_minutes']:.0f} min" + (f", {r['epochs']} epochs" if r["epochs"] else ", one pass")
                 if r["train_minutes"] else "?")
        macs = f"{r['macs'] / 1e6:.1f}M" if r["macs"] else "-"      # a classical model has no network
        train += f" in {r['stages']} runs" if r["stages"] > 1 else ""
        gpus = [d.split(":", 1)[1].replace("NVIDIA ", "") for d in r["trained_on"] if d.startswith("cuda")]
        train += f" ({'partly ' if len(gpus) < len(r['trained_on']) else ''}on {', '.join(gpus)})" if gpus else ""
        lines.append(f"| {zoo_label(r)} | {r['nme'] * 100:.2f}% | {r['fr'] * 100:.2f}% | {r['auc']:.4f} | "
                     f"{r['flip']['nme'] * 100:.2f}% | {r['params']:,} | {macs} | "
                     f"{r['ms_per_face']:.2f} | {train} |")
    commands = {r["model"]: r["command"] for r in rows if r["command"]}
    lines += ["", "Training commands:", ""] + [f"- {m}: `{c}`" for m, c in commands.items()]
    return f"Data: {data}. Machine: {machine()}.\n\n" + "\n".join(lines) + f"\n\nCommand: `{command}`\n"
