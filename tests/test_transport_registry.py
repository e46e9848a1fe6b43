"""Transports declare themselves (model/transport.py): adding one is one module, and the inventory
schema, validation, connect and the host limits follow from its declaration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, run_cli
from conformance.conftest import TARGETS
from deployer.model.transport import CAPABILITIES, FILES, REGISTRY, SERVICES

# A transport kept outside the package, in ONE module: its settings, host key, capabilities, and
# its factories (a folder of plain files on this machine standing in for a server's SMS root).
THROWAWAY = '''
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from deployer.model.transport import HARD_LINK, Implementation, Port, Transport, TransportSettings


class DropFiles(TransportSettings):
    """Files in a drop folder, fetched by a courier listening on host:port."""

    host: str = Field(description="the courier's host")
    port: Port = Field(default=7070, description="the courier's port")
    transport: Literal["drop"] = Field(description="drop")

    def reaches(self, server: Any) -> list[tuple[str, int]]:
        return [(self.host, self.port)]


TRANSPORT = Transport("drop", "a drop folder", files=DropFiles,
                      implementations={"drop": Implementation(__name__, frozenset({HARD_LINK}))},
                      labels={"files": "courier"})

from deployer.targets.connect import register_files  # noqa: E402  (only once the declaration stands)

OPENED = []


@register_files("drop")
def _drop(ctx):
    OPENED.append((ctx.name, ctx.server.files.host))
    return _mock_files(ctx)


from deployer.targets.connect import _mock_files  # noqa: E402
'''


def _inventory(path: Path, files: object, services: object = "mock", pcm_hosts: dict | None = None) -> Path:
    site = {"code": "DMO", "mock": {"path": "lab/DEMO"},
            "servers": {"SRV": {"role": "site_server", "platform": "x86", "files": files, "services": services}}}
    path.write_text(yaml.safe_dump({"sites": {"DEMO": {**site, **({"pcm_hosts": pcm_hosts} if pcm_hosts else {})}}},
                                   sort_keys=False))
    return path


NT4_FILES = {"transport": "smb", "host": "nt4wks", "username": "u", "password": {"env": "PW"}, "share": "PCM",
             "dialect": "smb1"}


def _with_throwaway(tmp_path: Path, code: str) -> subprocess.CompletedProcess:
    (tmp_path / "drop_transport.py").write_text(THROWAWAY)
    env = {**os.environ, "DEPLOYER_TRANSPORTS": "drop_transport",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)


def test_a_transport_in_one_module_is_in_the_schema_the_inventory_the_host_limits_and_connect(tmp_path: Path):
    inv = _inventory(tmp_path / "sites.yaml", {"transport": "drop", "host": "Courier1."})
    r = _with_throwaway(tmp_path, f"""
        import json
        from deployer import schema
        from deployer.cli import main
        from deployer.model.inventory import load_inventory
        from deployer.targets import host_limits
        from deployer.targets.connect import connect
        import drop_transport

        import sys
        site = load_inventory({str(inv)!r}).site("DEMO")
        print(json.dumps({{"schema": schema.schema("sites"),
                          "keys": [str(k) for k in host_limits.host_keys(site)]}}))
        sys.argv = ["deployer", "lab", "init", "--site", "DEMO", "-i", {str(inv)!r}]
        try:
            main()  # the mock site the throwaway's factory serves its files from
        except SystemExit as exc:
            assert not exc.code, exc.code
        with connect(site) as conn:
            files = conn.site_server.files
            print(json.dumps({{"opened": drop_transport.OPENED, "hard_link": conn.site_server.can("hard_link"),
                              "root": [f.name for f in files.listdir("")]}}))
        """)
    assert r.returncode == 0, r.stderr
    first, second = (json.loads(line) for line in r.stdout.splitlines() if line.startswith("{"))  # not lab init's
    defs = first["schema"]["$defs"]
    files = defs["Server"]["properties"]["files"]
    assert "drop" in files["anyOf"][0]["enum"] and {"$ref": "#/$defs/DropFiles"} in files["anyOf"][1]["oneOf"]
    assert defs["DropFiles"]["properties"]["host"]["description"] == "the courier's host"
    assert "drop (courier)" in files["description"]
    assert "drop" not in defs["Server"]["properties"]["services"]["anyOf"][0]["enum"]  # it serves no services
    assert first["keys"] == ["courier1:7070"]  # counted by the host limits, the name normalised
    assert second["opened"] == [["SRV", "Courier1."]]  # connect imported the module and called its factory
    assert second["hard_link"] is True and second["root"]  # its declared capability, its files served


def test_validate_knows_the_new_transport_and_suggests_it(tmp_path: Path):
    good = _inventory(tmp_path / "good.yaml", {"transport": "drop", "host": "c1"})
    typo = _inventory(tmp_path / "typo.yaml", {"transport": "dorp", "host": "c1"})
    r = _with_throwaway(tmp_path, f"""
        import sys
        from deployer.cli import main
        sys.argv = ["deployer", "validate", {str(good)!r}, {str(typo)!r}]
        main()
        """)
    assert r.returncode == 2, r.stdout + r.stderr
    out = r.stdout + r.stderr
    assert "good.yaml" in out and "typo.yaml:" in out
    assert "transport must be one of drop, mock, smb, ssh (did you mean 'drop'?)" in out


def test_a_mistyped_transport_names_the_closest(tmp_path: Path):
    inv = _inventory(tmp_path / "sites.yaml", "mock", {"transport": "scm", "host": "h"})
    r = run_cli("validate", inv)
    assert r.code == 2
    assert "services: transport must be one of mock, scmr, ssh (did you mean 'scmr'?)" in r.out + r.err
    assert "sites.yaml:" in r.out + r.err


def test_a_pcm_host_with_scmr_services_needs_an_smb_session_as_a_server_does(tmp_path: Path):
    inv = _inventory(tmp_path / "sites.yaml", "mock", pcm_hosts={"WKS1": {
        "files": {"transport": "ssh", "host": "wks1", "username": "u", "key_file": "k", "root": "/C:/PCMSVC"},
        "services": {"transport": "scmr"}}})
    r = run_cli("validate", inv)
    assert r.code == 2, r.out
    assert "scmr runs on an SMB connection" in r.out + r.err and "Traceback" not in r.out + r.err


def test_a_pcm_host_over_smb1_takes_the_smb1_transports_and_is_warned_of(tmp_path: Path):
    from deployer.model.inventory import load_inventory
    from deployer.targets.connect import transport_names, warn_smb1

    inv = _inventory(tmp_path / "sites.yaml", "mock", pcm_hosts={"NT4WKS": {"files": NT4_FILES, "services": "scmr"}})
    site = load_inventory(inv).site("DEMO")
    host = site.site.pcm_hosts["NT4WKS"]
    assert transport_names(host) == ("smb1", "scmr/smb1")
    heard: list[str] = []
    warn_smb1(site, heard.append)
    assert len(heard) == 1 and heard[0].startswith("Warning: NT4WKS reached over SMB1")


def test_every_declared_implementation_is_importable_and_its_capabilities_are_known():
    decls = REGISTRY.all()
    assert {"mock", "smb", "scmr", "ssh"} <= set(decls)
    for decl in decls.values():
        assert decl.files or decl.services, decl.key
        for role in (FILES, SERVICES):
            model = decl.settings(role)
            if model is not None:
                assert model.model_fields["transport"].annotation.__args__ == (decl.key,)
        for impl in decl.implementations.values():
            assert set(impl.capabilities) <= set(CAPABILITIES)


def test_every_file_implementation_has_its_conformance_entry():
    """Adding a transport is its module plus its conformance-suite entry: CI fails without the entry."""
    implementations = {name for d in REGISTRY.all().values() if d.files for name in d.implementations}
    assert implementations == set(TARGETS)


@pytest.mark.parametrize("key", ["mock", "smb", "ssh"])
def test_the_schema_lists_each_file_transport_from_its_declaration(key: str):
    from deployer import schema

    files = schema.schema("sites")["$defs"]["Server"]["properties"]["files"]
    assert key in files["anyOf"][0]["enum"] and key in files["description"]


@pytest.mark.parametrize("module, says", [
    ("no_such_transport", "names 'no_such_transport', which cannot be imported (ModuleNotFoundError"),
    ("json", "$DEPLOYER_TRANSPORTS: json declares no transport"),
    ("second_smb", "declares transport 'smb', which is declared already"),
])
def test_a_bad_transport_module_in_the_environment_is_bad_input_not_a_traceback(tmp_path: Path, module: str,
                                                                                 says: str):
    (tmp_path / "second_smb.py").write_text("from deployer.model.transports.smb import TRANSPORT\n")
    env = {**os.environ, "DEPLOYER_TRANSPORTS": f"{module}", "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    r = subprocess.run([sys.executable, "-m", "deployer", "validate", str(ROOT / "sites.yaml")], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert says in r.stderr and "Traceback" not in r.stderr


def test_a_pcm_host_is_refused_settings_its_dialect_does_not_have(tmp_path: Path):
    inv = _inventory(tmp_path / "sites.yaml", "mock", pcm_hosts={"NT4WKS": {
        "files": NT4_FILES, "services": {"transport": "scmr", "encrypt": True}}})
    r = run_cli("validate", inv)
    assert r.code == 2
    assert "services: SMB1 has no encryption: encrypt: true needs SMB 3" in r.out + r.err
