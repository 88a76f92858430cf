"""What an image file says before it is decoded: its pixel size (to refuse a decompression bomb before
decoding it) and its EXIF orientation (phone photos are stored sideways and tagged to be shown upright).

JPEG, PNG, WebP, GIF, BMP and TIFF headers are read here; for other formats the size is unknown until decoded.
Malformed headers are not errors here: the decoder has the last word.
"""
from __future__ import annotations

import struct

import numpy as np

ORIENTATION_TAG = 0x0112
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _tiff_tags(tiff: bytes, wanted: set[int]) -> dict[int, int]:
    """The first value of each wanted tag of a TIFF structure's first IFD."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return {}
    e = "<" if tiff[:2] == b"II" else ">"
    (ifd,) = struct.unpack(e + "I", tiff[4:8])
    if ifd + 2 > len(tiff):
        return {}
    (count,) = struct.unpack(e + "H", tiff[ifd:ifd + 2])
    out = {}
    for k in range(count):
        at = ifd + 2 + 12 * k
        if at + 12 > len(tiff):
            break
        tag, kind = struct.unpack(e + "HH", tiff[at:at + 4])
        if tag in wanted:
            out[tag] = struct.unpack(e + ("H" if kind == 3 else "I"), tiff[at + 8:at + (10 if kind == 3 else 12)])[0]
    return out


def _jpeg(data: bytes) -> tuple[tuple[int, int] | None, bytes]:
    size, exif, i = None, b"", 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if marker == 0xE1 and data[i + 4:i + 10] == b"Exif\x00\x00" and not exif:
            exif = data[i + 10:i + 2 + length]
        elif marker in _SOF and i + 9 <= len(data):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            size = (w, h)
        if marker == 0xDA or size is not None:
            break
        i += 2 + length
    return size, exif


def _png(data: bytes) -> tuple[tuple[int, int] | None, bytes]:
    size, exif, i = None, b"", 8
    while i + 8 <= len(data):
        (length,) = struct.unpack(">I", data[i:i + 4])
        kind, body = data[i + 4:i + 8], data[i + 8:i + 8 + length]
        if kind == b"IHDR" and len(body) >= 8:
            size = struct.unpack(">II", body[:8])
        elif kind == b"eXIf":
            exif = body
        elif kind == b"IDAT":
            break
        i += 12 + length
    return size, exif


def _webp(data: bytes) -> tuple[tuple[int, int] | None, bytes]:
    size, exif, i = None, b"", 12
    while i + 8 <= len(data):
        kind = data[i:i + 4]
        (length,) = struct.unpack("<I", data[i + 4:i + 8])
        body = data[i + 8:i + 8 + length]
        if kind == b"VP8X" and len(body) >= 10:
            size = (int.from_bytes(body[4:7], "little") + 1, int.from_bytes(body[7:10], "little") + 1)
        elif kind == b"VP8 " and len(body) >= 10 and size is None:
            w, h = struct.unpack("<HH", body[6:10])
            size = (w & 0x3FFF, h & 0x3FFF)
        elif kind == b"VP8L" and len(body) >= 5 and size is None:
            bits = int.from_bytes(body[1:5], "little")
            size = ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
        elif kind == b"EXIF":
            exif = body[6:] if body.startswith(b"Exif\x00\x00") else body
        i += 8 + length + (length & 1)
    return size, exif


def read_header(data: bytes) -> tuple[tuple[int, int] | None, int]:
    """(width, height) or None where the header does not say, and the EXIF orientation (1-8; 1 = upright)."""
    size, exif = None, b""
    if data[:3] == b"\xff\xd8\xff":
        size, exif = _jpeg(data)
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        size, exif = _png(data)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        size, exif = _webp(data)
    elif data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        size = struct.unpack("<HH", data[6:10])
    elif data[:2] == b"BM" and len(data) >= 26:
        w, h = struct.unpack("<ii", data[18:26])
        size = (abs(w), abs(h))
    elif data[:2] in (b"II", b"MM"):
        tags = _tiff_tags(data, {256, 257, ORIENTATION_TAG})
        size = (tags[256], tags[257]) if 256 in tags and 257 in tags else None
        exif = data
    orientation = _tiff_tags(exif, {ORIENTATION_TAG}).get(ORIENTATION_TAG, 1) if exif else 1
    return size, orientation if 1 <= orientation <= 8 else 1


def upright(image: np.ndarray, orientation: int) -> np.ndarray:
    """The image as it is meant to be shown, given its EXIF orientation (1-8)."""
    turned = {
        2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1), 7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }.get(orientation)
    return image if turned is None else np.ascontiguousarray(turned(image))
