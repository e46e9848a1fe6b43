"""A KB article as lines, with its number and title.

Articles come as plain text (saved from the old KB CDs and web pages, often Windows-1252)
or in the markdown form of the public kbarchive collection (front matter, a `## Q...:`
title, the text inside `{% raw %}`). Line numbers are the file's, 1-based, so that every
row of a manifest can name the line a reviewer should look at.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path, PurePath, PureWindowsPath

from ..errors import InputError, Location
from ..model.textcodec import decode_bom
from ..model.yamlsrc import read_input


class ArticleError(InputError):
    """A KB article could not be imported; the location names the article and line."""

    @property
    def path(self) -> str | None:
        return self.location.file if self.location else None

    @property
    def line(self) -> int | None:
        return self.location.line if self.location else None


class NoTableError(ArticleError):
    """The article has no file-attribute table at all."""


@dataclass(frozen=True)
class Article:
    source: str  # the path as the user named it
    lines: list[str]
    kb: str
    title: str | None

    @property
    def file_name(self) -> str:
        return file_name(self.source)


MAX_ARTICLE_BYTES = 4 * 1024 * 1024  # the longest real articles are under 200 KB

_ARTICLE_LINE = re.compile(r"\s*Article:\s*(?P<kb>[QK]B?[0-9]{5,7})\b", re.IGNORECASE)
_TITLE_PREFIX = re.compile(r"\s*(?P<kb>[QK]B?[0-9]{5,7})\s*:\s*", re.IGNORECASE)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_KB_NUMBER = re.compile(r"\b([QK]B?[0-9]{5,7})\b", re.IGNORECASE)


def read_article(path: Path) -> Article:
    raw = read_input(Path(path), noun="article", expected="a KB article text file", max_bytes=MAX_ARTICLE_BYTES,
                     error=ArticleError)
    return parse_article_text(decode_article(raw, str(path)), str(path))


def decode_article(raw: bytes, source: str) -> str:
    """The article's text. A byte-order mark says the encoding (UTF-8, UTF-16, UTF-32: Notepad's
    "Unicode" is UTF-16 LE); without one, UTF-8, else Windows-1252 (the old KB CDs and web pages).
    Text whose every other byte is NUL is UTF-16 saved without a mark. What cannot be text is
    said in words (exit 2), never read as Windows-1252 garbage ("no file-attribute table")."""
    text = decode_bom(raw, source, error=ArticleError)
    if text is not None:
        return text
    sample = raw[:4096]
    controls = sum(1 for b in sample if b < 32 and b not in b"\t\n\r\f")
    if len(sample) >= 16 and controls * 10 >= len(sample):  # a tenth control bytes (a third NUL: UTF-16?)
        odd, even = sample[1::2].count(0), sample[0::2].count(0)
        codec = "utf-16-le" if odd * 2 >= len(sample) // 2 else "utf-16-be" if even * 2 >= len(sample) // 2 else None
        if codec is not None:
            try:
                return raw[: len(raw) // 2 * 2].decode(codec)
            except UnicodeDecodeError:
                pass
        raise ArticleError(f"is not a text file: {controls * 100 // len(sample)}% of its first bytes are control "
                           "bytes (binary data, or text in an encoding without a byte-order mark); expected a KB "
                           "article as text (UTF-8, UTF-16 or Windows-1252)", Location(source))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # Articles saved from the old KB CDs and web pages are Windows-1252, not UTF-8.
        return raw.decode("cp1252", errors="replace")


def parse_article_text(text: str, source: str) -> Article:
    # Lines end at CR, LF or CRLF only, as an editor counts them: str.splitlines() also breaks at
    # form feeds, \x1c-\x1e, NEL and U+2028, which would shift every later `line:` and cut a row
    # holding one of them in two.
    lines = _LINE_BREAK.split(text.lstrip("\ufeff"))
    if lines and lines[-1] == "":
        lines.pop()
    return Article(source, lines, article_kb(lines, source), article_title(lines))


def front_matter(lines: list[str]) -> list[str]:
    if not lines or lines[0].strip() != "---":
        return []
    for i in range(1, min(len(lines), 50)):
        if lines[i].strip() == "---":
            return lines[1:i]
    return []


def article_title(lines: list[str]) -> str | None:
    """The title line, without its "Q241656: " prefix; the pages escape HTML (&gt;)."""
    title = None
    for line in front_matter(lines):
        if line.startswith("title:"):
            value = line[len("title:"):].strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1].replace('\\"', '"') if value[0] == '"' else value[1:-1].replace("''", "'")
            title = value or None
            break
    if title is None:
        title = next((line.lstrip("#").strip() for line in lines[:40] if re.match(r"#{1,6}\s", line)), None)
    if not title:
        return None
    return html.unescape(_TITLE_PREFIX.sub("", title, count=1)).strip() or None


def article_kb(lines: list[str], source: str) -> str:
    """The article number: its "Article:" line, else the title's prefix, else the file name."""
    for line in lines[:80]:
        m = _ARTICLE_LINE.match(line)
        if m:
            return m.group("kb").upper()
    for candidate in [*(ln for ln in front_matter(lines) if ln.startswith("title:")), *lines[:20], file_name(source)]:
        m = _KB_NUMBER.search(candidate)
        if m:
            return m.group(1).upper()
    raise ArticleError("cannot tell the article number: expected an \"Article: Q123456\" line or a title such as "
                       "\"Q241656: ...\"", Location(source))


def file_name(source: str) -> str:
    # Accept both separators: an article path may have been typed on Windows.
    return PurePath(PureWindowsPath(source).name).name
