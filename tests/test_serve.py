"""The HTTP service as a client sees it: a real server on a free loopback port, the same answers as the CLI, every
bad input a 4xx with the server still serving, a bounded queue, and the web page in a real headless Chromium."""
from __future__ import annotations

import io
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx", reason="the service tests need httpx (pip install -e '.[test]')")
pytest.importorskip("fastapi", reason="the service needs its extra: pip install -e '.[serve]'")

SAMPLES = Path(__file__).resolve().parents[1] / "src" / "facemark" / "samples"
ARTIFACTS = Path(os.environ.get("FACEMARK_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    """``facemark serve`` with one model and room for 2 waiting requests, on a free port."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "facemark", "serve", "--port", str(port), "--queue", "2",
                             "--max-bytes", "3000000", "--threads", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the server stopped: {proc.stderr.read()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("the server did not answer /health within 90 s")
    yield url
    proc.terminate()
    proc.wait(10)


def _post(url: str, data: bytes, name: str = "photo.jpg", path: str = "/v1/detect", **params) -> httpx.Response:
    return httpx.post(url + path, files={"image": (name, data)}, params=params, timeout=60)


def test_detect_answers_what_the_cli_prints(server, tmp_path):
    shutil.copy(SAMPLES / "einstein.jpg", tmp_path / "einstein.jpg")
    cli = subprocess.run([sys.executable, "-m", "facemark", "detect", "einstein.jpg", "--json", "--threads", "1"],
                         capture_output=True, text=True, cwd=tmp_path)
    r = _post(server, (SAMPLES / "einstein.jpg").read_bytes(), "einstein.jpg")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == json.loads(cli.stdout)
    drawn = _post(server, (SAMPLES / "einstein.jpg").read_bytes(), draw="true")
    assert drawn.status_code == 200 and drawn.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_align_gives_one_crop_per_face(server):
    photo = (SAMPLES / "breakingbad.jpg").read_bytes()
    n = len(_post(server, photo).json()["faces"])
    z = _post(server, photo, "breakingbad.jpg", "/v1/align", size=96)
    assert z.status_code == 200 and z.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(z.content)).namelist()
    assert n >= 2 and names == [f"breakingbad_{k}.png" for k in range(n)]
    js = _post(server, photo, "breakingbad.jpg", "/v1/align", format="json").json()
    assert [f["index"] for f in js["faces"]] == list(range(n))


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels (no pixel data follows)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
            + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)))


def test_every_bad_input_is_a_4xx_and_the_server_keeps_serving(server):
    png = (SAMPLES / "lenna.png").read_bytes()
    cases = {
        "not an image": (_post(server, b"hello, I am text", "notes.txt"), 415, "not an image"),
        "truncated": (_post(server, png[:3000], "cut.png"), 400, "truncated or corrupt"),
        "over the pixel limit": (_post(server, _png_header(30000, 30000), "huge.png"), 413, "too large"),
        "body over --max-bytes": (_post(server, b"\0" * 3_100_000, "big.jpg"), 413, "over the limit"),
        "no image field": (httpx.post(server + "/v1/detect", data={"x": "1"}, timeout=30), 400, "field 'image'"),
        "not a form": (httpx.post(server + "/v1/detect", content=b"{}", timeout=30), 400, "multipart"),
        "bad parameter": (_post(server, png, min_score="abc"), 400, "min_score"),
        "bad format": (_post(server, png, path="/v1/align", format="tar"), 400, "format"),
    }
    for what, (r, status, words) in cases.items():
        assert r.status_code == status, (what, r.text)
        assert words in r.json()["error"], (what, r.json())
    assert httpx.get(server + "/health").json() == {"status": "ok"}
    assert len(_post(server, png).json()["faces"]) == 1


def test_requests_beyond_the_queue_get_503_and_the_rest_200(server):
    photo = (SAMPLES / "breakingbad.jpg").read_bytes()   # a large photo: each request holds the model a while
    with ThreadPoolExecutor(8) as pool:
        codes = [r.status_code for r in pool.map(lambda _: _post(server, photo), range(8))]
    assert set(codes) <= {200, 503} and codes.count(200) >= 3 and 503 in codes
    with ThreadPoolExecutor(2) as pool:        # within the queue: every request answered
        assert [r.status_code for r in pool.map(lambda _: _post(server, photo), range(4))] == [200] * 4


def test_models_docs_and_openapi(server):
    m = httpx.get(server + "/v1/models").json()
    assert m["serving"]["model"] in m["models"] and "facemark" in m["detectors"]
    spec = httpx.get(server + "/openapi.json").json()
    assert {"/v1/detect", "/v1/align", "/health", "/v1/models"} <= set(spec["paths"])
    assert "openapi.json" in httpx.get(server + "/docs").text
    page = httpx.get(server + "/").text
    assert "/static/app.js" in page and "http" not in page.split("<body>")[1].replace("http://127.0.0.1", "")


def _chrome():
    """A Selenium driver of Debian's headless Chromium, or a skip saying what is missing."""
    webdriver = pytest.importorskip("selenium.webdriver",
                                    reason="the page test needs selenium (pip install -e '.[test]')")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not binary or not driver:
        pytest.skip("the page test needs Debian's chromium and chromium-driver (apt-get install -y chromium "
                    "chromium-driver; .ci/run installs them)")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,900"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=opts)


def test_the_page_draws_the_faces_of_an_uploaded_photo(server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    photo = SAMPLES / "breakingbad.jpg"
    want = len(_post(server, photo.read_bytes()).json()["faces"])
    browser = _chrome()
    try:
        browser.get(server + "/")
        browser.find_element(By.ID, "file").send_keys(str(photo))
        count = WebDriverWait(browser, 60).until(
            lambda b: b.find_element(By.ID, "count").get_attribute("data-faces") or None)
        assert int(count) == want
        assert browser.find_element(By.ID, "count").text == f"{want} faces"
        width = browser.execute_script("return document.getElementById('canvas').width")
        assert width == 1920                               # the photo drawn at its own size
        assert not browser.find_element(By.ID, "download-crops").get_attribute("disabled")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "serve_page.png"))
    finally:
        browser.quit()
