"""``facemark serve``: the HTTP service and its web page (``facemark.serve.app``)."""
from __future__ import annotations

import argparse

from ..core.errors import FacemarkError, need
from ..inference.detectors import DEFAULT_DETECTOR, DETECTORS
from ..inference.runtime import DEFAULT_MODEL
from .base import command


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only). The service has no "
                        "authentication: to reach it from elsewhere, put it behind a reverse proxy that "
                        "authenticates, or bind 0.0.0.0 on a trusted network only")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"landmark model (default {DEFAULT_MODEL})")
    p.add_argument("--detector", default=DEFAULT_DETECTOR, choices=DETECTORS.names())
    p.add_argument("--workers", type=int, default=1,
                   help="models run side by side (one request each; default 1)")
    p.add_argument("--queue", type=int, default=16,
                   help="requests that may wait for a model; beyond that 503 with Retry-After (default 16)")
    p.add_argument("--max-bytes", type=int, default=20_000_000, help="largest request body (default 20 MB)")
    p.add_argument("--threads", type=int, help="ONNX Runtime threads per model (default: all cores)")


@command("serve", _serve_args)
def _serve(a: argparse.Namespace) -> int:
    """Serve the pipeline over HTTP with a web page at / (API: POST /v1/detect, /v1/align; docs at /docs)."""
    uvicorn = need("uvicorn", "serve", "facemark serve")
    need("fastapi", "serve", "facemark serve")
    need("multipart", "serve", "facemark serve (uploads)")
    from ..serve.app import create_app

    if not 0 < a.port < 65536:
        raise FacemarkError(f"--port {a.port}: 1-65535")
    app = create_app(a.model, a.detector, a.workers, a.queue, a.max_bytes, a.threads)
    print(f"facemark serving {a.model} + {a.detector} on http://{a.host}:{a.port}/ (Ctrl-C stops it)", flush=True)
    uvicorn.run(app, host=a.host, port=a.port, log_level="warning")
    return 0
