"""The embedded mock target as a conformance-suite target."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from conformance.adapters import FilesUnderTest, ServicesUnderTest
from deployer.simulator.lab import server_services
from deployer.targets.mock import FORMAT, SITE_FILE, MockSite, sms_dir
from deployer.simulator.fs import hold_open, write_json_atomic


def make_mock_server(root: Path, name: str = "TESTSRV") -> MockSite:
    """A one-server mock site: an empty SMS root and the SMS site services, running."""
    root.mkdir(parents=True, exist_ok=True)
    write_json_atomic(root / SITE_FILE, {"format": FORMAT, "site": "TEST", "code": "TST", "timezone": "UTC",
                                         "platforms": ["x86"], "servers": {name: {"role": "site_server",
                                                                                  "platform": "x86",
                                                                                  "sms_root": "C:\\SMS"}}})
    sms_dir(root / name, "C:\\SMS").mkdir(parents=True)
    services = server_services("site_server", "x86")
    site = MockSite(root)
    files = site.files(name)
    for svc in services.values():
        for rel in [svc["image"], *svc["modules"]]:
            files.makedirs(rel.rsplit("\\", 1)[0])
            if files.stat(rel) is None:
                files.write_file(rel, [b"MZ"])
    write_json_atomic(root / name / "scm.json", {"services": services})
    return site


@pytest.fixture
def mock_files_under_test(tmp_path: Path) -> FilesUnderTest:
    site = make_mock_server(tmp_path / "mock")
    files = site.files("TESTSRV")
    base = f"conformance-{uuid.uuid4().hex[:8]}"
    files.mkdir(base)

    def set_readonly(rel: str) -> None:
        files._resolve(rel).chmod(0o444)

    return FilesUnderTest("mock", files, base, lambda rel: hold_open(site.server_dir("TESTSRV"), rel), set_readonly,
                          mtime_resolution_ns=1)


@pytest.fixture
def mock_services_under_test(tmp_path: Path) -> ServicesUnderTest:
    site = make_mock_server(tmp_path / "mock")
    return ServicesUnderTest("mock", site.services("TESTSRV"), "SMS_SITE_CONFIG_MANAGER", accepted_code=192,
                             refused_code=131)
