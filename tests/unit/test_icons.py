"""The shipped PNG icons are the drawing of the icon's geometry (idp.deviceapp.icons)."""

from __future__ import annotations

import struct

from idp.deviceapp.icons import PNG_SIZES, icon_png, shipped_png


def test_the_shipped_icon_is_the_drawing() -> None:
    # The smaller one only: drawing 512 pixels costs seconds.
    assert shipped_png(192) == icon_png(192)


def test_each_shipped_icon_is_a_png_of_its_size() -> None:
    for size in PNG_SIZES:
        body = shipped_png(size)
        assert body[:8] == b"\x89PNG\r\n\x1a\n" and body[12:16] == b"IHDR"
        width, height, depth, colour = struct.unpack(">IIBB", body[16:26])
        assert (width, height, depth, colour) == (size, size, 8, 6)  # 8-bit RGBA
