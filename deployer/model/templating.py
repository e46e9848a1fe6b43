"""Path templates: jinja2 in a sandbox, with every undefined name an error.

A typo in `{{ sms_rot }}` must stop the run, never render an empty string and send a
file to the wrong folder; and a template must never reach Python internals.

Nearly every path template is literal text and `{{ name }}`s of text variables (the playbooks'
`into: '{{ sms_root }}\\Site.srv\\{{ platform }}.bin'`). Such a template renders here, to what
jinja2 renders it to, without importing jinja2 (~15 ms of a one-site plan's start-up); anything
else, and any name that is missing or not text (jinja2 says what is wrong), goes through the
sandbox (template_sandbox.py).
"""

from __future__ import annotations

import keyword
import re
from typing import Any, Mapping

from .template_limits import MAX_INT_BITS, MAX_RENDERED, MAX_TEMPLATE, TemplateProblem  # noqa: F401 (the API)

# `{{ name }}`: jinja2's variable delimiters with spaces or tabs, an ASCII name
_NAME = re.compile(r"\{\{[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*\}\}")
# names jinja2 reads as something else than a variable: constants, operators, and the names its
# code generator binds itself (`{{ self }}` is the template, whatever the variables say)
_NOT_A_VARIABLE = frozenset(keyword.kwlist) | {"true", "false", "none", "self", "loop", "varargs", "kwargs",
                                               "caller", "super"}


def _plain(source: str, variables: Mapping[str, Any] | None) -> str | None:
    """`source` rendered without jinja2, when it is literal text (no brace, no line break: jinja2
    would strip a trailing one) and `{{ name }}`s of str variables; None when jinja2 must say.
    With variables None: only whether the template is such (its syntax is then right)."""
    parts = _NAME.split(source)  # text, name, text, name, ..., text
    texts, names = parts[0::2], parts[1::2]
    if any(c in text for text in texts for c in "{}\r\n") or _NOT_A_VARIABLE.intersection(names):
        return None
    if variables is None:
        return ""
    if "self" in variables:  # jinja2's render(**variables) refuses it, as a TypeError: say as it says
        return None
    values = [variables.get(name) for name in names]
    if any(type(v) is not str for v in values):  # missing, or not text: jinja2's own answer and error
        return None
    out = [texts[0]]
    for value, text in zip(values, texts[1:]):
        out += (value, text)
    return "".join(out)


def render(source: str, variables: Mapping[str, Any]) -> str:
    if len(source) > MAX_TEMPLATE:
        raise TemplateProblem(f"template is {len(source)} characters; at most {MAX_TEMPLATE} are allowed")
    out = _plain(source, variables)
    if out is None:
        from . import template_sandbox

        out = template_sandbox.render(source, variables)
    if len(out) > MAX_RENDERED:
        raise TemplateProblem(f"template renders to {len(out)} characters; at most {MAX_RENDERED} are allowed")
    return out


def check_syntax(source: str) -> None:
    """Compile-only check, so a broken template is reported at load time with its line."""
    if len(source) > MAX_TEMPLATE:
        raise TemplateProblem(f"template is {len(source)} characters; at most {MAX_TEMPLATE} are allowed")
    if _plain(source, None) is None:
        from . import template_sandbox

        template_sandbox.check_syntax(source)
