"""JSON Schemas of the YAML files (playbook, manifest, inventory), generated from the models.

Editors (yaml-language-server) use them to complete keys and flag mistakes while typing.
They are generated, never written by hand: pydantic walks the same models the loader
validates with. Where a field goes through a "before" validator that reads the YAML-ish
spellings of KB articles (`9/10/99`, `7:00PM`, `524KB`, `I386`, a service name or a list
of them), pydantic would describe the parsed Python type (a date, an object); here each
such validator is mapped to the schema of what it accepts, so the schema is honest about
what the loader takes. It cannot say everything the loader checks (a file named in a step
must be in the manifest, a control code must suit its service): those are refused, with
file and line, when the file is loaded.

The files ship in the package under deployer/schemas/ (and are committed: the YAML files'
`# yaml-language-server: $schema=` lines point at them in a fresh checkout);
`python -m deployer.schema --write` regenerates them and tests/test_schema.py fails when
they drift from the models.
"""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path
from typing import Any, Callable, Union

from pydantic import BaseModel, Field, create_model
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from .model import inventory, manifest, transport
from .model.transports import smb as smb_transport
from .steps import playbook
from .steps import KINDS as STEP_KINDS
from .model.common import NUMERIC_TEXT as _NUMERIC_TEXT, number_in
from .sms import attrs, platforms
from .model.secrets import SecretSource

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
KINDS = ("playbook", "manifest", "sites")
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _any_case(text: str) -> str:
    """A regex matching `text` in any letter case (JSON Schema patterns have no (?i) flag)."""
    out = []
    for ch in text:
        if ch.isalpha():
            out.append(f"[{ch.upper()}{ch.lower()}]")
        elif ch == " ":
            out.append(r"\s+")
        else:
            out.append(ecma_escape(ch))
    return "".join(out)


# Editors' YAML language servers (and check-jsonschema) compile patterns as ECMAScript regexes
# in unicode mode, where only these characters may be escaped outside a class: Python's
# re.escape writes `\-`, which that mode refuses, and the whole schema with it.
_ECMA_SYNTAX = set("^$\\.*+?()[]{}|/")


def ecma_escape(text: str) -> str:
    """`text` as a literal in a JSON Schema pattern (ECMAScript, unicode mode)."""
    return "".join("\\" + c if c in _ECMA_SYNTAX else c for c in text)


def _platform_schema() -> JsonSchemaValue:
    names = sorted({a for p in platforms.PLATFORMS.values() for a in (*p.aliases, p.key)} | {"unknown"}
                   | set(manifest._MORE_SPELLINGS))
    return {"type": "string",
            "pattern": r"^\s*[(<\[]?\s*(" + "|".join(_any_case(n) for n in names) + r")\s*[)>\]]?\s*$",
            "description": "a platform as articles spell it (any case): " + platforms.allowed_names(),
            "examples": ["I386", "Intel", "x86", "Alpha"]}


