"""Headless Chromium for rendering the HTML reports as a person's browser would.

Debian's `chromium` (scripts/test.sh installs it). Each render gets a fresh profile and
runs with everything that could reach the network switched off. In CI a missing chromium
is a failure, never a skip.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Screenshots are kept here for a person to look at (tmp_path is removed after passing tests).
SHOTS = ROOT / "test-output" / "screenshots"

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         # any request the page made would fail instead of leaving the machine
         "--host-resolver-rules=MAP * ~NOTFOUND"]


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:  # like every server the tests need: a failure, never a skip
        pytest.fail("chromium is not installed; scripts/test.sh installs it")
    return exe


def _run(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    cmd = [chromium(), *FLAGS, f"--user-data-dir={profile}", *args]
    # its own session, so that its helper processes end with it and never signal pytest
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, start_new_session=True)
    assert proc.returncode == 0, f"chromium failed ({proc.returncode}): {proc.stderr[-2000:]}"
    return proc


def dump_dom(page: Path, profile: Path) -> str:
    """The DOM after Chromium parsed and laid out the page."""
    return _run(["--dump-dom", page.resolve().as_uri()], profile).stdout


def screenshot(page: Path, png: Path, profile: Path, width: int = 1280, height: int = 2400) -> tuple[int, int]:
    png.parent.mkdir(parents=True, exist_ok=True)
    _run([f"--window-size={width},{height}", f"--screenshot={png}", page.resolve().as_uri()], profile)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


class _Text(HTMLParser):
    """The visible text of a DOM, and each table row's cells, and the elements seen."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.rows: list[tuple[str, list[str]]] = []  # (row class, cell texts)
        self.tags: set[str] = set()
        self._skip = 0
        self._row: list[str] | None = None
        self._row_class = ""
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag in ("style", "title", "script"):
            self._skip += 1
        elif tag == "tr":
            self._row, self._row_class = [], dict(attrs).get("class") or ""
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "title", "script"):
            self._skip -= 1
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append((self._row_class, self._row))
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.parts.append(data)
        if self._cell is not None:
            self._cell.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.parts).split())


def parse(dom: str) -> _Text:
    p = _Text()
    p.feed(dom)
    return p
