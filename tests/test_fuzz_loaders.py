"""Fuzzing the loaders: whatever the input, an InputError with a location or a result.

Every loader of user input (YAML, manifests, playbooks, inventories, saved plans) either
succeeds or raises deployer.errors.InputError whose location names the file and the line;
never another exception (a traceback instead of a message), never a hang. The attribute
parsers raise only ValueError (AttrError); path rules give a RelPath strictly below the SMS
root or PathRuleError.

Inputs are arbitrary text and bytes, YAML-shaped token soup, and structured mutations of
the valid files (keys deleted, renamed, values replaced by other types, lists repeated):
the last are the likely mistakes, and they get past the YAML parser to the models.
Example counts are sized to keep the whole file under about 20 seconds.
"""

from __future__ import annotations

import os

import contextlib
import copy
import json
import signal
from datetime import date, time
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT, copy_project, run_cli
from deployer.model import templating, winpath
from deployer.errors import InputError, InputErrors
from deployer.model.inventory import load_inventory
from deployer.model.manifest import load_manifest
from deployer.steps.playbook import load_playbook
from deployer.plan.saved import digest, load_plan
from deployer.sms import attrs
from deployer.model.yamlsrc import parse_yaml

# In CI the examples are derived from each test's name (derandomize), so a CI run is
# reproducible and cannot fail on a new random example; run locally to explore further.
FUZZ = settings(deadline=2000, max_examples=150, derandomize=os.environ.get("CI") == "true",
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
HANG_SECONDS = 5


class Hang(Exception):
    pass


@contextlib.contextmanager
def no_hang(seconds: int = HANG_SECONDS) -> Iterator[None]:
    """Fail an example that runs for seconds (hypothesis's deadline only measures finished ones)."""
    def alarm(signum: int, frame: Any) -> None:
        raise Hang(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def assert_located(exc: InputError, file: Path | str) -> None:
    """An InputError (or each of several) names the file and a line in it."""
    errors = exc.errors if isinstance(exc, InputErrors) else [exc]
    assert errors
    for e in errors:
        assert e.location is not None, f"no location: {e}"
        assert Path(e.location.file).name == Path(file).name, f"located in another file: {e}"
        assert e.location.line is not None and e.location.line >= 1, f"no line: {e}"
        assert str(e).startswith(f"{e.location.file}:{e.location.line}"), str(e)
        assert e.message.strip(), f"empty message: {e!r}"


def attempt(load, path: Path, located_in: Path | None = None) -> Any:
    """Run a loader: its result, or None after checking the InputError it raised."""
    with no_hang():
        try:
            return load(path)
        except InputError as exc:
            assert_located(exc, located_in or path)
            return None


# --- inputs ----------------------------------------------------------------------------------------

YAML_TOKENS = [": ", "- ", "\n", "\n  ", "\n    ", "[", "]", "{", "}", ", ", "&a ", "*a", "&b ", "*b", "!!str ",
               "!!python/object:os.system ", "!custom ", "'", '"', "#", "? ", "|\n", ">\n", "---\n", "...\n", "<<: ",
               "\t", "key", "steps", "files", "sites", "0x1F", "19:00", "9/10/99", "1e999", "9" * 120, "null", "~",
               "true", "\\u0000", "\\ud800", "%YAML 1.1\n", "\x07", "\x85", "\u2028", "é", "\ufeff",
               "7" * 5000]  # more digits than Python converts (int() raised a bare ValueError)
yaml_soup = st.lists(st.sampled_from(YAML_TOKENS), max_size=40).map("".join)
any_text = st.one_of(st.text(max_size=300), yaml_soup)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.text(max_size=30), st.sampled_from(["", "..", "C:\\", "\\\\host\\share", "{{ x }}", "CON",
                                                            "194", "0x80", "hunter2-Secret!", "9/31/99"]),
                    # templates: jinja2's parser recursed into a RecursionError on the first
                    st.sampled_from(["{{ " + "(" * 300 + "sms_root" + ")" * 300 + " }}", "{{ " + "-" * 500 + "1 }}",
                                     "{% for i in range(9) %}x{% endfor %}", "{{ sms_root.__class__ }}", "{{ sms_root"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(st.text(max_size=10), inner, max_size=3)),
                      max_leaves=8)


def _paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path in a document (mapping keys and list indexes)."""
    out = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, prefix + (i,))
    return out


@st.composite
def mutated(draw: st.DrawFn, original: Any) -> Any:
    """The document with 1-4 likely mistakes: a key deleted or renamed, a value replaced by
    another (often of another type), an entry repeated."""
    data = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(data) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        key = path[-1]
        op = draw(st.sampled_from(["delete", "replace", "rename", "repeat", "swap"]))
        if op == "delete":
            del parent[key]
        elif op == "replace":
            parent[key] = draw(values)
        elif op == "rename" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = parent.pop(key)
        elif op == "repeat" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
        elif op == "swap":  # the same value as another type: 194 <-> "194", [x] <-> x
            v = parent[key]
            parent[key] = str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else \
                v[0] if isinstance(v, list) and v else [v]
    return data


def dump(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, default_flow_style=None)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """playbooks/, manifests/ and payloads-free copies, so a playbook's ../manifests/ resolves."""
    return copy_project(tmp_path_factory.mktemp("fuzz"))


def _valid(path: Path) -> Any:
    return parse_yaml(path.read_text(), path).data


VALID_PLAYBOOK = _valid(ROOT / "playbooks" / "q241656.yaml")
VALID_MANIFEST = _valid(ROOT / "manifests" / "q241656.yaml")
# the inventory with a second site reached over SMB and SSH, so mutations reach those models too
VALID_INVENTORY = _valid(ROOT / "sites.yaml")
VALID_INVENTORY["sites"]["REMOTE"] = {
    "code": "RMT", "timezone": "UTC", "servers": {
        "RMTSRV": {"role": "site_server", "platform": "x86", "sms_root": "C:\\SMS",
                   "files": {"transport": "smb", "host": "rmtsrv", "username": "deployer",
                             "password": {"env": "DEPLOYER_PW"}, "share": "SMS_SHRC"},
                   "services": {"transport": "scmr"}},
        "RMTLOG": {"role": "logon_server", "platform": "alpha", "sms_root": "D:\\SMS",
                   "files": {"transport": "ssh", "host": "rmtlog", "username": "deployer", "root": "/D:/SMS",
                             "key_file": "~/.ssh/id_ed25519"},
                   "services": {"transport": "ssh", "host": "rmtlog", "username": "deployer"}}}}


def test_the_valid_files_load(fuzz_dir: Path):
    """The seeds of the mutations are valid: otherwise every mutation would only test one error."""
    assert load_playbook(fuzz_dir / "playbooks" / "q241656.yaml").kb == "Q241656"
    assert len(load_manifest(fuzz_dir / "manifests" / "q241656.yaml").manifest.files) == 9
    inv = fuzz_dir / "fuzz-inventory.yaml"
    inv.write_text(dump(VALID_INVENTORY))
    assert [s.name for s in load_inventory(inv).all_sites()] == ["DEMO", "REMOTE"]


# --- the YAML parser ----------------------------------------------------------------------------------


@FUZZ
@given(text=any_text)
def test_parse_yaml_gives_a_document_or_a_located_error(text: str):
    path = Path("fuzz.yaml")
    with no_hang():
        try:
            parse_yaml(text, path)
        except InputError as exc:
            assert_located(exc, path)


# --- the loaders, from raw bytes and from mutated valid files -------------------------------------------

LOADERS = {"playbook": (load_playbook, "playbooks"), "manifest": (load_manifest, "manifests"),
           "inventory": (load_inventory, ".")}


@FUZZ
@given(kind=st.sampled_from(sorted(LOADERS)), raw=st.one_of(st.binary(max_size=300), any_text.map(str.encode)))
def test_loaders_on_arbitrary_bytes(fuzz_dir: Path, kind: str, raw: bytes):
    load, folder = LOADERS[kind]
    path = fuzz_dir / folder / f"fuzz-{kind}.yaml"
    path.write_bytes(raw)
    attempt(load, path)


@FUZZ
@given(data=mutated(VALID_PLAYBOOK))
def test_load_playbook_on_mutations(fuzz_dir: Path, data: Any):
    path = fuzz_dir / "playbooks" / "fuzz-playbook.yaml"
    path.write_text(dump(data))
    manifest = fuzz_dir / "manifests" / "q241656.yaml"
    # a mutated manifest: key may name another file; the error is then in that file, or at manifest:
    with no_hang():
        try:
            load_playbook(path)
        except InputError as exc:
            errors = exc.errors if isinstance(exc, InputErrors) else [exc]
            for e in errors:
                assert_located(e, manifest if e.location and Path(e.location.file).name == manifest.name else path)


TEMPLATE_TOKENS = ["{{ ", " }}", "{% ", " %}", "(", ")", "[", "]", "-", "not ", "sms_root", "platform", "x", ".",
                   "__class__", "|upper", "|join", "for i in range(99999)", "endfor", "if ", "endif", "else", " ~ ",
                   " * ", " ** ", " % ", "99", "\\", "C:", "..", "macro f()", "f()", "endmacro", "set y = "]
# expressions from a small grammar, so that most of them parse and reach the sandbox
template_atoms = st.sampled_from(["sms_root", "platform", "undefined_name", "'a'", "9", "99999", "lipsum", "cycler",
                                  "range(3)", "range(99999)", "namespace", "self"])
template_exprs = st.recursive(template_atoms, lambda inner: st.one_of(
    inner.map(lambda e: f"({e})"),
    st.tuples(inner, st.sampled_from([" ~ ", " * ", " ** ", " % ", " + ", " // "]), inner).map("".join),
    st.tuples(inner, st.sampled_from(["|upper", "|join", "|list", "|length", "|replace('', 'ab')", "|center(99)",
                                      "|default('x')"])).map("".join),
    st.tuples(inner, st.sampled_from([".__class__", ".upper()", ".ljust(9999)", ".format(1)", "[0]", ".__init__",
                                      ".__globals__"])).map("".join),
), max_leaves=10)


@st.composite
def structured_templates(draw: st.DrawFn) -> str:
    body = "{{ " + draw(template_exprs) + " }}"
    for n in range(draw(st.integers(0, 3))):  # range bombs: for loops nested over big iterables
        over = draw(st.sampled_from(["range(99999)", "range(3)", "sms_root", "lipsum(99)", "[1, 2]"]))
        body = f"{{% for i{n} in {over} %}}{body}{{% endfor %}}"
    if draw(st.booleans()):
        body = draw(st.sampled_from(["{% if role == 'site_server' %}", "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
                                     "{% set y = 9 %}", ""])) + body + ("{% endif %}" if "{% if" in body else "")
    return r"{{ sms_root }}\Site.srv\\" + body


nested = st.integers(1, 400).map(lambda n: "{{ " + "(" * n + "sms_root" + ")" * n + " }}")
templates = st.one_of(st.text(max_size=60), st.lists(st.sampled_from(TEMPLATE_TOKENS), max_size=30).map("".join),
                      structured_templates(), nested)
TEMPLATE_VARS = {"sms_root": "C:\\SMS", "platform": "X86", "platform_name": "x86", "platform_folder": "X86.BIN",
                 "site": "DEMO", "site_code": "DMO", "server": "DEMOSRV", "server_platform": "x86", "role": "site_server"}


@FUZZ
@given(template=templates)
def test_playbook_templates(fuzz_dir: Path, template: str):
    """A destination template is checked when the playbook loads and rendered when it is planned:
    both end in a path or a TemplateProblem, without hanging or exhausting memory."""
    data = copy.deepcopy(VALID_PLAYBOOK)
    data["steps"][1]["replace"]["into"] = template
    path = fuzz_dir / "playbooks" / "fuzz-template.yaml"
    path.write_text(dump(data))
    if attempt(load_playbook, path) is None:
        return
    with no_hang():
        try:
            out = templating.render(template, TEMPLATE_VARS)
        except templating.TemplateProblem:
            return
    assert isinstance(out, str) and len(out) <= templating.MAX_RENDERED


@FUZZ
@given(data=mutated(VALID_MANIFEST))
def test_load_manifest_on_mutations(fuzz_dir: Path, data: Any):
    path = fuzz_dir / "manifests" / "fuzz-manifest.yaml"
    path.write_text(dump(data))
    attempt(load_manifest, path)


@FUZZ
@given(data=mutated(VALID_INVENTORY))
def test_load_inventory_on_mutations(fuzz_dir: Path, data: Any):
    path = fuzz_dir / "fuzz-inventory.yaml"
    path.write_text(dump(data))
    inv = attempt(load_inventory, path)
    if inv is None:
        return
    for site in inv.all_sites():  # a loaded inventory is usable: codes, servers, platforms
        assert len(site.code) == 3 and site.site.site_server_name in site.site.servers
        assert site.site.platform_list


# --- saved plans ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def valid_plan(workspace_template: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("fuzzplan") / "plan.json"
    r = run_cli("plan", "playbooks/q241656.yaml", "--site", "DEMO", "--out", out, cwd=workspace_template)
    assert r.code == 0, r.text
    return json.loads(out.read_text())


@FUZZ
@given(raw=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode),
                     st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                                  lambda i: st.lists(i, max_size=3) | st.dictionaries(st.text(max_size=8), i, max_size=3),
                                  max_leaves=10).map(lambda d: json.dumps(d).encode())))