# What each "before" validator of the models accepts (a validator may instead carry its own,
# declared with model.common.accepts: the step kinds' do, so this module names no kind), as YAML gives it (deployer reads YAML
# with the 1.2 core schema: `19:00` and `1999-09-10` stay strings; only true/false/null and
# plain numbers are typed).
INPUTS: dict[Callable[..., Any], Callable[..., JsonSchemaValue]] = {
    attrs.parse_date: lambda inner: {
        "type": "string",
        "pattern": r"^\s*(\d{1,2}([/-])\d{1,2}\2(\d{2}|\d{4})|\d{4}-\d{1,2}-\d{1,2}"
                   r"|\d{1,2}[- ][A-Za-z]{3,9}\.?[- ](\d{2}|\d{4})|[A-Za-z]{3,9}\.?-\d{1,2}-(\d{2}|\d{4})"
                   r"|[A-Za-z]{3,9}\.?\s+\d{1,2},?\s+\d{4})\s*$",
        "description": "a date as the article prints it: M/D/YY or M/D/YYYY (two-digit years 30-99 are 19xx, "
                       "00-29 20xx), 01-Mar-2001, March 1, 2001, or YYYY-MM-DD",
        "examples": ["9/10/99", "04/22/2000", "01-Mar-2001", "March 1, 2001", "1999-09-10"]},
    attrs.parse_time: lambda inner: {
        "type": "string",
        "pattern": r"^\s*\d{1,2}:\d{2}(:\d{2})?(\s*[AaPp]\.?([Mm]\.?)?)?\s*$",
        "description": "a time as the article prints it: 7:00PM, 11:01a or 19:00", "examples": ["7:00PM", "19:00"]},
    attrs.parse_size: lambda inner: {
        "anyOf": [{"type": "integer", "minimum": 0},
                  {"type": "string", "pattern": r"^\s*(\d[\d,]*\s*(KB|K|kb|Kb|k|bytes|B|b)?"
                                                r"|\d{1,6}\.\d{1,3}\s*(KB|K|kb|Kb|k|MB|M|mb|Mb))\s*$"}],
        "description": "exact bytes (254,400, 453904, 283,104 bytes) or the article's kilobytes (524KB, rounded "
                       "up as Explorer shows them) or fractions (87.1 KB, 1.61 MB, matched as ranges)",
        "examples": ["524KB", "254,400", 453904, "87.1 KB"]},
    manifest.parse_platform: lambda inner: _platform_schema(),
    manifest.parse_version: lambda inner: {
        "anyOf": [{"type": "string", "pattern": r"^\s*\d{1,5}(\.\d{1,5}){0,3}(\s*\(\s*[Bb][Uu][Ii][Ll][Dd]\s+\d{1,6}\s*\))?\s*$"},
                  {"type": "number"}],
        "description": "dotted numbers, such as 1.2.0.0, or 1.2 (build 786) as articles write it"},
    manifest._sha256: lambda inner: {"type": "string", "pattern": r"^\s*[0-9A-Fa-f]{64}\s*$"},
    manifest._name: lambda inner: {
        "type": "string", "minLength": 1, "maxLength": 255, "pattern": r'^[^<>:"/\\|?*\x00-\x1f]*[^<>:"/\\|?*\x00-\x1f. ]$',
        "description": "a plain Windows file name, such as Base.dll (no folder, no reserved device name)"},
    transport._password: lambda inner: inner,
    inventory._var_value: lambda inner: {"type": ["string", "integer", "boolean"]},
    smb_transport._dialect: lambda inner: {  # any case, as the loader lowers it
        "type": "string", "pattern": r"^\s*(" + "|".join(_any_case(v) for v in inner.get("enum", [])) + r")\s*$"},
    inventory._code: lambda inner: {
        "type": "string", "pattern": "^[A-Za-z0-9]{3}$",
        "description": "the SMS site code: exactly 3 letters or digits (quote a numeric one: '001')"},
}


def _tags(core: Any) -> list[str]:
    """The tags of the tagged union under a validator (the transports' names)."""
    while isinstance(core, dict) and core.get("type") != "tagged-union" and "schema" in core:
        core = core["schema"]
    return sorted(core.get("choices", {})) if isinstance(core, dict) else []


def _number_in_schema(fn: Callable[..., Any], inner: JsonSchemaValue) -> JsonSchemaValue | None:
    """number_in's checks accept a number in range, or the same number quoted."""
    if getattr(fn, "__qualname__", "") != f"{number_in.__name__}.<locals>.check":
        return None
    lo, hi, above, integer = (fn.__closure__ and _closure(fn)) or (None, None, False, True)
    num: JsonSchemaValue = {"type": "integer" if integer else "number"}
    if lo is not None:
        num["exclusiveMinimum" if above else "minimum"] = lo
        num["maximum"] = hi
    return {"anyOf": [num, _NUMERIC_TEXT]} if integer else num


def _closure(fn: Callable[..., Any]) -> tuple[Any, Any, bool, bool]:
    cells = dict(zip(fn.__code__.co_freevars, (c.cell_contents for c in fn.__closure__ or ())))
    return cells.get("lo"), cells.get("hi"), bool(cells.get("above")), bool(cells.get("integer", True))


