"""SMS 1.x platforms and the many ways KB articles spell them.

Articles write the same platform as I386, Intel, x86 or (x86); SMS keeps its binaries in
one folder per platform (X86.BIN, ALPHA.BIN, MIPS.BIN, MAC.BIN).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Platform:
    key: str  # canonical name used in playbooks and inventories: x86, alpha, mips, mac
    folder_stem: str  # X86 -> the X86.BIN folder
    article_name: str  # how a KB table most often spells it
    aliases: tuple[str, ...]

    @property
    def folder(self) -> str:
        return f"{self.folder_stem}.BIN"


PLATFORMS: dict[str, Platform] = {
    p.key: p
    for p in (
        Platform("x86", "X86", "I386", ("x86", "i386", "intel", "(x86)", "x86.bin", "ia32", "386")),
        Platform("alpha", "ALPHA", "Alpha", ("alpha", "axp", "(alpha)", "alpha.bin", "dec alpha")),
        Platform("mips", "MIPS", "MIPS", ("mips", "r4000", "(mips)", "mips.bin")),
        Platform("mac", "MAC", "Mac", ("mac", "macintosh", "(mac)", "mac.bin")),
    )
}

_ALIASES = {alias: p for p in PLATFORMS.values() for alias in p.aliases}


def allowed_names() -> str:
    return ", ".join(f"{p.key} ({'/'.join(a for a in p.aliases if not a.endswith('.bin'))})" for p in PLATFORMS.values())


def lookup(name: str) -> Platform:
    """Map an article's or operator's spelling to a platform; ValueError names what is allowed."""
    p = _ALIASES.get(" ".join(str(name).split()).casefold())
    if p is None:
        raise ValueError(f"unknown platform {name!r}; allowed: {allowed_names()}")
    return p
