"""JSON Schemas of the YAML files: generated from the models, shipped in the package, named
by every YAML file of the repository, and honest about what the loader accepts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from conftest import ROOT, run_cli
from deployer import schema
from deployer.model.inventory import load_inventory
from deployer.model.manifest import load_manifest
from deployer.model.yamlsrc import load_yaml

HEADER = re.compile(r"\A# yaml-language-server: \$schema=(\S+)\n")
SKIP_DIRS = {".venv", "lab", "payloads", "build", "dist", "test-output", "__pycache__", "node_modules"}
# The one YAML file that cannot carry the line: the case it tests is a file with nothing in it.
NO_HEADER = {"tests/corpus/playbooks/empty.yaml"}
# Other tools' YAML, with their own formats: the peer benchmark's Ansible playbook.
FOREIGN = {"bench/peers/ansible/hotfix.yml"}


def _yaml_files() -> list[Path]:
    out = []
    for p in ROOT.rglob("*"):
        rel = p.relative_to(ROOT)
        if p.suffix in (".yaml", ".yml") and p.is_file() and rel.as_posix() not in FOREIGN and not any(
                part in SKIP_DIRS or part.startswith(".") for part in rel.parts):
            out.append(p)
    return sorted(out)


def _kind(p: Path) -> str:
    return "sites" if p.name == "sites.yaml" or p.parent.name == "inventories" else p.parent.name.rstrip("s")


def _validator(kind: str) -> jsonschema.Draft202012Validator:
    committed = json.loads((schema.SCHEMA_DIR / f"{kind}.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(committed)
    return jsonschema.Draft202012Validator(committed)


@pytest.mark.parametrize("kind", schema.KINDS)
def test_committed_schemas_are_what_the_models_generate(kind: str):
    committed = (schema.SCHEMA_DIR / f"{kind}.json").read_text(encoding="utf-8")
    assert committed == schema.text(kind), (f"deployer/schemas/{kind}.json drifted from the models; regenerate it "
                                            "with: python -m deployer.schema --write")


@pytest.mark.parametrize("kind", schema.KINDS)
def test_deployer_schema_prints_the_shipped_schema(kind: str, tmp_path: Path):
    r = run_cli("schema", kind)
    assert r.code == 0, r.text
    assert r.out == (schema.SCHEMA_DIR / f"{kind}.json").read_text(encoding="utf-8")
    printed = r.out
    r = run_cli("schema", kind, "-o", tmp_path / "s.json")
    assert r.code == 0 and r.out == "" and (tmp_path / "s.json").read_text(encoding="utf-8") == printed
    assert run_cli("schema", "inventory").code == 2


def test_every_yaml_file_names_its_schema():
    files = _yaml_files()
    assert len(files) > 100  # the corpus is there: the walk did not miss the tree
    for p in files:
        rel = p.relative_to(ROOT).as_posix()
        m = HEADER.match(p.read_bytes().decode("latin-1"))
        if rel in NO_HEADER:
            assert m is None and p.stat().st_size == 0
            continue
        assert m, f"{rel}: the first line must be # yaml-language-server: $schema=<path to deployer/schemas/...>"
        target = (p.parent / m.group(1)).resolve()
        assert target == (schema.SCHEMA_DIR / f"{_kind(p)}.json").resolve(), f"{rel} names {m.group(1)}"


def test_every_yaml_file_outside_the_bad_input_corpus_validates():
    checked = 0
    for p in _yaml_files():
        if "corpus" in p.relative_to(ROOT).parts:
            continue
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in _validator(_kind(p)).iter_errors(load_yaml(p).data)]
        assert not errors, f"{p.relative_to(ROOT)}: " + "; ".join(errors)
        checked += 1
    assert checked >= 3


# Mistakes of form that an editor can show while typing; the corpus holds them as files the
# loader refuses, and the schema must refuse them too.
SCHEMA_REFUSES = {
    "manifests": ["date-words", "files-empty", "missing-column", "name-with-path", "platform-unknown",
                  "row-not-a-mapping", "rule-unknown", "sha256-short", "size-megabytes", "size-negative",
                  "unknown-column", "version-text", "kb-not-an-article"],
    "playbooks": ["platform-unknown", "reset-timeout-zero", "sendcode-code-as-text", "sendcode-127", "sendcode-300",
                  "servers-bad-selector", "steps-empty", "steps-not-a-list", "two-actions-in-a-step", "unknown-step",
                  "unknown-top-key", "service-declared-code-out-of-range", "missing-payloads"],
    "inventories": ["no-sites", "password-literal", "password-literal-list", "password-two-sources",
                    "password-value-key", "platform-unknown", "port-name", "port-out-of-range", "port-zero",
                    "role-unknown", "service-transport-unknown", "site-code-2-chars", "site-code-4-chars",
                    "site-code-number", "site-code-punctuation", "smb-missing-settings", "ssh-unknown-key",
                    "timeout-too-long", "transport-unknown", "unknown-server-key", "vars-list", "server-name-invalid"],
}


@pytest.mark.parametrize("case", [f"{d}/{n}" for d, names in SCHEMA_REFUSES.items() for n in names])
def test_the_schema_refuses_what_the_loader_refuses_for_its_form(case: str):
    p = ROOT / "tests" / "corpus" / f"{case}.yaml"
    kind = _kind(p)
    assert list(_validator(kind).iter_errors(load_yaml(p).data)), f"the {kind} schema accepts {case}"


SPELLINGS = [
    {"date": "9/10/99", "time": "7:00PM", "size": "524KB", "platform": "I386"},
    {"date": "04/22/2000", "time": "11:01a", "size": "254,400", "platform": "Intel"},
    {"date": "1999-09-10", "time": "19:00", "size": 453904, "platform": "(x86)"},
    {"date": "05/15/00", "time": "6:58 pm", "size": "1147 KB", "platform": "dec alpha", "version": "1.2.0.0"},
    {"date": "12/1/1999", "time": "7:00:30", "size": "535,616 bytes", "platform": "ALPHA", "version": 1.2,
     "sha256": "AB" * 32},
]


@pytest.mark.parametrize("row", SPELLINGS, ids=lambda r: f"{r['date']} {r['time']} {r['size']} {r['platform']}")
def test_the_article_spellings_the_loader_reads_pass_the_schema(row: dict, tmp_path: Path):
    doc = {"kb": "Q241656", "files": [{"name": "Base.dll", **row}]}
    p = tmp_path / "m.yaml"
    p.write_text(json.dumps(doc), encoding="utf-8")  # JSON is YAML
    load_manifest(p)  # the loader takes it...
    assert not list(_validator("manifest").iter_errors(load_yaml(p).data))  # ...and so does the schema


def test_an_inventory_with_every_transport_passes_the_loader_and_the_schema(tmp_path: Path):
    text = """
sites:
  PROD:
    code: p01
    timezone: Europe/Berlin
    mock: {path: lab/PROD}
    platforms: [x86, Alpha]
    vars: {share_root: x, depth: 2, strict: true}
    servers:
      SMSSRV01:
        role: site_server
        platform: x86
        files: {transport: smb, host: h, share: SMS_SHRC, username: u, password: {env: P}, port: "445", dialect: SMB1}
        services: scmr
      LOGON-2:
        role: logon_server
        platform: intel
        sms_root: 'D:\\SMS'
        files: {transport: ssh, host: h, username: u, key_file: k, root: /D:/SMS, timeout: 12.5}
        services: {transport: ssh, host: h, username: u, password: {prompt: true}}
      HELP_3:
        role: helper_server
        platform: alpha
        files: mock
  DEMO:
    code: DMO
    mock: {path: lab/DEMO}
    servers:
      DEMOSRV: {role: site_server, platform: x86}
"""
    p = tmp_path / "sites.yaml"
    p.write_text(text, encoding="utf-8")
    load_inventory(p)
    errors = [e.message for e in _validator("sites").iter_errors(load_yaml(p).data)]
    assert not errors