# what the models' after-validators require of names that are dict keys, and of article numbers;
# site and server names may hold ranges (S[001:030]), which the loader writes out first
RANGE = r"\[([0-9]+:[0-9]+(:[0-9]+)?|[a-z]:[a-z]|[A-Z]:[A-Z])\]"
NAME_RULES: dict[type, dict[str, str]] = {
    inventory.Inventory: {"sites": r"^([A-Za-z0-9_.-]|" + RANGE + r")+$"},
    inventory.Site: {"servers": r"^([A-Za-z0-9_-]|" + RANGE + r")+$", "vars": r"^[A-Za-z_][A-Za-z0-9_]*$"},
}
KB_PATTERN = r"^\s*([QqKk][Bb]?)\d{5,7}\s*$"


I = inventory
# What a field means, for the fields whose model gives no description. Hover text in editors
# and the reference docs (docs/) come from here and from the models' own descriptions; a test
# checks that every key names a real field and that every field ends up described.
DESCRIPTIONS: dict[tuple[type, str], str] = {
    (I.Site, "preflight"): "settings of Q166765's checks (deployer preflight)",
    (I.Inventory, "sites"): "the sites by name (--site matches it case-insensitively); a name may hold ranges, "
                            "S[001:030] (README: Inventory)",
    (I.Site, "code"): "the SMS site code: exactly 3 letters or digits",
    (I.Site, "description"): "free text for the reader",
    (I.Site, "timezone"): "the servers' local time zone, an IANA name; manifest times are read in it",
    (I.Site, "platforms"): "the Site.srv\\<Platform>.bin folders the site carries (default: its servers' platforms)",
    (I.Site, "mock"): "where the embedded mock site lives, for servers on the mock transport",
    (I.Site, "vars"): "extra variables for the playbooks' `into` templates",
    (I.Site, "servers"): "the site's servers by NetBIOS name; exactly one has role site_server",
    (I.Server, "role"): "site_server (exactly one per site), logon_server or helper_server",
    (I.Server, "platform"): "the platform the server runs on",
    (I.Server, "sms_root"): "the SMS root folder on the server, such as C:\\SMS",
    # the transports as their declarations list them (model/transports/): one more module, one more name here
    **{(host, role): note for host in (I.Server, I.PcmHost) for role, note in (
        ("files", "how its files are reached: " + transport.REGISTRY.listing(transport.FILES)),
        ("services", "how its services are controlled: " + transport.REGISTRY.listing(transport.SERVICES)))},
    (SecretSource, "env"): "the environment variable holding the password",
    (SecretSource, "file"): "a file holding the password, readable only by you",
    (SecretSource, "prompt"): "ask on the terminal",
}


def described(cls: type, name: str) -> str | None:
    for klass in cls.__mro__:
        if (klass, name) in DESCRIPTIONS:
            return DESCRIPTIONS[(klass, name)]
    return None


class _Generator(GenerateJsonSchema):
    def _input(self, schema: Any, inner: JsonSchemaValue) -> JsonSchemaValue:
        fn = schema["function"]["function"]
        if hasattr(fn, "transport_role"):  # a files: or services: field (model/transport.py)
            return {"anyOf": [{"enum": _tags(schema["schema"])}, inner],
                    "description": "the transport's name, or a mapping with transport: and its settings"}
        if fn in INPUTS:
            return INPUTS[fn](inner)
        if getattr(fn, "__input_schema__", None) is not None:  # declared beside the validator (model.common.accepts)
            return fn.__input_schema__(inner)
        return _number_in_schema(fn, inner) or inner

    def function_before_schema(self, schema: core_schema.BeforeValidatorFunctionSchema) -> JsonSchemaValue:
        return self._input(schema, self.generate_inner(schema["schema"]))

    def is_instance_schema(self, schema: core_schema.IsInstanceSchema) -> JsonSchemaValue:
        return {}  # only reached under a before validator that INPUTS describes

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        out = super().model_schema(schema)
        cls = schema["cls"]
        if cls is SecretSource:  # "exactly one of": a rule of its after-validator
            out["minProperties"] = out["maxProperties"] = 1
        for name, prop in out.get("properties", {}).items():
            note = described(cls, name)
            if note:  # more specific than what a shared validator says of its input
                prop["description"] = note
        for field, pattern in NAME_RULES.get(cls, {}).items():  # the rules of dict-key validators
            out["properties"][field]["propertyNames"] = {"pattern": pattern}
        if cls is manifest.Manifest:
            out["properties"]["kb"]["pattern"] = KB_PATTERN
        if cls.__doc__ and "description" not in out and not cls.__doc__.startswith(cls.__name__ + "("):
            out["description"] = " ".join(cls.__doc__.split())
        return out


