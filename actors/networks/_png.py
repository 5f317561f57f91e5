"""A small PNG codec for the built-in image models. Pure; stdlib only (zlib).

Encodes 8-bit RGB; decodes 8-bit greyscale, RGB and RGBA, non-interlaced,
with all five row filters, which covers what common tools write for such
images. Anything else is a `BadImage` naming what is unsupported.
"""

from __future__ import annotations

import struct
import zlib

from pipecast.transport import ErrorType, PipecastError

__all__ = ["PNG_SIGNATURE", "BadImage", "decode_png", "encode_png"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 6: 4}  # colour type -> channels
_MAX_PIXELS = 64 * 1024 * 1024


class BadImage(PipecastError):
    """Bytes that are not a PNG this codec reads."""

    wire_type = ErrorType.BAD_REQUEST


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def encode_png(width: int, height: int, rgb: bytes) -> bytes:
    """An RGB image (`rgb` = height rows of width*3 bytes) as PNG bytes."""
    if len(rgb) != width * height * 3 or width < 1 or height < 1:
        raise BadImage(f"{len(rgb)} bytes is not a {width}x{height} RGB image")
    stride = width * 3
    raw = b"".join(b"\x00" + rgb[y * stride : (y + 1) * stride] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 6))
        + _chunk(b"IEND", b"")
    )


def decode_png(data: bytes) -> tuple[int, int, int, bytes]:
    """(width, height, channels, pixels) of a PNG; raises `BadImage`."""
    if not data.startswith(PNG_SIGNATURE):
        raise BadImage("not a PNG (bad signature)")
    pos, header, idat = len(PNG_SIGNATURE), b"", []
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if len(body) != length:
            raise BadImage("truncated PNG chunk")
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if len(header) != 13 or not idat:
        raise BadImage("PNG without IHDR or IDAT")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour not in _CHANNELS or interlace != 0:
        raise BadImage(f"unsupported PNG (depth {depth}, colour type {colour}, interlace)")
    if not 0 < width * height <= _MAX_PIXELS:
        raise BadImage(f"PNG of {width}x{height} is out of range")
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as exc:
        raise BadImage(f"corrupt PNG data: {exc}") from None
    channels = _CHANNELS[colour]
    stride = width * channels
    if len(raw) != height * (stride + 1):
        raise BadImage("PNG data does not match its size")
    return width, height, channels, _unfilter(raw, height, stride, channels)


def _unfilter(raw: bytes, height: int, stride: int, bpp: int) -> bytes:
    out = bytearray(height * stride)
    prev = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        row = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        if kind == 1:
            for i in range(bpp, stride):
                row[i] = (row[i] + row[i - bpp]) & 0xFF
        elif kind == 2:
            for i in range(stride):
                row[i] = (row[i] + prev[i]) & 0xFF
        elif kind == 3:
            for i in range(stride):
                left = row[i - bpp] if i >= bpp else 0
                row[i] = (row[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = row[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                row[i] = (row[i] + pred) & 0xFF
        elif kind != 0:
            raise BadImage(f"unknown PNG row filter {kind}")
        out[y * stride : (y + 1) * stride] = row
        prev = row
    return bytes(out)
