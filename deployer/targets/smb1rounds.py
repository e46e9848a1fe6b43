"""What SMB1's batches of writes share (smb1batch.py's copies, smb1write.py's uploads): an
answer's status, a WRITE_ANDX's answer checked, and the last round of written files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from .adapters import impacket_internals as lib
from .adapters import impacket_pipeline as pipe
from .base import TargetError
from .smbsession import status_error

if TYPE_CHECKING:
    from .smb1 import Smb1FileTransport


def _status(answer: Any) -> int | None:
    return lib.status_of(answer) if isinstance(answer, lib.SessionError) else None


def check_written(t: "Smb1FileTransport", rel: str, want: int, got: Any) -> TargetError | None:
    """The error of a WRITE_ANDX answered `got` for `want` bytes, or None."""
    if _status(got) is not None:
        return status_error(_status(got) or 0, "write", server=t.server, path=rel)
    if got != want:
        return TargetError(f"write: the server wrote {got} of {want} bytes", server=t.server, path=rel)
    return None


def finish_written(t: "Smb1FileTransport", tid: int, opened: dict[int, lib.Opened], when: dict[int, int],
                   out: list[TargetError | None], rel_of: Callable[[int], str]) -> None:
    """Each written file's write time set (FILETIME, where `when` has one) and FLUSHed, then every
    handle CLOSEd, in this order (every WRITE answered before: nothing asynchronous left under
    the CLOSE), all files together in one round trip; a failure noted in `out`."""
    finishing: list[tuple[int, str]] = []
    requests = []
    for k, o in opened.items():
        if out[k] is None:
            if k in when:
                requests.append(pipe.set_write_time(tid, o.fid, when[k]))
                finishing.append((k, "set write time"))
            requests.append(pipe.flush(tid, o.fid))
            finishing.append((k, "write"))
        requests.append(pipe.close(tid, o.fid))
        finishing.append((k, "write"))
    for (k, what), got in zip(finishing, pipe.round_trip(t.link.conn, requests)):
        if out[k] is None and _status(got) is not None:
            out[k] = status_error(_status(got) or 0, what, server=t.server, path=rel_of(k))
