"""Maintenance Manager's trace log (SMS\\LOGS\\MAINTMAN.LOG on the site server), as evidence.

Lines end in `  $$<SMS_MAINTENANCE_MANAGER><date time>`. Per cycle and logon server SMS
writes "~Working on logon server <name>" [Q200769]; a server it could not update gets
"Failed to perform replication on server <name>" (event 116 [Q122178]). The mock site
writes the same lines, and one per file it copied or found in use, so that deployer can
say *why* a logon server's Logon.srv is late, not only that it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..targets.base import FileTransport, TargetError
from . import layout

COMPONENT = "SMS_MAINTENANCE_MANAGER"
WORKING = "~Working on logon server "
FAILED = "Failed to perform replication on server "
IN_USE_RE = re.compile(r"^~File \\\\([^\\]+)\\SMS_SHR\\(\S+) is in use")
_TRAILER = re.compile(r"\s*\$\$<[^>]*><[^>]*>\s*$")
READ_LIMIT = 4 * 1024 * 1024  # only the tail a run produced is read; a log never fills memory


def format_line(text: str, stamp: str) -> str:
    return f"{text}  $$<{COMPONENT}><{stamp}>\r\n"


@dataclass
class ServerEvidence:
    worked_on: int = 0  # cycles that reached this server
    failures: list[str] = field(default_factory=list)  # the failure lines' text
    in_use: list[str] = field(default_factory=list)  # Logon.srv-relative files skipped as in use


@dataclass
class Evidence:
    servers: dict[str, ServerEvidence] = field(default_factory=dict)  # casefolded server name -> evidence

    def of(self, server: str) -> ServerEvidence:
        return self.servers.get(server.casefold(), ServerEvidence())

    def describe(self, server: str) -> str:
        """What the log says about a server, in a few words for an error message."""
        e = self.of(server)
        if e.failures:
            return f"Maintman.log: {e.failures[-1]}"
        if e.in_use:
            return f"Maintman.log: {', '.join(dict.fromkeys(e.in_use))} in use on {server}, not updated"
        if e.worked_on:
            return f"Maintman.log: worked on {server} {e.worked_on} time{'s' if e.worked_on != 1 else ''}"
        return f"Maintman.log: no cycle has reached {server} yet"


def parse(text: str) -> Evidence:
    ev = Evidence()
    for raw in text.splitlines():
        line = _TRAILER.sub("", raw).strip()
        if line.startswith(WORKING):
            name = line[len(WORKING):].split()[0] if line[len(WORKING):].split() else ""
            ev.servers.setdefault(name.casefold(), ServerEvidence()).worked_on += 1
        elif line.startswith(FAILED):
            rest = line[len(FAILED):]
            name = re.split(r"[\s:]", rest, maxsplit=1)[0]
            ev.servers.setdefault(name.casefold(), ServerEvidence()).failures.append(line)
        elif m := IN_USE_RE.match(line):
            ev.servers.setdefault(m.group(1).casefold(), ServerEvidence()).in_use.append(m.group(2))
    return ev


def size(files: FileTransport) -> int:
    """The log's current size: where the lines of what happens next will start."""
    st = files.stat(layout.MAINTMAN_LOG)
    return st.size if st is not None and not st.is_dir else 0


def read_since(files: FileTransport, offset: int) -> Evidence:
    """The evidence in the lines written after `offset` (from the start if the log was replaced
    by a shorter one); empty when there is no log (tracing off)."""
    try:
        st = files.stat(layout.MAINTMAN_LOG)
        if st is None or st.is_dir:
            return Evidence()
        start = offset if offset <= st.size else 0
        start = max(start, st.size - READ_LIMIT)
        data, pos = bytearray(), 0
        for chunk in files.read_chunks(layout.MAINTMAN_LOG):
            if pos + len(chunk) > start:
                data += chunk[max(0, start - pos):]
            pos += len(chunk)
    except TargetError:
        return Evidence()  # the log is supporting evidence only; the files' attributes decide
    return parse(data.decode("latin-1"))
