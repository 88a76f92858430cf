"""``facemark serve``: the pipeline as an HTTP service with a web page (FastAPI; extra ``[serve]``: import this
module only after ``core.errors.need`` has checked for it).

- ``POST /v1/detect``: an image as the multipart field ``image`` -> the JSON object of one line of
  ``facemark detect --json`` (``?draw=true``: the annotated image as PNG instead); ``min_score``, ``min_face``.
- ``POST /v1/align``: the aligned crops, a zip of PNGs (``?format=zip``, default) or JSON with base64 PNGs.
- ``GET /health``, ``GET /v1/models``, ``GET /openapi.json`` and its page ``/docs``; the web page at ``/``.

Bad input is a 4xx JSON ``{"error": ...}`` naming the problem: a body over ``max_bytes`` (413), an image over the
pixel limit (413), not an image (415), a truncated or corrupt image of a known format (400), no ``image`` field
or a bad parameter (400). The model runs in a bounded pool: ``workers`` Landmarkers, each used by one request
at a time, and at most ``queue`` requests waiting for one; beyond that a 503 with ``Retry-After``. Decoding
and the model run off the event loop, so a slow request never blocks the others.
"""
from __future__ import annotations

import asyncio
import base64
import io
import queue as queues
import zipfile
from pathlib import Path

import cv2
import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.exceptions import HTTPException

from ..core.align import align_face
from ..core.errors import ArgumentError, DataError
from ..inference.detectors import DEFAULT_DETECTOR, DETECTORS
from ..inference.draw import draw_faces
from ..inference.landmarker import Landmarker
from ..inference.runtime import DEFAULT_MODEL, available_models
from ..io.images import ImageTooLarge, UndecodableImage, decode_image

STATIC = Path(__file__).parent / "static"
MAX_BYTES = 20_000_000


