"""Every name check is a full match: a valid name with a trailing newline (or another stray character) is refused.

Python's ``$`` matches before a final newline, so ``re.match(r"^[a-z]+$", "greet\\n")`` succeeds; a check
written that way lets "greet\\n" through, and "greet" and "greet\\n" then deploy as two objects. The table
feeds each checker of the manifest a valid value (which must load) and the same value with a suffix
(which must be refused, naming the place), through the loader, so no checker can be missed by calling it
the wrong way. The JSON Schema's patterns are checked in every dialect that reads them.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest

from planner.errors import ManifestError
from planner.manifest import Manifest, load_manifest
from planner.manifest import schema as sch

TEMPLATE = """\
version: 1
project: {project}
vars:
  {var}: {{default: x}}
backends:
  cluster:
    type: argo
    argo:
      namespace: {namespace}
      service_account: {account}
      labels: {{{label_key}: {label_value}}}
    ignore_changes: [{pointer}]
  aws:
    type: stepfunctions
    stepfunctions:
      region: {region}
      execution_role_arn: {role}
      account_id: {aws_account}
      name_prefix: {prefix}
      job_queue: q
schedules:
  {schedule}: {{cron: "0 * * * *"}}
events:
  {event}:
    source: s
    type: t
    filters: [{{path: {filter_path}, value: v}}]
sinks:
  {sink}:
    type: warehouse
    uri: "redshift://h/DB"
    table: t
    credentials: {{secret: {secret}, key: {secret_key}}}
  vault:
    type: warehouse
    uri: "redshift://h/DB"
    table: t
    credentials: {{arn: {secret_arn}}}
flows:
  {flow}:
    backend: cluster
    image: busybox
    schedule: {schedule}
    tags: {{team: ml}}
    parameters:
      {parameter}: {{default: "1"}}
    triggers: [{{event: {event}}}]
    sinks: [{sink}]
    steps:
      {step}:
        command: [echo, hi]
        env: {{{env}: x}}
  other:
    backend: aws
    image: busybox
    sinks: [vault]
    steps:
      start: {{command: [echo, hi]}}
"""

VALID: dict[str, str] = {
    "project": "sec",
    "var": "region_name",
    "namespace": "ml-prod",
    "account": "runner.v1",
    "label_key": "example.com/team",
    "label_value": "ml",
    "pointer": "CronWorkflow:/spec/suspend",
    "region": "eu-west-1",
    "role": "arn:aws:iam::123456789012:role/run",
    "aws_account": "123456789012",
    "prefix": "fp",
    "schedule": "hourly",
    "event": "landed",
    "filter_path": "bucket.name",
    "sink": "scores",
    "secret": "writer",
    "secret_key": "password",
    "secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db",
    "flow": "greet",
    "parameter": "day",
    "step": "start",
    "env": "MODE",
}

#: Stray characters a valid name must not carry: a newline (what ``$`` lets through), a carriage
#: return, a NUL, a trailing space, and a Cyrillic "а" (U+0430) that reads as the Latin "a".
SUFFIXES = {"newline": "\n", "cr": "\r", "nul": "\x00", "space": " ", "cyrillic-a": "\u0430"}


def _load(values: dict[str, str], branch: str = "prod") -> Manifest:
    text = TEMPLATE.format(**{key: json.dumps(value) for key, value in values.items()})
    return load_manifest("flows.yaml", raw=text.encode(), branch=branch)


def test_the_valid_table_loads() -> None:
    manifest = _load(VALID)
    assert sorted(manifest.flows) == ["greet", "other"]


@pytest.mark.parametrize("suffix", SUFFIXES.values(), ids=SUFFIXES.keys())
@pytest.mark.parametrize("field", VALID)
def test_a_valid_name_with_a_stray_character_is_refused(field: str, suffix: str) -> None:
    with pytest.raises(ManifestError) as caught:
        _load({**VALID, field: VALID[field] + suffix})
    assert "flows.yaml:" in str(caught.value)


@pytest.mark.parametrize("suffix", SUFFIXES.values(), ids=SUFFIXES.keys())
def test_a_branch_with_a_stray_character_is_refused(suffix: str) -> None:
    assert _load(VALID, branch="pr-1").branch == "pr-1"
    with pytest.raises(ManifestError, match="branch"):
        _load(VALID, branch="pr-1" + suffix)


PATTERNS = [sch.NAME, sch.FLOW_NAME, sch.STEP_NAME, sch.VAR_NAME, sch.ENV_NAME, sch.PARAM_NAME]


def _ecma_search(pattern: str, text: str) -> bool:
    """The pattern as an editor's ECMA-262 engine reads it: ``$`` only at the very end (emulated with \\Z)."""
    python = re.sub(r"(?<!\\)\$", r"\\Z", pattern)
    return re.search(python, text) is not None


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize(("text", "valid"), [("abc", True), ("abc\n", False), ("abc\r", False), ("abc\n\n", False)])
def test_schema_patterns_give_one_answer_in_every_dialect(pattern: str, text: str, valid: bool) -> None:
    schema: dict[str, Any] = {"type": "string", "pattern": pattern}
    assert jsonschema.Draft202012Validator(schema).is_valid(text) is valid
    assert sch.compile_check(schema)(text) is valid
    assert _ecma_search(pattern, text) is valid


def test_every_pattern_in_the_published_schema_ends_without_a_newline() -> None:
    def patterns(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
            return found + [p for value in node.values() for p in patterns(value)]
        if isinstance(node, list):
            return [p for value in node for p in patterns(value)]
        return []

    found = patterns(sch.MANIFEST)
    assert found
    for pattern in found:
        assert re.search(pattern, "a\n") is None or not pattern.endswith("$"), pattern
        assert pattern.endswith(sch.END), pattern


@pytest.mark.parametrize(("length", "valid"), [(63, True), (64, False)])
def test_a_label_value_is_at_most_63_characters(length: int, valid: bool) -> None:
    values = {**VALID, "label_value": "v" * length}
    if valid:
        assert _load(values).flows
    else:
        with pytest.raises(ManifestError, match="not a valid label value"):
            _load(values)


@pytest.mark.parametrize(
    ("name", "valid"),
    [("a" * 63, True), ("a" * 64, False), ("a/" + "b" * 63, True), ("a/" + "b" * 64, False), ("a" * 254 + "/b", False)],
)
def test_a_label_key_is_a_253_character_prefix_and_a_63_character_name(name: str, valid: bool) -> None:
    values = {**VALID, "label_key": name}
    if valid:
        assert _load(values).flows
    else:
        with pytest.raises(ManifestError, match="not a valid label key"):
            _load(values)
