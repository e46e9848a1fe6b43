"""Runs every conformance test against every target: the embedded mock, SMB against a real
Samba server, and SSH against a real OpenSSH server."""

from __future__ import annotations

import pytest

TARGETS = ["mock", "smb", "ssh"]


@pytest.fixture(params=TARGETS)
def files_target(request):
    return request.getfixturevalue(f"{request.param}_files_under_test")


@pytest.fixture(params=TARGETS)
def services_target(request):
    return request.getfixturevalue(f"{request.param}_services_under_test")