class Rejected(Exception):
    """A request answered with an error status and a one-line reason."""

    def __init__(self, status: int, problem: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(problem)
        self.status, self.problem, self.headers = status, problem, headers or {}


class LandmarkerPool:
    """``workers`` Landmarkers, each lent to one request at a time; at most ``waiting`` requests wait."""

    def __init__(self, make, workers: int, waiting: int) -> None:
        self.free: queues.Queue = queues.Queue()
        for _ in range(workers):
            self.free.put(make())
        self.slots = asyncio.Semaphore(workers)
        self.limit, self.pending = workers + waiting, 0

    async def run(self, job):
        """Run ``job(landmarker)`` in a worker thread once a Landmarker is free (503 when too many wait)."""
        if self.pending >= self.limit:
            raise Rejected(503, "busy: too many requests waiting; retry shortly", {"Retry-After": "1"})
        self.pending += 1
        try:
            async with self.slots:
                lm = self.free.get_nowait()
                try:
                    return await asyncio.to_thread(job, lm)
                finally:
                    self.free.put(lm)
        finally:
            self.pending -= 1


def create_app(model: str = DEFAULT_MODEL, detector: str = DEFAULT_DETECTOR, workers: int = 1, waiting: int = 16,
               max_bytes: int = MAX_BYTES, threads: int | None = None):
    """The FastAPI application (the models are loaded here, before the first request)."""
    if workers < 1 or waiting < 0 or max_bytes < 1:
        raise ArgumentError("workers", f"workers >= 1, waiting >= 0, max_bytes >= 1 (got {workers}, {waiting}, "
                                       f"{max_bytes})")
    # loaded now: an unknown model or detector fails here in one line, and the first request waits for nothing
    state = {"pool": LandmarkerPool(lambda: Landmarker(model, detector, threads=threads), workers, waiting)}
    app = FastAPI(title="facemark", version=_version(), docs_url=None, redoc_url=None,
                          description="Faces, 68-point landmarks, head pose and aligned crops of an image.")

    def error(status: int, problem: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": problem, "status": status}, status_code=status, headers=headers)

    @app.exception_handler(Rejected)
    async def _rejected(request, e: Rejected):
        return error(e.status, e.problem, e.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, e: RequestValidationError):
        first = e.errors()[0]
        return error(400, f"{'.'.join(str(x) for x in first.get('loc', ())[1:])}: {first.get('msg')}")

    @app.exception_handler(HTTPException)
    async def _http(request, e: HTTPException):
        return error(e.status_code, str(e.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request, e: Exception):   # never a traceback to the client
        return error(500, f"internal error: {e.__class__.__name__}")

    async def upload(request: Request) -> tuple[np.ndarray, str]:
        """The ``image`` field, decoded (413 / 415 / 400 as the module docstring says)."""
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise Rejected(400, "expected a multipart/form-data body with the image in the field 'image'")
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > max_bytes:
            raise Rejected(413, f"request body of {int(size):,} bytes is over the limit of {max_bytes:,}")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_bytes:
                raise Rejected(413, f"request body is over the limit of {max_bytes:,} bytes")

        async def replay():
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        try:
            form = await Request(request.scope, replay).form()
        except Exception:   # python-multipart's errors: a body that is not a multipart form
            raise Rejected(400, "expected a multipart/form-data body with the image in the field 'image'") from None
        field = form.get("image")
        if field is None or isinstance(field, str):
            raise Rejected(400, "no file in the form field 'image'")
        name = Path(field.filename or "upload").name
        data = await field.read()
        try:
            return await asyncio.to_thread(decode_image, data, name), name
        except ImageTooLarge as e:
            raise Rejected(413, str(e)) from None
        except UndecodableImage as e:
            raise Rejected(400 if e.known_format else 415,
                           f"{name}: truncated or corrupt image" if e.known_format else
                           f"{name}: not an image (JPEG, PNG, WebP, BMP, GIF or TIFF expected)") from None
        except DataError as e:
            raise Rejected(400, str(e)) from None

    def faces_of(image: np.ndarray, min_score: float, min_face: float):
        def job(lm: Landmarker):   # the Landmarker is this request's alone while the job runs
            lm.min_score, lm.min_face = min_score, min_face
            return lm.detect(image)
        return job

    @app.get("/health")
    async def health() -> dict:
        """Whether the service is up."""
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models() -> dict:
        """The models and detectors this installation ships, and the ones this service runs."""
        return {"serving": {"model": model, "detector": detector, "workers": workers, "queue": waiting,
                            "max_bytes": max_bytes},
                "models": available_models(), "detectors": DETECTORS.names()}

    @app.post("/v1/detect")
    async def detect(request: Request, min_score: float = Query(0.0, ge=0), min_face: float = Query(0.0, ge=0),
                     draw: bool = False):
        """Faces of the uploaded image (multipart field ``image``): what ``facemark detect --json`` prints for
        it, or with ``draw=true`` the annotated image as PNG."""
        image, name = await upload(request)
        faces = await state["pool"].run(faces_of(image, min_score, min_face))
        if draw:
            png = await asyncio.to_thread(_png, draw_faces(image, faces))
            return Response(png, media_type="image/png")
        h, w = image.shape[:2]
        return {"image": name, "width": w, "height": h, "faces": [f.to_dict() for f in faces]}

    @app.post("/v1/align")
    async def align(request: Request, size: int = Query(112, ge=8, le=1024), format: str = Query("zip"),
                    min_score: float = Query(0.0, ge=0), min_face: float = Query(0.0, ge=0)):
        """Aligned crops of the uploaded image's faces (the 5-point similarity warp): a zip of ``NAME_K.png``
        (``format=zip``) or JSON with base64 PNGs (``format=json``)."""
        if format not in ("zip", "json"):
            raise Rejected(400, f"format: 'zip' or 'json', not {format!r}")
        image, name = await upload(request)
        faces = await state["pool"].run(faces_of(image, min_score, min_face))
        crops = await asyncio.to_thread(lambda: [_png(align_face(image, f.five, size)) for f in faces])
        stem = Path(name).stem
        if format == "json":
            return {"image": name, "faces": [{"index": k, "box": f.to_dict()["box"],
                                              "png": base64.b64encode(c).decode()} for k, (f, c) in
                                             enumerate(zip(faces, crops))]}
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for k, c in enumerate(crops):
                z.writestr(f"{stem}_{k}.png", c)
        return Response(buf.getvalue(), media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{stem}_aligned.zip"'})

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html")

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return FileResponse(STATIC / "docs.html")

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str):
        path = STATIC / Path(name).name
        if not path.is_file():
            raise Rejected(404, f"no such file: {name}")
        return FileResponse(path)

    return app


def _png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return buf.tobytes()


def _version() -> str:
    from .. import __version__

    return __version__
