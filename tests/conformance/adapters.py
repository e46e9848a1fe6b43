"""What each target must provide to run the conformance suite.

A server plugin (tests/servers/*.py) offers, per target kind K, the fixtures
`K_files_under_test` and `K_services_under_test` returning these objects. The suite in
this folder runs every test against every target; a target that is not Windows says so
in `differences`, and the test asserts the documented difference instead of skipping.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Callable

from deployer.targets.base import FileTransport, ServiceTransport

# names of documented differences from Windows
NO_SHARING_VIOLATIONS = "no_sharing_violations"  # no mandatory locks: an open file can be replaced
NO_READONLY_ENFORCEMENT = "no_readonly_enforcement"
CUSTOM_CODES_ARE_87 = "custom_codes_are_87"  # every user-defined control code answered with 87
CONTROL_STOPPED_NOT_1062 = "control_stopped_not_1062"


@dataclass
class FilesUnderTest:
    kind: str  # mock, smb, ssh
    files: FileTransport  # rooted at the server's SMS root (the share)
    base: str  # a fresh, empty folder below the root, for this test alone
    hold_open: Callable[[str], AbstractContextManager]  # another client holds the file open (denies write/delete)
    set_readonly: Callable[[str], None]  # make a file read-only out of band
    mtime_resolution_ns: int = 100  # FILETIME steps
    differences: set[str] = field(default_factory=set)


@dataclass
class ServicesUnderTest:
    kind: str
    services: ServiceTransport
    service: str  # an installed service, running when the test starts
    accepted_code: int  # a user-defined code the service accepts (on Windows)
    refused_code: int  # a user-defined code the service does not accept: 1052 on Windows
    differences: set[str] = field(default_factory=set)
