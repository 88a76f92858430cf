"""Fuzz every reader and the image path with 10,000 random cases per target (tests/test_fuzz.py under the
hypothesis profile "fuzz"), and print how many ran and how many failed.

Every case must parse or raise facemark's DataError naming the file in one line; a raw exception is a failure.
The test suite runs the same targets on a small seeded sample.

    python tools/fuzz.py [--cases 10000]
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=10_000, help="cases per target (default 10,000)")
    a = ap.parse_args()
    env = dict(os.environ, FACEMARK_HYPOTHESIS="fuzz", FACEMARK_FUZZ_CASES=str(a.cases))
    r = subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "tests" / "test_fuzz.py"), "-q", "-p",
                        "no:cacheprovider", "--hypothesis-show-statistics", "-p", "no:warnings"],
                       capture_output=True, text=True, env=env, cwd=ROOT)
    total = 0
    for name, block in re.findall(r"tests/test_fuzz.py::(\w+):\n(.*?)(?=\n\n|\Z)", r.stdout, re.S):
        passing = sum(int(n) for n in re.findall(r"(\d+) passing examples", block))
        failing = sum(int(n) for n in re.findall(r"(\d+) failing examples", block))
        invalid = sum(int(n) for n in re.findall(r"(\d+) invalid examples", block))
        total += passing + failing
        print(f"{name:28s} {passing + failing:6d} cases, {failing} failing, {invalid} invalid")
    print(f"total {total} cases; pytest exit {r.returncode}")
    if r.returncode:
        print(r.stdout[-4000:], r.stderr[-2000:])
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())
