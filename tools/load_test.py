"""Load test of ``facemark serve`` on loopback (a benchmark, not a unit test): requests per second and latency
percentiles of ``POST /v1/detect`` at several numbers of concurrent clients, every answer's status counted.

Starts its own server on a free loopback port (``--workers``, ``--queue`` as ``facemark serve`` takes them)
unless ``--url`` names a running one; each client posts a bundled photo, one request after another.

    python tools/load_test.py [--photo src/facemark/samples/einstein.jpg] [--requests 200] [--clients 1 4 8 16]
"""
from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

PHOTO = Path(__file__).resolve().parents[1] / "src" / "facemark" / "samples" / "einstein.jpg"


def _start(workers: int, queue: int, threads: int | None) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "facemark", "serve", "--port", str(port), "--workers", str(workers),
           "--queue", str(queue)] + (["--threads", str(threads)] if threads else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"the server did not start: {proc.stderr.read()}")


def level(url: str, photo: bytes, clients: int, requests: int) -> dict:
    """``requests`` posts spread over ``clients`` threads: statuses, requests/s, latency percentiles (ms)."""
    def one(_: int) -> tuple[int, float]:
        t = time.perf_counter()
        r = httpx.post(url + "/v1/detect", files={"image": ("photo.jpg", photo)}, timeout=120)
        return r.status_code, time.perf_counter() - t

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        done = list(pool.map(one, range(requests)))
    wall = time.perf_counter() - t0
    ms = np.array([s for _, s in done]) * 1000
    return {"clients": clients, "requests": requests, "statuses": dict(Counter(c for c, _ in done)),
            "requests_per_s": round(requests / wall, 2), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1), "max_ms": round(float(ms.max()), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="a running server (default: start one)")
    ap.add_argument("--photo", type=Path, default=PHOTO)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8, 16])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--queue", type=int, default=16)
    ap.add_argument("--threads", type=int)
    a = ap.parse_args()
    proc, url = (None, a.url) if a.url else _start(a.workers, a.queue, a.threads)
    try:
        photo = a.photo.read_bytes()
        level(url, photo, 1, 3)   # warm-up
        for c in a.clients:
            print(json.dumps({"workers": a.workers, "queue": a.queue, "photo": a.photo.name,
                              **level(url, photo, c, a.requests)}), flush=True)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
