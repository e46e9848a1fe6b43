"""The reference docs under docs/reference/ are generated from the models and registries, and
the committed files are exactly what the generator writes now."""

from __future__ import annotations

import re

import pytest

from conftest import ROOT
from deployer import docs_gen, schema
from deployer.errors import ExitCode


@pytest.mark.parametrize("page", sorted(docs_gen.PAGES))
def test_committed_reference_docs_match_the_models(page: str):
    committed = (docs_gen.DOCS / page).read_text(encoding="utf-8")
    assert committed == docs_gen.PAGES[page](), (f"docs/reference/{page} drifted from the models; regenerate it "
                                                 "with: python -m deployer.docs_gen --write")


def test_every_field_of_every_file_kind_is_described():
    missing = []

    def walk(node, where):
        if isinstance(node, dict):
            for name, prop in (node.get("properties") or {}).items():
                if not prop.get("description"):
                    missing.append(f"{where}.{name}")
            for k, v in node.items():
                walk(v, f"{where}/{k}")
        elif isinstance(node, list):
            for v in node:
                walk(v, where)

    for kind in schema.KINDS:
        walk(schema.schema(kind), kind)
    assert not missing, "fields without a description (add one to the model or schema.DESCRIPTIONS): " + ", ".join(missing)


def test_the_descriptions_table_names_real_fields_that_the_models_leave_undescribed():
    for (cls, name), _ in schema.DESCRIPTIONS.items():
        assert name in cls.model_fields, f"{cls.__name__} has no field {name!r}"
        assert not cls.model_fields[name].description, (f"{cls.__name__}.{name} is described in the model; drop it "
                                                         "from schema.DESCRIPTIONS")


def test_every_exit_code_and_every_report_format_is_documented():
    assert [c for c, _ in docs_gen.exit_codes()] == [int(c) for c in ExitCode]
    text = (docs_gen.DOCS / "exit-codes.md").read_text()
    assert all(f"`{c.name}`" in text for c in ExitCode)
    opts = docs_gen.format_options()
    # one spelling for every command (issue 22): apply writes every report verify writes
    assert opts["verify"] == ["text", "json", "junit", "html"] and opts["apply"] == ["text", "json", "junit", "html"]
    assert {v for values in opts.values() for v in values} <= set(docs_gen.FORMATS)


def test_every_step_kind_has_its_section_and_the_readme_links_the_reference():
    from deployer.steps import KINDS as STEP_KINDS

    text = (docs_gen.DOCS / "playbook.md").read_text()
    for kind in STEP_KINDS:
        assert f"## Step {kind}\n" in text
    anchors = {docs_gen._anchor(h) for h in re.findall(r"^## (.+)$", text, re.M)}
    assert set(re.findall(r"\]\(#([^)]+)\)", text)) <= anchors  # every in-page link has its heading
    readme = (ROOT / "README.md").read_text()
    for page in docs_gen.PAGES:
        assert f"docs/reference/{page}" in readme
