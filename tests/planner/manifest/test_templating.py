"""Templates: vars only, strings only, bounded; sensitivity follows a var into every string that uses it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from planner.errors import ManifestError
from planner.manifest import load_manifest
from planner.manifest.templating import TemplateError, may_render, referenced_vars, render

VARS: dict[str, Any] = {"registry": "ghcr.io/acme", "tag": "1.2", "replicas": 3, "debug": True, "items": "I"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ vars.registry }}/app:{{ vars.tag }}", "ghcr.io/acme/app:1.2"),
        ("{{vars.registry}}", "ghcr.io/acme"),
        ("{{ vars['registry'] }}", "ghcr.io/acme"),
        ("{{ vars.registry | upper }}", "GHCR.IO/ACME"),
        ("{{ vars.replicas * 2 }}", "6"),
        ("{{ vars.debug }}", "true"),
        ("{{ 'on' if vars.debug else 'off' }}", "on"),
        ("{{ vars.tag ~ '-rc' }}", "1.2-rc"),
        ("{{ vars.items }}", "I"),  # a var named like a dict method is still the var
        ("${HOME}/{{ vars.tag }}", "${HOME}/1.2"),
        ("{{ vars.tag }}}", "1.2}"),
        ("{% raw %}{{ x }}{% endraw %}", "{{ x }}"),
        ("{{ '{{' }} literal }}", "{{ literal }}"),
        ("{# a comment #}text", "text"),
        ("{{ vars.registry | replace('acme', 'corp') }}", "ghcr.io/corp"),
    ],
)
def test_render(text: str, expected: str) -> None:
    assert render(text, VARS) == expected


def test_substitution_fast_path_matches_jinja() -> None:
    """The same text through the fast path and (forced by a no-op filter) through jinja."""
    for name in VARS:
        assert render(f"a {{{{ vars.{name} }}}} b", VARS) == render(f"a {{{{ vars.{name} | d }}}} b", VARS)


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        ("{{ workflow.parameters.date }}", "unknown template name 'workflow'", "FLOWPLAN_PARAM_"),
        ("{{ inputs.parameters.date }}", "unknown template name 'inputs'", "FLOWPLAN_PARAM_"),
        ("{{ item }}", "unknown template name 'item'", "FLOWPLAN_FOREACH_ITEM"),
        ("{{ vars.registy }}", "unknown var 'registy'", "did you mean vars.registry?"),
        ("{{ vars.__class__ }}", "'__class__' is not a var name", None),
        ("{{ vars.registry.__class__ }}", "vars hold plain values", None),
        ("{{ vars.registry.upper() }}", "calls are not allowed", None),
        ("{{ ''.__class__.__mro__ }}", "attribute and method access", None),
        ("{{ vars[vars.tag] }}", "needs a literal name", None),
        ("{{ vars }}", "'vars' must be followed by a name", None),
        ("{{ 'x' * 10**9 }}", "longer than 100,000 characters", None),
        ("{{ 'x' | center(1000000000) }}", "filter 'center' is not allowed", None),
        ("{{ '%0999999999d' % 1 }}", "'%' formatting is not supported", None),
        ("{{ (10**64) ** 64 }}", "number too large", None),
        ("{{ ('x' * 99999) | replace('x', 'yy') }}", "longer than 100,000 characters", None),
        ("{% for i in range(10) %}x{% endfor %}", "{% for %} statements are not allowed", None),
        ("{% set x = 1 %}", "statements are not allowed", None),
        ("{{ vars.registry ", "template syntax error", "{{ '{{' }}"),
    ],
)
def test_refused(text: str, message: str, hint: str | None) -> None:
    with pytest.raises(TemplateError) as info:
        render(text, VARS)
    assert message in info.value.message
    if hint:
        assert hint in (info.value.hint or "")


def test_referenced_vars_are_exact() -> None:
    assert referenced_vars("{{ vars.a }}-{{ vars['b'] | upper }}") == {"a", "b"}
    assert referenced_vars("no templates") == frozenset()


MANIFEST = """version: 1
project: shop
vars:
  token: {sensitive: true}
  region: {default: eu}
  password: {default: hunter2-hunter2, sensitive: true}
sinks:
  orders:
    type: warehouse
    uri: "snowflake://acme/{{ vars.region }}"
    table: orders
