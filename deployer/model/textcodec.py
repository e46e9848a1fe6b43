"""Text files saved by Windows tools: a byte-order mark says the encoding.

Notepad's "Unicode" is UTF-16 LE with a mark, and PowerShell 5's `>` writes the same; such a
file is not binary (it is full of NUL bytes only because of its encoding) and not
Windows-1252. Every reader of an operator's text file (KB articles, Rservice .ini files,
PCMDUMP output) asks here first.
"""

from __future__ import annotations

from ..errors import InputError, Location

# Longest first: the UTF-32 LE mark begins with the UTF-16 LE one.
BOMS = [(b"\x00\x00\xfe\xff", "utf-32-be", "UTF-32 BE"), (b"\xff\xfe\x00\x00", "utf-32-le", "UTF-32 LE"),
        (b"\xef\xbb\xbf", "utf-8", "UTF-8"), (b"\xfe\xff", "utf-16-be", "UTF-16 BE"), (b"\xff\xfe", "utf-16-le", "UTF-16 LE")]


def decode_bom(raw: bytes, source: str, *, error: type[InputError] = InputError) -> str | None:
    """The text of a file that starts with a byte-order mark; None without one. A file whose
    mark promises an encoding its bytes do not have is said in words (exit 2)."""
    for bom, codec, name in BOMS:
        if raw.startswith(bom):
            try:
                return raw[len(bom):].decode(codec)
            except UnicodeDecodeError as exc:
                at = len(bom) + exc.start
                raise error(f"starts with a {name} byte-order mark but is not {name} text (byte {at:,} of "
                            f"{len(raw):,} cannot be decoded); save it again as UTF-8 or {name}",
                            Location(source, raw[:at].count(b"\n") + 1)) from None
    return None
