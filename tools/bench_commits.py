"""The landmark step's cost in two versions of the code, on this machine: ``Landmarker.from_boxes`` for one face
of the 1920x1080 ``breakingbad.jpg`` on 1 thread (what ``facemark benchmark`` calls ms/face), in a checkout of
``COMMIT`` and in the working tree, each version in its own process, the two alternating for ``--rounds``
rounds so that slow spells of the machine fall on both; each keeps its lowest round median. ``--pose`` also
reads each face's head pose (benchmark's "+ head pose").

    python tools/bench_commits.py df28c63 [--models hrnet68_w16:int8 hrnet68:int8 pfld68_fast:fp32] [--rounds 3]

Both versions load their own weights files, so a commit that changed the weights compares models, not code.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "src" / "facemark" / "samples" / "breakingbad.jpg"

# run in the version under test (its src/ first on the path): median ms of from_boxes per model:precision
CHILD = """
import json, sys, time
import numpy as np
from facemark.inference.landmarker import Landmarker
from facemark.io.images import read_image
image, box, repeats = read_image(sys.argv[1]), np.array([json.loads(sys.argv[2])]), int(sys.argv[3])
pose = sys.argv[4] == "pose"
out = {}
for spec in sys.argv[5:]:
    model, precision = spec.split(":")
    lm = Landmarker(model, threads=1, precision=precision)
    step = (lambda: lm.from_boxes(image, box)[0].pose) if pose else (lambda: lm.from_boxes(image, box))
    for _ in range(30):
        step()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    out[spec] = float(np.median(times)) * 1000
print(json.dumps(out))
"""


def face_box() -> list[float]:
    """The landmark box of the first face the working tree's default pipeline finds in the sample."""
    from facemark.inference.landmarker import Landmarker
    from facemark.io.images import read_image

    pts = Landmarker(threads=1).detect(read_image(SAMPLE))[0].landmarks
    return [float(v) for v in (*pts.min(axis=0), *pts.max(axis=0))]


def run(src: Path, box: list[float], models: list[str], repeats: int, pose: bool) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(src))
    out = subprocess.run([sys.executable, "-c", CHILD, str(SAMPLE), json.dumps(box), str(repeats),
                          "pose" if pose else "-", *models],
                         env=env, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"bench_commits: the run in {src} failed: {out.stderr.strip().splitlines()[-1]}")
    return json.loads(out.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("commit", help="the version to compare the working tree with")
    ap.add_argument("--models", nargs="+", default=["hrnet68_w16:int8", "hrnet68:int8", "pfld68_fast:fp32"],
                    help="MODEL:PRECISION (fp32 or int8)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=300, help="timed calls per model and round")
    ap.add_argument("--pose", action="store_true", help="also read each face's head pose")
    a = ap.parse_args()
    box = face_box()
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(tree), a.commit], check=True)
        try:
            best: dict[str, dict[str, float]] = {a.commit: {}, "working tree": {}}
            for _ in range(a.rounds):
                for name, src in ((a.commit, tree / "src"), ("working tree", REPO / "src")):
                    for spec, ms in run(src, box, a.models, a.repeats, a.pose).items():
                        best[name][spec] = min(best[name].get(spec, np.inf), ms)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=True)
    for spec in a.models:
        old, new = best[a.commit][spec], best["working tree"][spec]
        print(json.dumps({"model": spec, a.commit: round(old, 3), "working tree": round(new, 3),
                          "change": f"{(new / old - 1) * 100:+.1f}%"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
