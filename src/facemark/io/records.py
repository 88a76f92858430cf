"""An append-only JSON-lines results file that a stopped job can resume: every record is one ``write`` of a
whole line, and a resumed job drops what a kill cut short before carrying on."""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..core.errors import DataError


class Records:
    """Open ``path`` for appending records. With ``resume``, the records already there are kept (a partial last
    line, and the frames of a video without its closing summary line, are dropped) and ``done`` names the
    files they cover; without it, an existing file is an error rather than overwritten.

    Records are ``{"image": ...}`` per image, ``{"image": ..., "frame": k}`` per video frame, and a video's
    frames end with its summary line ``{"video": ..., "frames": n}``.
    """

    def __init__(self, path: Path, resume: bool) -> None:
        self.path = path
        self.done: set[str] = set()
        if path.exists() and not resume:
            raise DataError(path, "already exists; pass --resume to continue that job, or choose another --out")
        kept: list[str] = []
        if resume and path.exists():
            lines = path.read_text(errors="replace").split("\n")
            records = []
            for line in lines[:-1]:                      # the text after the last newline is a cut-off record
                try:
                    records.append((line, json.loads(line)))
                except json.JSONDecodeError:
                    continue
            finished = {r["video"] for _, r in records if "video" in r}
            for line, r in records:
                name = r.get("image") or r.get("video")
                if "frame" in r and name not in finished:
                    continue                             # a video stopped midway is done again, whole
                kept.append(line)
                self.done.add(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(line + "\n" for line in kept))
        tmp.replace(path)
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND)

    def write(self, record: dict) -> None:
        """Append one record as one line, in one system call."""
        os.write(self.fd, (json.dumps(record) + "\n").encode())

    def close(self) -> None:
        os.close(self.fd)