def test_load_plan_on_arbitrary_bytes(tmp_path_factory: pytest.TempPathFactory, raw: bytes):
    path = _plan_path(tmp_path_factory)
    path.write_bytes(raw)
    assert attempt(load_plan, path) is None  # nothing arbitrary is a plan: there is a digest to match


_PLAN_DIR: list[Path] = []


def _plan_path(factory: pytest.TempPathFactory) -> Path:
    if not _PLAN_DIR:
        _PLAN_DIR.append(factory.mktemp("fuzzplans"))
    return _PLAN_DIR[0] / "fuzz-plan.json"


@pytest.mark.slow  # started first (tests/conftest.py)
@settings(FUZZ, max_examples=200)
@given(data=st.data(), resign=st.booleans())
def test_load_plan_on_mutations(tmp_path_factory: pytest.TempPathFactory, valid_plan: dict, data: st.DataObject,
                                resign: bool):
    """Mutated plans, half of them re-signed: a digest can be recomputed by whoever edits the
    file, so what lies behind it (types, actions, paths) must be checked as well."""
    plan = data.draw(mutated(valid_plan))
    if resign and isinstance(plan, dict):
        plan["digest"] = digest(plan)
    path = _plan_path(tmp_path_factory)
    path.write_text(json.dumps(plan, indent=1))
    loaded = attempt(load_plan, path)
    if loaded is None:
        return
    assert resign or plan == valid_plan  # unsigned edits never pass the digest
    for a in loaded.actions:  # what apply will touch: plain paths below the SMS root
        for p in [getattr(a, "path", None)] + [c.path for c in getattr(a, "copies", [])]:
            if p is not None:
                assert ".." not in winpath.split(p) and ":" not in p and not p.startswith("\\")


