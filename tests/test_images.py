"""Reading images: EXIF orientation, size limits from the header, and the formats' odd corners."""
import struct
import zlib

import numpy as np
import pytest

from facemark.core.errors import DataError
from facemark.io.headers import read_header
from facemark.io.images import read_image

PIL = pytest.importorskip("PIL.Image")
ImageOps = pytest.importorskip("PIL.ImageOps")


def _picture() -> np.ndarray:
    """An asymmetric test picture: any flip or turn of it is a different array."""
    img = np.zeros((60, 90, 3), np.uint8)
    img[5:20, 10:40] = (255, 0, 0)
    img[30:55, 60:85] = (0, 0, 255)
    img[40:45, 5:15] = (0, 255, 0)
    return img


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_exif_orientation_gives_the_upright_image(tmp_path, orientation, fmt):
    path = tmp_path / f"photo.{fmt.lower()}"
    im = PIL.fromarray(_picture())
    exif = PIL.Exif()
    exif[0x0112] = orientation
    im.save(path, fmt, exif=exif.tobytes(), **({"quality": 100, "subsampling": 0} if fmt == "JPEG" else
                                                  {"lossless": True} if fmt == "WEBP" else {}))
    expected = np.asarray(ImageOps.exif_transpose(PIL.open(path)).convert("RGB")).astype(int)
    got = read_image(path).astype(int)
    assert got.shape == expected.shape
    assert np.abs(got - expected).mean() < 2.0
    assert read_header(path.read_bytes())[1] == orientation


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path, monkeypatch):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header(100_000, 100_000) + b"\x00" * 64)     # claims 10 gigapixels in 100 bytes
    with pytest.raises(DataError, match=r"bomb.png: image too large: 100000x100000 pixels, over the limit"):
        read_image(bomb)
    ok = tmp_path / "ok.png"
    PIL.fromarray(_picture()).save(ok)
    monkeypatch.setenv("FACEMARK_MAX_PIXELS", "1000")
    with pytest.raises(DataError, match="90x60 pixels, over the limit of 1,000"):
        read_image(ok)
    monkeypatch.setenv("FACEMARK_MAX_PIXELS", "lots")
    with pytest.raises(DataError, match="FACEMARK_MAX_PIXELS: not a whole number"):
        read_image(ok)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"])
def test_header_sizes(tmp_path, fmt):
    path = tmp_path / f"x.{fmt.lower()}"
    PIL.fromarray(_picture()).save(path, fmt)
    assert read_header(path.read_bytes())[0] == (90, 60)
