"""The app icon: an SVG, and PNG renderings of it for the web manifest.

Install prompts want PNG icons of 192 and 512 pixels. The icon is simple
(a rounded square with a check mark), so it is drawn here, anti-aliased from
the same geometry as ``ICON_SVG``, and written as a PNG with ``zlib`` alone:
no imaging library for two pictures.

Drawing them pixel by pixel in Python costs seconds of CPU (1.6 s for 512
pixels), so they are drawn once and shipped as ``idp/static/icon-SIZE.png``;
after changing the geometry, draw them again::

    python -m idp.deviceapp.icons idp/static

(tests/unit/test_icons.py checks that the shipped 192-pixel icon is this drawing).
"""

from __future__ import annotations

import itertools
import math
import struct
import sys
import zlib
from functools import lru_cache
from pathlib import Path

# The geometry, in a 512-unit square.
_UNITS = 512.0
_RADIUS = 104.0
_STROKE = 46.0
_CHECK = ((143.0, 266.0), (225.0, 348.0), (379.0, 184.0))
BACKGROUND = (0x0B, 0x5F, 0xFF)  # style.css --accent
FOREGROUND = (0xFF, 0xFF, 0xFF)
PNG_SIZES = (192, 512)
STATIC = Path(__file__).resolve().parent.parent / "static"

ICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 512 512">'
    '<rect width="512" height="512" rx="104" fill="#0b5fff"/>'
    '<path d="M143 266 225 348 379 184" fill="none" stroke="#fff" stroke-width="46" '
    'stroke-linecap="round" stroke-linejoin="round"/>'
    "</svg>\n"
)


def _segment_distance(
    px: float, py: float, a: tuple[float, float], b: tuple[float, float]
) -> float:
    ax, ay = a
    bx, by = b
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy))


def _rounded_square_distance(px: float, py: float) -> float:
    """Signed distance to the rounded square's edge (negative inside)."""
    half = _UNITS / 2
    qx = abs(px - half) - (half - _RADIUS)
    qy = abs(py - half) - (half - _RADIUS)
    outside = math.hypot(max(qx, 0.0), max(qy, 0.0))
    return outside + min(max(qx, qy), 0.0) - _RADIUS


def _coverage(distance: float, pixel: float) -> float:
    """How much of a pixel lies inside, from its centre's signed distance."""
    return max(0.0, min(1.0, 0.5 - distance / pixel))


def _rgba_rows(size: int) -> list[bytes]:
    pixel = _UNITS / size
    half_stroke = _STROKE / 2
    segments = list(itertools.pairwise(_CHECK))
    low_x = min(x for x, _ in _CHECK) - half_stroke - pixel
    high_x = max(x for x, _ in _CHECK) + half_stroke + pixel
    low_y = min(y for _, y in _CHECK) - half_stroke - pixel
    high_y = max(y for _, y in _CHECK) + half_stroke + pixel
    rows = []
    for row in range(size):
        py = (row + 0.5) * pixel
        line = bytearray()
        for column in range(size):
            px = (column + 0.5) * pixel
            alpha = _coverage(_rounded_square_distance(px, py), pixel)
            mark = 0.0
            if low_x <= px <= high_x and low_y <= py <= high_y:
                nearest = min(_segment_distance(px, py, a, b) for a, b in segments)
                mark = _coverage(nearest - half_stroke, pixel)
            colour = (
                round(bg + (fg - bg) * mark) for bg, fg in zip(BACKGROUND, FOREGROUND, strict=True)
            )
            line.extend((*colour, round(255 * alpha)))
        rows.append(bytes(line))
    return rows


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def shipped_png(size: int) -> bytes:
    """The shipped drawing of ``icon_png(size)``."""
    if size not in PNG_SIZES:
        raise ValueError(f"icon sizes are {PNG_SIZES}")
    return _shipped(size)


@lru_cache(maxsize=len(PNG_SIZES))
def _shipped(size: int) -> bytes:
    return (STATIC / f"icon-{size}.png").read_bytes()


def icon_png(size: int) -> bytes:
    """The icon as an RGBA PNG of ``size`` x ``size`` pixels (PNG spec §11, filter 0)."""
    if size not in PNG_SIZES:
        raise ValueError(f"icon sizes are {PNG_SIZES}")
    raw = b"".join(b"\x00" + row for row in _rgba_rows(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else STATIC)
    for size in PNG_SIZES:
        (folder / f"icon-{size}.png").write_bytes(icon_png(size))
