"""PNG files written directly: the live plot's images and the blank stand-in that keeps
the plot's room before the first one (no image library on the path of a render)."""

from __future__ import annotations

import struct
import zlib

import numpy as np

GREY = 0
"""PNG colour type: greyscale."""

RGB = 2
"""PNG colour type: red, green, blue."""


def png(rows: bytes, width: int, height: int, depth: int, color: int, level: int) -> bytes:
    """A PNG of `height` rows of `width` pixels.

    Args:
        rows: the image data as PNG filters it: each row a filter byte (0: none),
            then its pixels packed at `depth` bits a sample.
        width, height: the size in pixels.
        depth: bits a sample (1 or 8).
        color: the colour type (`GREY`, `RGB`).
        level: zlib's compression level (zlib releases the GIL while it compresses).

    Example:

    ```python
    png(b"\\x00\\xff" * 2, 8, 2, 1, GREY, 9)   # an 8 x 2 white image
    ```
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return b"".join((b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", header),
                     chunk(b"IDAT", zlib.compress(rows, level)), chunk(b"IEND", b"")))


def rgb_png(rgb: np.ndarray, level: int = 3) -> bytes:
    """An RGB image (height x width x 3, uint8) as PNG: rows unfiltered, deflated at
    `level`.

    On a plot (mostly flat white) this takes less than half the CPU of PIL's
    encoder at its level 1, which tries a filter on every row, for a smaller
    file.
    """
    height, width, _ = rgb.shape
    rows = np.zeros((height, 1 + 3 * width), np.uint8)  # each row: filter 0, pixels
    rows[:, 1:] = rgb.reshape(height, 3 * width)
    return png(rows.data, width, height, 8, RGB, level)


__all__ = ["GREY", "RGB", "png", "rgb_png"]
