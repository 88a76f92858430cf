"""Pack a config's training faces into a small, portable data root (for training on another machine).

Each training face is written as the pre-crop the trainer would cache (``data.precrop_size`` px, framed by
``data.precrop_margin``), WebP-encoded, with its landmarks in that crop as ``.pts``, under the same folder
names as in the source data root; the validation folder is copied as it is, so validation on the packed
root measures the real images. Training from the packed root (``facemark train CONFIG --data-root OUT``)
sees the same faces and framing as from the source, up to the WebP loss: the trainer's pre-crop of a packed
face is the identity warp. faces68/train packs into about 32 MB at quality 90, against 94 MB of source JPEGs.

    python tools/pack_crops.py configs/hrnet68.yaml --out .pack [--quality 90]
"""
from __future__ import annotations

import argparse
import shutil
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from facemark.training.config import load_config
from facemark.core.errors import FacemarkError
from facemark.io.images import atomic_write_bytes
from facemark.io.datasets import write_pts
from facemark.training.data import load_datasets, precrop


def _folder(spec) -> str:
    """The folder of a 300W-layout dataset spec; other formats are not packed."""
    if isinstance(spec, dict) and spec.get("format") == "pts":
        spec = spec["path"]
    if not isinstance(spec, str):
        raise FacemarkError(f"dataset spec {spec!r}: only 300W-layout folders can be packed")
    return spec


def pack(config: Path, out: Path, quality: int) -> None:
    cfg = load_config(config)
    root = Path(cfg.data_root)
    d = cfg.data
    val = _folder(d.val)
    if val in map(_folder, d.train):
        raise FacemarkError(f"{config}: the validation folder {val} is also a training folder; the packed root "
                            "would validate on pre-crops instead of the real images")
    for spec in d.train:
        folder = _folder(spec)
        samples = load_datasets(root, [folder], cfg.spec.n_points)
        seen: Counter = Counter()
        size = 0
        for s in samples:
            crop, pts = precrop(s, d.precrop_size, d.precrop_margin)
            stem = s.image.stem + (f"_{seen[s.image]}" if seen[s.image] else "")
            seen[s.image] += 1
            dest = out / folder / s.image.relative_to(root / folder).parent / stem
            ok, buf = cv2.imencode(".webp", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_WEBP_QUALITY, quality])
            if not ok:
                raise FacemarkError(f"{s.image}: WebP encoding failed")
            atomic_write_bytes(dest.with_suffix(".webp"), buf.tobytes())
            write_pts(dest.with_suffix(".pts"), pts.astype(np.float64))
            size += len(buf)
        print(f"{folder}: {len(samples)} faces, {size / 2**20:.1f} MiB of pre-crops", file=sys.stderr)
    if not (out / val).is_dir():
        shutil.copytree(root / val, out / val)
        print(f"{val}: copied as it is", file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("configs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True, help="the packed data root")
    ap.add_argument("--quality", type=int, default=90, help="WebP quality (default 90)")
    a = ap.parse_args()
    try:
        for c in a.configs:
            pack(c, a.out, a.quality)
    except FacemarkError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
