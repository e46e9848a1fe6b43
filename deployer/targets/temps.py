"""Every temporary name written beside a site's files, in one registry.

Whoever writes a file through a temporary name (deployer's staging and restores, the
simulated Site Configuration Manager's site reset, Maintenance Manager's replication and
copy lists, a transport that renames a file aside) takes the name from here, and the undo
(run/folders.py) recognises a leftover of an interrupted write by the same table: a writer
added without an entry here cannot name its temporary files, so recovery cannot forget them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TempKind:
    key: str
    suffix: str  # appended to the destination's name; `open` kinds add a tail after it
    writer: str  # who writes it, for messages
    open: bool = False  # the suffix is followed by more text (a run's tail, a random tag)


DEPLOYER = TempKind("deployer", ".~dpl-", "deployer (a staged or restored copy)", open=True)
SITE_RESET = TempKind("scm", ".~scm", "Site Configuration Manager's site reset")
MAINTMAN = TempKind("maintman", ".~mm", "Maintenance Manager")
SMB1_ASIDE = TempKind("smb1-aside", ".~smb1-old", "an SMB1 replace (the old file renamed aside)")
SFTP_ASIDE = TempKind("sftp-aside", ".~old-", "an SFTP replace (the old file renamed aside)", open=True)

KINDS: tuple[TempKind, ...] = (DEPLOYER, SITE_RESET, MAINTMAN, SMB1_ASIDE, SFTP_ASIDE)


def temp_name(dest: str, kind: TempKind, tail: str = "") -> str:
    """The temporary name `kind`'s writer uses for `dest` (a path or a bare name)."""
    if kind not in KINDS:
        raise ValueError(f"{kind.key} is not a registered temporary name (deployer/targets/temps.py)")
    if tail and not kind.open:
        raise ValueError(f"{kind.key} temporary names take no tail")
    return f"{dest}{kind.suffix}{tail}"


def staged_name(dest: str, run: str, purpose: str = "new") -> str:
    """deployer's temporary name for `dest` during run `run`: a staged copy (`new`) or a restore."""
    return temp_name(dest, DEPLOYER, f"{run[-4:]}-{purpose}")


def parse(name: str) -> tuple[str, TempKind] | None:
    """(the name it is a temporary copy of, its kind) for a registered temporary name, else None."""
    low = name.casefold()
    for kind in KINDS:
        suffix = kind.suffix.casefold()
        at = low.rfind(suffix)
        if at <= 0:
            continue
        if kind.open or at + len(suffix) == len(low):
            return name[:at], kind
    return None