def _playbook_model() -> type[BaseModel]:
    """The playbook as the loader reads it: its head, with `steps` one of the step kinds."""
    kinds = tuple(k.model for k in STEP_KINDS.values())
    return create_model("Playbook", __base__=playbook.PlaybookHead, __doc__=playbook.__doc__,
                        steps=(list[Union[kinds]], Field(min_length=1, description="the procedure, in order")))  # type: ignore[valid-type]


def models() -> dict[str, type[BaseModel]]:
    return {"playbook": _playbook_model(), "manifest": manifest.Manifest, "sites": inventory.Inventory}


TITLES = {"playbook": "deployer playbook", "manifest": "deployer manifest (a KB article's file attribute table)",
          "sites": "deployer inventory (sites.yaml)"}


def schema(kind: str) -> dict[str, Any]:
    if kind not in KINDS:
        raise ValueError(f"unknown schema {kind!r}; allowed: {', '.join(KINDS)}")
    out = models()[kind].model_json_schema(mode="validation", schema_generator=_Generator)
    out.pop("description", None)
    if kind == "sites":
        _fleet_size(out["$defs"])
    return {"$schema": DIALECT, "$id": f"https://deployer.invalid/schemas/{kind}.json", "title": TITLES[kind],
            **out}


def _fleet_size(defs: dict[str, Any]) -> None:
    """What inventory_expand accepts before the models see a site: a server's role and platform
    may come from `defaults: server:` (so a server may be written with no fields), and a ranged
    site's code holds a range going in step with its name (F[01:30])."""
    server = defs["Server"]
    required = server.pop("required", [])
    server["description"] = (server.get("description", "") + " " if server.get("description") else "") + (
        f"{' and '.join(required)} are required, here or under defaults: server: (or a group's server:)")
    site = defs["Site"]["properties"]
    site["code"]["pattern"] = r"^([A-Za-z0-9]{3}|[A-Za-z0-9]{0,2}" + RANGE + r"([A-Za-z0-9]|" + RANGE + r")*)$"
    for members, ref in (("servers", "Server"), ("pcm_hosts", "PcmHost")):
        site[members]["additionalProperties"] = {"anyOf": [{"$ref": f"#/$defs/{ref}"}, {"type": "null"}]}


def text(kind: str) -> str:
    return json.dumps(schema(kind), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_files(folder: Path, pages: dict[str, Callable[[], str]]) -> list[Path]:
    """Generated files (schemas, reference pages): each page's text under its name in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in pages.items():
        (folder / name).write_text(make(), encoding="utf-8")
        written.append(folder / name)
    return written


def write_main(module: str, write: Callable[[], list[Path]], what: str) -> None:
    """`python -m MODULE --write`: regenerate the committed files `what` names."""
    if sys.argv[1:] != ["--write"]:
        sys.exit(f"usage: python -m {module} --write   (regenerates {what})")
    for p in write():
        print(f"wrote {p}")


def write_all(folder: Path = SCHEMA_DIR) -> list[Path]:
    return write_files(folder, {f"{kind}.json": partial(text, kind) for kind in KINDS})


if __name__ == "__main__":
    write_main("deployer.schema", write_all, "deployer/schemas/*.json")
