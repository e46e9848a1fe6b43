"""Runs every conformance test against every target: the embedded mock, SMB 2/3 and SMB1 against
real Samba servers, and SSH against a real OpenSSH server."""

from __future__ import annotations

import pytest

TARGETS = ["mock", "smb", "smb1", "ssh"]


@pytest.fixture(params=TARGETS)
def files_target(request):
    return request.getfixturevalue(f"{request.param}_files_under_test")


@pytest.fixture(params=TARGETS)
def services_target(request):
    return request.getfixturevalue(f"{request.param}_services_under_test")