flows:
  load:
    image: python:3.12
    steps:
      start:
        command: [python, -m, load, "--token={{ vars.token }}", "{{ vars.region }}"]
        env:
          API_TOKEN: {value: "{{ vars.token }}", sensitive: true}
          PLAIN: "{{ vars.region }}"
          LITERAL_SECRET: {value: s3cr3t, sensitive: true}
"""


def test_sensitive_values_follow_vars_into_strings(tmp_path: Path) -> None:
    path = tmp_path / "flows.yaml"
    path.write_text(MANIFEST)
    manifest = load_manifest(path, cli_vars={"token": "tok-12345"})
    assert manifest.vars["token"].sensitive and not manifest.vars["region"].sensitive
    assert {"tok-12345", "--token=tok-12345", "hunter2-hunter2", "s3cr3t"} <= manifest.sensitive_values
    assert "eu" not in manifest.sensitive_values
    assert "snowflake://acme/eu" not in manifest.sensitive_values
    env = manifest.flows["load"].steps["start"].env
    assert env["API_TOKEN"].sensitive and env["API_TOKEN"].value == "tok-12345"
    assert not env["PLAIN"].sensitive and env["PLAIN"].value == "eu"
    assert env["LITERAL_SECRET"].sensitive


def test_unset_required_var_is_reported_once_at_the_var(tmp_path: Path) -> None:
    path = tmp_path / "flows.yaml"
    path.write_text(MANIFEST)
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    (problem,) = info.value.problems
    assert problem.path == "vars.token" and "has no default and no value" in problem.message


def test_templates_are_not_rendered_in_keys_or_var_defaults(tmp_path: Path) -> None:
    path = tmp_path / "flows.yaml"
    path.write_text(
        "version: 1\nproject: shop\nvars:\n  a: {default: '{{ vars.b }}'}\n  b: {default: x}\n"
        "flows:\n  f:\n    image: '{{ vars.a }}'\n    steps:\n      start: {command: [run]}\n"
    )
    assert load_manifest(path).flows["f"].image == "{{ vars.b }}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"a: {x: 1}\nb: [ {y: 2} ]\n", False),  # flow mappings are not templates
        (b'a: "{ {"\n', False),
        (b'a: "{{ vars.x }}"\n', True),
        (b"a: x {% raw %}y{% endraw %}\n", True),
        (b"a: x {# note #}\n", True),
        (b'a: "\\x7b{ vars.x }}"\n', True),  # an escaped "{" in double quotes
        (b'a: "\\u007B{ vars.x }}"\n', True),
        (b'a: "\\U0000007b{ vars.x }}"\n', True),
        (b'a: "{\\\n   { vars.x }}"\n', True),  # an escaped line break joins "{" and "{"
    ],
)
def test_may_render_sees_every_way_yaml_can_spell_a_template(text: bytes, expected: bool) -> None:
    assert may_render(text) is expected


@pytest.mark.parametrize(
    "image",
    ['"{{ vars.tag }}"', '"\\x7b{ vars.tag }}"', '"\\u007b{ vars.tag }}"', '"{\\\n      { vars.tag }}"'],
)
def test_a_template_spelled_with_escapes_is_still_rendered(tmp_path: Path, image: str) -> None:
    path = tmp_path / "flows.yaml"
    path.write_text(
        "version: 1\nproject: shop\nvars:\n  tag: {default: python:3.12}\n"
        f"flows:\n  f:\n    image: {image}\n    steps:\n      start: {{command: [run]}}\n"
    )
    assert load_manifest(path).flows["f"].image == "python:3.12"


def test_a_manifest_without_templates_loads_the_same_without_the_render_walk(tmp_path: Path) -> None:
    path = tmp_path / "flows.yaml"
    path.write_text(
        "version: 1\nproject: shop\nvars:\n  secret: {default: hunter2-hunter2, sensitive: true}\n"
        "flows:\n  f:\n    image: python:3.12\n    steps:\n      start: {command: [run, '{x: 1}']}\n"
    )
    assert not may_render(path.read_bytes())
    manifest = load_manifest(path)
    assert manifest.flows["f"].steps["start"].command == ("run", "{x: 1}")
    assert "hunter2-hunter2" in manifest.sensitive_values  # a sensitive var's value is known without any template