# --- file attributes --------------------------------------------------------------------------------------

date_like = st.one_of(
    st.text(max_size=20),
    st.from_regex(r"\A[0-9]{1,5}/[0-9]{1,5}/[0-9]{1,6}\Z"),
    st.from_regex(r"\A[0-9]{1,5}-[0-9]{1,3}-[0-9]{1,3}\Z"),
    st.integers(), st.floats(), st.none(), st.booleans(),
)


@settings(FUZZ, max_examples=300)
@given(value=date_like)
def test_parse_date(value: Any):
    try:
        d = attrs.parse_date(value)
    except ValueError:  # AttrError, or a ValueError: nothing else
        return
    assert isinstance(d, date)
    text = str(value).strip()
    if text.count("/") == 2:  # M/D/Y as the articles write it: the month and the day are what was written
        month, day, _ = (int(x) for x in text.split("/"))
        assert (d.month, d.day) == (month, day)


@settings(FUZZ, max_examples=300)
@given(value=st.one_of(st.text(max_size=15), st.from_regex(r"\A[0-9]{1,3}:[0-9]{1,3}(:[0-9]{1,3})?\s?[AaPp]?[Mm]?\Z"),
                       st.integers(), st.floats(), st.none()))
def test_parse_time(value: Any):
    try:
        t = attrs.parse_time(value)
    except ValueError:
        return
    assert isinstance(t, time)


