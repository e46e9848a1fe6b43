"""Blanking secrets in anything shown or logged: every secret value this process has read, and
those a command line or message gives away by their shape. Plain Python (no pydantic), so that
the command line can note its secrets before anything is logged without paying for the models.
"""

from __future__ import annotations

import re

MASK = "********"


# Every secret value this process has read, so that logs can blank one that reached a
# message by mistake (secrets never go into messages on purpose). Short values are left
# out: blanking "a" everywhere would make a log unreadable and protect nothing.
_SEEN: set[str] = set()


# Secrets that were never read as a Secret but reach a message anyway: a password written into
# a URL (`redis://:PASSWORD@host`, refused, but already on the command line), a password-like
# option's value (`--password X`, `--token=X`), an environment-like assignment (`..._PASSWORD=X`).
# Their shape gives them away, whatever their value.
# a URL's user:password runs to the last '@' of the word: a generated password holds '/', '+', '='
# and may hold '@' (the URL's own rules say to escape them; an operator's command line often does not)
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@'\"]*):[^\s'\"]*@")
_OPTION = re.compile(r"(?i)(?<![\w-])(--?[a-z0-9_-]*(?:passw(?:or)?d|passphrase|secret|token|api[_-]?key)(?![\w-]*file)"
                     r"[a-z0-9_-]*)(=|\s+)(?!-)([^\s'\"]+)")
_ASSIGNMENT = re.compile(r"(?i)\b([a-z0-9_]*(?:passw(?:or)?d|passphrase|secret|token|api_?key)(?![a-z0-9_]*file)"
                         r"[a-z0-9_]*)=([^\s'\"&]+)")


# Each shape above needs one of these words (or "://") in the text. A log line without any
# (a journal record: most of a fleet's log) skips the three patterns, which cost 3% of a fleet
# apply's CPU. The words are looked for in the casefolded text, which finds every spelling the
# patterns' (?i) matches, but the dotless i (U+0131), which (?i) takes for "i" and casefold
# keeps: a text holding one takes the patterns.
_SHAPE_WORDS = ("passw", "passphrase", "secret", "token", "api", "://")


def scrub(text: str) -> str:
    """`text` with secrets given away by their shape masked (see above)."""
    folded = text.casefold()
    if "\u0131" not in folded and not any(w in folded for w in _SHAPE_WORDS):
        return text
    text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{MASK}@", text)
    text = _OPTION.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return _ASSIGNMENT.sub(lambda m: f"{m.group(1)}={MASK}", text)


_NAME = re.compile(r"(?i)(passw(?:or)?d|passphrase|secret|token|api[_-]?key)(?![a-z0-9_-]*file)")


def note_command_line(argv: list[str]) -> None:
    """Remember the secrets a command line gives away by their shape, whole, so that `redact`
    blanks them wherever they are quoted (the logged command line, a usage error's "unexpected
    extra argument (...)"): the shapes alone cannot tell where a value with a space or a quote
    ends once the arguments are joined into one line."""
    for i, arg in enumerate(argv):
        if arg.startswith("-") and _NAME.search(arg.split("=", 1)[0]):
            value = arg.split("=", 1)[1] if "=" in arg else (argv[i + 1] if i + 1 < len(argv) else "")
        elif "=" in arg and not arg.startswith("-") and _NAME.search(arg.split("=", 1)[0]):
            value = arg.split("=", 1)[1]
        elif "://" in arg and "@" in arg.split("://", 1)[1]:
            userinfo = arg.split("://", 1)[1].rsplit("@", 1)[0]
            value = userinfo.split(":", 1)[1] if ":" in userinfo else ""
        else:
            continue
        if len(value) >= 4:
            _SEEN.add(value)


def redact(text: str) -> str:
    """`text` with every secret this process read blanked, and those given away by their shape."""
    for value in _SEEN:
        if value in text:
            text = text.replace(value, MASK)
    return scrub(text)
