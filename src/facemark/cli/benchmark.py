"""``facemark benchmark``: every shipped model and runtime variant, and other tools, side by side."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..core.errors import FacemarkError, need
from ..io.files import default_data_root
from .base import command


def _benchmark_args(p: argparse.ArgumentParser) -> None:
    from ..inference.detectors import DEFAULT_DETECTOR, DETECTORS
    from ..inference.runtime import available_models

    p.add_argument("--models", nargs="+", default=available_models(),
                   help="facemark models: shipped names or exported .onnx files with their card (default: every shipped one)")
    p.add_argument("--zoo", action="store_true",
                   help="the model-zoo table instead (docs/results.md): per model in fp32, NME with --flip, "
                        "parameters, MACs, training cost; no other tools")
    p.add_argument("--decoders", nargs="+", choices=("argmax", "quarter", "soft_argmax", "decimal"),
                   help="with --zoo: one row per decoder for the models whose codec offers it (the decoder ablation)")
    p.add_argument("--precisions", nargs="+", choices=("fp32", "int8"), default=["fp32", "int8"],
                   help="runtime variants to measure, where a model has them (default both)")
    p.add_argument("--tools", nargs="*", choices=("dlib", "mediapipe"), default=["dlib", "mediapipe"],
                   help="other tools to run beside (skipped with a note when not installed)")
    p.add_argument("--data", type=Path, default=Path(default_data_root()) / "faces68" / "test" / "ytf",
                   help="300W-layout folder of annotated faces (default DATA/faces68/test/ytf; DATA: FACEMARK_DATA or "
                        "../shared/data)")
    p.add_argument("--detector", default=DEFAULT_DETECTOR, choices=DETECTORS.names(),
                   help=f"facemark's detector for the own-detector columns (default {DEFAULT_DETECTOR})")
    p.add_argument("--repeats", type=int, default=300, help="timed runs per measurement (default 300)")
    p.add_argument("--markdown", type=Path, help="write the table here")
    p.add_argument("--plot", type=Path, help="write the CED curves of every row to this PNG")


@command("benchmark", _benchmark_args)
def _benchmark(a: argparse.Namespace) -> int:
    """Speed and accuracy of facemark's models and of other tools on the same faces: JSON lines on stdout."""
    from ..evaluation import benchmark as bm
    from ..inference.detectors import build_detector, to_landmark_boxes
    from ..inference.runtime import load_card
    from ..io.datasets import read_pts_folder
    from ..io.images import read_image

    if a.plot:
        need("matplotlib", "plot", "--plot")      # before the work, not after it
    if a.repeats < 1:
        raise FacemarkError(f"--repeats {a.repeats}: at least 1")
    if a.decoders and not a.zoo:
        raise FacemarkError("--decoders: only with --zoo")
    samples = read_pts_folder(a.data, 68)
    gt = bm.np.stack([s.landmarks for s in samples])
    image = read_image(Path(__file__).parents[1] / "samples" / "breakingbad.jpg")   # 1920x1080: its first face is timed
    det = build_detector(a.detector)
    boxes, _ = det.detect(image)
    if not len(boxes):
        raise FacemarkError(f"detector {a.detector} finds no face in breakingbad.jpg to time on")
    image_box = to_landmark_boxes(boxes[:1], det.box_map)[0]
    command_line = "facemark benchmark " + " ".join(sys.argv[2:])
    if a.zoo:
        return _zoo(a, samples, gt, image, image_box, command_line)
    measured = []      # (row, errors, timers): accuracy first, then every row timed in interleaved rounds
    for model in a.models:
        has_int8 = "int8" in load_card(model)[0].meta
        for precision in a.precisions:
            if precision == "int8" and not has_int8:
                continue
            measured.append(bm.facemark_row(model, precision, samples, gt, image, image_box, a.detector))
    for tool in a.tools:
        try:
            measured.append(bm.other_row(tool, samples, gt, image, image_box))
        except FacemarkError as e:
            print(f"facemark: skipping {tool}: {e}", file=sys.stderr)
    bm.time_rows([(row, timers) for row, _, timers in measured], a.repeats)
    rows, curves = [row for row, _, _ in measured], {}
    for row, errors, _ in measured:
        label = " ".join(x for x in (row["tool"], row["model"], row["variant"]) if x)
        curves[label + ("" if row.get("points", 68) == 68 else f" ({row['points']} points)")] = errors
        print(json.dumps(row), flush=True)
    _write(a, bm.markdown(rows, str(a.data), command_line), curves)
    return 0


def _zoo(a: argparse.Namespace, samples, gt, image, image_box, command_line: str) -> int:
    """``--zoo``: one fp32 row per model and decoder (``evaluation.benchmark.zoo_row``), timed interleaved."""
    from ..core.codecs import decoders_of
    from ..evaluation import benchmark as bm
    from ..inference.runtime import load_card

    measured = []
    for model in a.models:
        offered = decoders_of(load_card(model)[0].codec["name"])
        for decoder in [d for d in a.decoders or () if d in offered] or [None]:
            measured.append(bm.zoo_row(model, decoder, samples, gt, image, image_box))
    bm.time_rows([(row, timers) for row, _, timers in measured], a.repeats)
    for row, _, _ in measured:
        print(json.dumps(row), flush=True)
    _write(a, bm.zoo_markdown([row for row, _, _ in measured], str(a.data), command_line),
           {bm.zoo_label(row): errors for row, errors, _ in measured})
    return 0


def _write(a: argparse.Namespace, table: str, curves: dict) -> None:
    """The markdown table and the CED plot, where asked for."""
    if a.markdown:
        from ..io.files import atomic_write_bytes

        atomic_write_bytes(a.markdown, table.encode())
    if a.plot:
        from ..evaluation.plots import plot_ced

        plot_ced(curves, a.plot, title=f"{a.data.name}, boxes from ground truth", norm="iod")