@settings(FUZZ, max_examples=300)
@given(value=st.one_of(st.text(max_size=30), st.from_regex(r"\A[0-9,]{1,30}\s?(KB|K|kb|k|bytes|B)?\Z"),
                       st.integers(), st.integers(-10**5000, 10**5000), st.floats(), st.booleans(), st.none()))
def test_parse_size(value: Any):
    try:
        s = attrs.parse_size(value)
    except ValueError:
        return
    assert isinstance(s, attrs.SizeSpec) and s.value >= 0 and s.unit in ("B", "KB")
    low, high = s.byte_range
    assert s.matches(high) and (s.unit == "B" or not s.matches(high + 1))


# --- paths --------------------------------------------------------------------------------------------------

component = st.one_of(
    st.sampled_from(["SMS", "sms", "Site.srv", "X86.BIN", "..", ".", "...", "", " ", "CON", "nul.txt", "COM1",
                     "a:b", "x86.bin ", "Helper.srv.", "é", "\x00", "\u0085", "Straße", "ǅ", "ＳＭＳ"]),
    st.text(max_size=8),
)
separator = st.sampled_from(["\\", "/", "\\\\", "/\\"])


@st.composite
def windows_paths(draw: st.DrawFn) -> str:
    head = draw(st.sampled_from(["C:\\", "c:/", "D:\\", "C:", "\\\\host\\share\\", "\\", "", "C:\\SMS\\",
                                 "c:\\sms\\", "C:\\SMS"]))
    parts = draw(st.lists(component, max_size=6))
    seps = draw(st.lists(separator, min_size=len(parts), max_size=len(parts)))
    body = "".join(p + s for p, s in zip(parts, seps, strict=True))
    return head + (body.rstrip("\\/") if draw(st.booleans()) else body)  # with and without a trailing separator


@settings(FUZZ, max_examples=500)
@given(path=st.one_of(windows_paths(), st.text(max_size=40)),
       root=st.sampled_from(["C:\\SMS", "D:\\Apps\\SMS", "C:\\", "c:/sms/"]))
def test_relative_to_root(path: str, root: str):
    try:
        rel = winpath.relative_to_root(path, root)
    except winpath.PathRuleError:
        return
    parts = rel.split("\\")
    assert rel and all(parts), f"{path!r} -> {rel!r}: not strictly below the root"
    assert ".." not in parts and "." not in parts, f"{path!r} -> {rel!r}"
    for p in parts:
        winpath.check_component(p)
    # and it is where the path points: the root's components, then these
    drive, root_parts = winpath.parse_root(root)
    given_parts = [p for p in winpath.split(path[2:]) if p != "."]
    assert path[0].upper() == drive
    assert [p.casefold() for p in given_parts] == [p.casefold() for p in root_parts + parts]
