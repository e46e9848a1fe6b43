"""File versions from a binary's VS_FIXEDFILEINFO block.

Windows keeps a file's version in its version resource, whose fixed part starts with the
signature 0xFEEF04BD. Scanning for that signature reads the version of a real PE file
without a PE parser, and lets stand-in payloads carry a version the same way.
"""

from __future__ import annotations

import struct
from typing import Iterable

SIGNATURE = struct.pack("<I", 0xFEEF04BD)
_FIXED = struct.Struct("<IIIIII")  # signature, struc version, file MS, file LS, product MS, product LS


def fixed_file_info(version: tuple[int, int, int, int]) -> bytes:
    a, b, c, d = version
    ms, ls = (a << 16) | b, (c << 16) | d
    return _FIXED.pack(0xFEEF04BD, 0x00010000, ms, ls, ms, ls) + bytes(28)


def find_version(chunks: Iterable[bytes]) -> str | None:
    """The first file version found in the stream, as `a.b.c.d`, or None."""
    tail = b""
    for chunk in chunks:
        buf = tail + chunk
        i = buf.find(SIGNATURE)
        while i != -1:
            if len(buf) - i >= _FIXED.size:
                sig, struc, ms, ls, _, _ = _FIXED.unpack_from(buf, i)
                if struc in (0x00010000, 0):
                    return f"{ms >> 16}.{ms & 0xFFFF}.{ls >> 16}.{ls & 0xFFFF}"
                i = buf.find(SIGNATURE, i + 1)
            else:
                break
        keep = _FIXED.size + len(SIGNATURE)
        tail = buf[-keep:] if i == -1 else buf[i:]
    return None
