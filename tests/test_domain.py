"""SMS and KB-article knowledge: attribute parsing, platforms, control codes, paths, templates, YAML."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path

import pytest

from deployer.model import templating, winpath
from deployer.errors import InputError
from deployer.sms import attrs, fileversion, platforms
from deployer.sms import services as sms
from deployer.model.yamlsrc import parse_yaml


@pytest.mark.parametrize("text,expected", [
    ("9/10/99", date(1999, 9, 10)), ("05/15/00", date(2000, 5, 15)), ("04/22/2000", date(2000, 4, 22)),
    ("1/28/99", date(1999, 1, 28)), ("1999-09-10", date(1999, 9, 10)), ("2/24/99", date(1999, 2, 24)),
])
def test_article_dates(text, expected):
    assert attrs.parse_date(text) == expected


@pytest.mark.parametrize("text", ["11/31/94", "2/29/99", "13/01/99", "0/10/99", "99-09-10", "Sept 10"])
def test_impossible_or_unknown_dates(text):
    with pytest.raises(attrs.AttrError):
        attrs.parse_date(text)


def test_pcmdump_seed_impossible_date_is_named():
    with pytest.raises(attrs.AttrError, match="November 1994 has 30 days"):
        attrs.parse_date("11/31/94")


@pytest.mark.parametrize("text,expected", [
    ("7:00PM", time(19, 0)), ("7:04pm", time(19, 4)), ("11:01a", time(11, 1)), ("10:57a", time(10, 57)),
    ("12:00AM", time(0, 0)), ("12:30 PM", time(12, 30)), ("19:00", time(19, 0)), ("1:35pm", time(13, 35)),
])
def test_article_times(text, expected):
    assert attrs.parse_time(text) == expected


def test_kb_sizes_round_up_like_explorer():
    # Q226891 lists Base.dll (Intel) as 535,616 bytes; Q241656 as 524KB: ceil(535616/1024) = 524
    assert attrs.parse_size("524KB").matches(535_616)
    assert attrs.parse_size("524KB").matches(524 * 1024)
    assert not attrs.parse_size("524KB").matches(523 * 1024)
    assert attrs.parse_size("524KB").matches(523 * 1024 + 1)
    # Q255284's exact sizes round to Q241656's KB figures for the same files
    assert attrs.parse_size("782KB").matches(800_528)
    assert attrs.parse_size("1147KB").matches(1_174_288)
    assert attrs.parse_size("254,400").matches(254_400) and not attrs.parse_size("254,400").matches(254_401)
    assert attrs.parse_size(453904) == attrs.SizeSpec(453904, "B")
    with pytest.raises(attrs.AttrError):
        attrs.parse_size("25,44,00")
    with pytest.raises(attrs.AttrError):
        attrs.parse_size("12 MB")


def test_formats_like_the_article():
    assert attrs.format_date(date(1999, 9, 10)) == "9/10/99"
    assert attrs.format_time(time(19, 4)) == "7:04PM"
    assert attrs.format_time(time(0, 5)) == "12:05AM"


@pytest.mark.parametrize("name,key,folder", [
    ("I386", "x86", "X86.BIN"), ("Intel", "x86", "X86.BIN"), ("x86", "x86", "X86.BIN"), ("(x86)", "x86", "X86.BIN"),
    ("X86", "x86", "X86.BIN"), ("Alpha", "alpha", "ALPHA.BIN"), ("ALPHA", "alpha", "ALPHA.BIN"),
    ("MIPS", "mips", "MIPS.BIN"), ("Macintosh", "mac", "MAC.BIN"),
])
def test_platform_spellings(name, key, folder):
    p = platforms.lookup(name)
    assert (p.key, p.folder) == (key, folder)


def test_unknown_platform_lists_allowed():
    with pytest.raises(ValueError, match="allowed: x86 .*alpha"):
        platforms.lookup("SPARC")


@pytest.mark.parametrize("service,code", [
    ("SMS_EXECUTIVE", 128), ("SMS_HIERARCHY_MANAGER", 130), ("SMS_SITE_CONFIG_MANAGER", 129),
    ("SMS_PACKAGE_COMMAND_MANAGER_NT", 132), ("SMS_CLIENT_CONFIG_MANAGER", 132),
    ("SMS_SITE_CONFIG_MANAGER", 192), ("SMS_SITE_CONFIG_MANAGER", 196),
])
def test_q168682_accepted_codes(service, code):
    sms.check_control(service, code)


@pytest.mark.parametrize("service,code,msg", [
    ("SMS_EXECUTIVE", 194, "accepted by: SMS_SITE_CONFIG_MANAGER"),
    ("SMS_PACKAGE_COMMAND_MANAGER_NT", 128, "1052"),
    ("SMS_SITE_CONFIG_MANAGER", 131, "accepted by: no SMS service"),
    ("SMS_SITE_CONFIG_MANAGER", 127, "outside 128-255"),
    ("SMS_SITE_CONFIG_MANAGER", 256, "outside 128-255"),
    ("SPOOLER", 130, "not an SMS service"),
])
def test_q168682_refused_codes(service, code, msg):
    with pytest.raises(sms.ControlCodeError, match=msg):
        sms.check_control(service, code)


def test_helper_files_are_what_helper_services_load():
    assert set(sms.HELPER_FILES) == {"Invwin32.exe", "Pcmsvc32.exe", "Base.dll", "Clicfg.exe"}


@pytest.mark.parametrize("path,root,rel", [
    (r"C:\SMS\Site.srv\X86.bin", r"C:\SMS", r"Site.srv\X86.bin"),
    (r"c:\sms\SITE.SRV", r"C:\SMS", "SITE.SRV"),
    ("C:/SMS/Site.srv/./X86.bin", r"C:\SMS", r"Site.srv\X86.bin"),
    (r"D:\Apps\SMS\Logon.srv", r"D:\Apps\SMS", "Logon.srv"),
])
def test_paths_below_the_root(path, root, rel):
    assert winpath.relative_to_root(path, root) == rel


@pytest.mark.parametrize("path,msg", [
    (r"C:\SMS\..\Windows\System32", "'..'"), (r"C:\SMS\Site.srv\..\..\boot.ini", "'..'"),
    (r"D:\SMS\Site.srv", "drive D:"), (r"C:\Windows", "outside the SMS root"), (r"\\evil\share\x", "UNC"),
    (r"\SMS\Site.srv", "no drive"), (r"C:\SMS\Site.srv\CON", "reserved"), (r"C:\SMS\a:b", "contains ':'"),
    (r"C:\SMS\Site.srv\x86.bin ", "ends with a dot or space"), ("Site.srv", "not an absolute path"),
])
def test_paths_that_escape_or_break_rules(path, msg):
    with pytest.raises(winpath.PathRuleError, match=msg):
        winpath.relative_to_root(path, r"C:\SMS")


def test_template_is_sandboxed_and_strict():
    v = {"sms_root": r"C:\SMS", "platform": "X86"}
    assert templating.render(r"{{ sms_root }}\Site.srv\{{ platform }}.bin", v) == r"C:\SMS\Site.srv\X86.bin"
    with pytest.raises(templating.TemplateProblem, match="'sms_rot' is undefined; variables available here"):
        templating.render("{{ sms_rot }}", v)
    with pytest.raises(templating.TemplateProblem, match="sandbox"):
        templating.render("{{ ''.__class__.__mro__[1].__subclasses__() }}", v)
    with pytest.raises(templating.TemplateProblem, match="sandbox"):
        templating.render("{{ 'x' * 100000000 }}", v)
    with pytest.raises(templating.TemplateProblem, match="syntax"):
        templating.render("{{ sms_root", v)


@pytest.mark.parametrize("template", [
    r"{{ sms_root }}\Site.srv\{{ platform }}.bin", "{{sms_root}}", "{{\tplatform\t}}.bin", "plain", "", "plain\n",
    "{{ n }}", "{{ missing }}", "{{ quoted }}", "{{ self }}", "{{ true }}", "{{ none }}", "{{ range }}", "{{ loop }}",
    "{{- sms_root }}", "{{ sms_root -}} x", "{# note #}x", "{% if n %}a{% endif %}", "}} x", "a}b", "{{ sms_root }}}",
    "{{{ sms_root }}", "{{ sms_root", "{{ sms_root }}\r", "{{ big }}", "{{ sms_root }}" * 200,
])
@pytest.mark.parametrize("extra", [{}, {"self": "x"}])
def test_a_template_renders_and_fails_as_jinja2_renders_it(template, extra):
    # text and {{ name }}s of text variables render without jinja2 (start-up); the same answer
    from deployer.model import template_sandbox

    v = {"sms_root": r"C:\SMS", "platform": "X86", "n": 5, "quoted": "a{{ b }}", "true": "T", "range": "R",
         "big": "x" * 5000, **extra}

    def outcome(render, check):
        try:
            check(template)
            checked = "ok"
        except templating.TemplateProblem as exc:
            checked = str(exc)
        try:
            out = render(template, v)
            if len(out) > templating.MAX_RENDERED:
                return checked, "too long"
            return checked, out
        except templating.TemplateProblem as exc:
            return checked, str(exc)

    def sandbox_check(t):
        if len(t) > templating.MAX_TEMPLATE:
            raise templating.TemplateProblem("too long")
        template_sandbox.check_syntax(t)

    def sandbox_render(t, variables):
        if len(t) > templating.MAX_TEMPLATE:
            raise templating.TemplateProblem("too long")
        return template_sandbox.render(t, variables)

    mine, jinja = outcome(templating.render, templating.check_syntax), outcome(sandbox_render, sandbox_check)
    if len(template) > templating.MAX_TEMPLATE:
        assert mine[0].startswith("template is") and mine[1].startswith("template is") and jinja == ("too long",) * 2
    elif isinstance(jinja[1], str) and jinja[1] == "too long":
        assert mine[1].startswith("template renders to 5000 characters")
    else:
        assert mine == jinja


def test_yaml_keeps_article_strings_as_strings():
    doc = parse_yaml("time: 19:00\nanswer: no\ndate: 1999-09-10\nsize: 524KB\ncode: 194\non: yes\n", Path("x.yaml"))
    assert doc.data == {"time": "19:00", "answer": "no", "date": "1999-09-10", "size": "524KB", "code": 194,
                        "on": "yes"}


def test_yaml_refuses_duplicates_tags_merges_and_bombs():
    with pytest.raises(InputError, match=r"x.yaml:2:1: duplicate key 'a'"):
        parse_yaml("a: 1\na: 2\n", Path("x.yaml"))
    with pytest.raises(InputError, match="tag .* is not allowed"):
        parse_yaml("a: !!python/object:os.system {}\n", Path("x.yaml"))
    with pytest.raises(InputError, match="merge keys"):
        parse_yaml("b: &b {x: 1}\na:\n  <<: *b\n", Path("x.yaml"))
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8))
    with pytest.raises(InputError, match="more than 100,000 values"):
        parse_yaml(bomb, Path("x.yaml"))


def test_yaml_syntax_error_has_line_and_column():
    with pytest.raises(InputError, match=r"x.yaml:2:\d+: YAML syntax error"):
        parse_yaml("a: [1, 2\nb: 3\n", Path("x.yaml"))


def test_version_resource_round_trip():
    blob = b"MZ" + bytes(5000) + b"VS_VERSION_INFO\x00" + fileversion.fixed_file_info((1, 2, 0, 7)) + bytes(100)
    chunks = [blob[i:i + 1000] for i in range(0, len(blob), 1000)]  # the signature straddles a chunk edge
    assert fileversion.find_version(chunks) == "1.2.0.7"
    assert fileversion.find_version([b"MZ" + bytes(100)]) is None
