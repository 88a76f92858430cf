"""Whole datasets on Ray (extra ``[ray]``): ``facemark detect --engine ray``.

Ray Data spreads the images over an actor pool (``map_batches``): each actor loads one Landmarker once and turns
a batch of image paths into the records ``detect --json`` prints (``{"image", "width", "height", "faces"}``),
reading each file itself (local paths, or URIs of any file system pyarrow reads where the cluster can reach
them: ``s3://``, ``gs://``, ``hdfs://``), so the record names the image exactly as it was given. The driver
streams the finished rows into the results file as they come: JSON lines (``.jsonl``: the local engine's
``Records``, whole lines) or Parquet (``.parquet``: a folder of part files, each written whole; ``faces`` is a
JSON string column). ``--resume`` skips the images the results already hold. Nothing here imports ray until
this engine runs.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np

from ..core.align import align_face
from ..core.errors import DataError, FacemarkError, need
from ..io.records import Records

PART_ROWS = 500      # rows per Parquet part file


def read_bytes(name: str) -> bytes:
    """A local file's or a pyarrow-readable URI's bytes."""
    if "://" not in name:
        return Path(name).read_bytes()
    from pyarrow import fs

    filesystem, path = fs.FileSystem.from_uri(name)
    with filesystem.open_input_stream(path) as f:
        return f.read()


class DetectWorker:
    """One actor: a Landmarker loaded once (with the class's ``settings``), turning batches of image names into
    detect --json records, and with ``align_size`` each face's aligned crop (PNG bytes) too."""

    settings: dict = {}
    align_size: int | None = None

    def __init__(self) -> None:
        from ..inference.landmarker import Landmarker

        self.lm = Landmarker(**self.settings)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from ..io.images import decode_image

        names = [str(n) for n in batch["image"]]
        records, errors, images, where = [""] * len(names), [""] * len(names), [], []
        for k, name in enumerate(names):
            try:
                images.append(decode_image(read_bytes(name), name))
                where.append(k)
            except (OSError, DataError) as e:
                errors[k] = str(e) if isinstance(e, DataError) else f"{name}: {e.strerror or e}"
        crops = np.empty(len(names), dtype=object)
        crops[:] = [[] for _ in names]
        for k, image, faces in zip(where, images, self.lm.batch(images) if images else []):
            h, w = image.shape[:2]
            records[k] = json.dumps({"image": names[k], "width": w, "height": h,
                                     "faces": [f.to_dict() for f in faces]})
            if self.align_size:
                crops[k] = [_png(align_face(image, f.five, self.align_size)) for f in faces]
        return {"image": np.array(names, dtype=object), "record": np.array(records, dtype=object),
                "error": np.array(errors, dtype=object), "crops": crops}


class ParquetResults:
    """Results as a folder of Parquet part files (``image``, ``width``, ``height``, ``faces`` as JSON text), each
    written to a temporary name and renamed whole; ``done`` names the images the parts already hold."""

    def __init__(self, path: Path, resume: bool) -> None:
        pq = need("pyarrow.parquet", "ray", "Parquet results")
        self.pq, self.path, self.rows = pq, path, []
        if path.exists() and not resume:
            raise DataError(path, "already exists; pass --resume to continue that job, or choose another --out")
        path.mkdir(parents=True, exist_ok=True)
        self.done: set[str] = set()
        for tmp in path.glob(".*.tmp"):
            tmp.unlink()
        parts = sorted(path.glob("part-*.parquet"))
        for part in parts:
            try:
                self.done.update(pq.read_table(part, columns=["image"]).column("image").to_pylist())
            except Exception:   # pyarrow's errors for a part a kill cut short: it is done again
                part.unlink()
        self.next = max((int(p.stem.split("-")[1]) for p in path.glob("part-*.parquet")), default=-1) + 1

    def write(self, record: dict) -> None:
        self.rows.append({"image": record["image"], "width": record["width"], "height": record["height"],
                          "faces": json.dumps(record["faces"])})
        if len(self.rows) >= PART_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        import pyarrow as pa

        final = self.path / f"part-{self.next:05d}.parquet"
        tmp = self.path / f".{final.name}.tmp"
        self.pq.write_table(pa.Table.from_pylist(self.rows), tmp)
        tmp.replace(final)
        self.rows, self.next = [], self.next + 1

    def close(self) -> None:
        self.flush()


def results_file(path: Path, resume: bool):
    """The writer for ``--out``: Parquet for a ``.parquet`` name, else JSON lines."""
    if path.suffix.lower() == ".parquet":
        return ParquetResults(path, resume)
    return Records(path, resume)


def detect_on_ray(names: list[str], settings: dict, address: str | None = None, actors: int | None = None,
                  batch: int = 16, align_size: int | None = None) -> Iterator[tuple[str, dict | None, str, list]]:
    """(image, record or None, error, aligned crops as PNG bytes) for every image name, computed by Ray actors,
    in completion order (the crops only with ``align_size``)."""
    ray = need("ray", "ray", "--engine ray")
    need("ray.data", "ray", "--engine ray")
    import logging

    if not names:
        return
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False,
                 logging_level=logging.WARNING)
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    blocks = max(1, min(-(-len(names) // batch), 1000))
    pool = max(1, min(actors or cpus, blocks))
    ds = ray.data.from_items([{"image": n} for n in names], override_num_blocks=blocks)
    worker = type("DetectWorker", (DetectWorker,), {"settings": dict(settings), "align_size": align_size})
    out = ds.map_batches(worker, batch_size=batch,
                         compute=ray.data.ActorPoolStrategy(size=pool), num_cpus=1, batch_format="numpy")
    for row in out.iter_rows():
        yield (str(row["image"]), json.loads(row["record"]) if row["record"] else None, str(row["error"]),
               list(row["crops"]))


def image_names(inputs: list[Path]) -> dict[str, Path]:
    """The images a Ray job reads, each with the relative name its outputs take: files and folders (recursively)
    as the local engine lists them, and ``.txt`` files listing one path or URI per line."""
    from ..io.video import media_files

    names: dict[str, Path] = {}
    for p in inputs:
        if p.suffix.lower() == ".txt" and p.is_file():
            names.update({n: Path(n.rstrip("/").rsplit("/", 1)[-1])
                          for n in (line.strip() for line in p.read_text().splitlines()) if n})
        else:
            for src in media_files([p]):
                if src.kind != "image":
                    raise DataError(src.path, "videos are tracked by the local engine: leave out --engine ray")
                names[str(src.path)] = src.rel
    if not names:
        raise FacemarkError("no images to process")
    return names


def _png(rgb: np.ndarray) -> bytes:
    import cv2

    return cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()

