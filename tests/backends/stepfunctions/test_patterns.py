"""Event patterns: every filter op, ``after:`` on alias-started executions, and what cannot be expressed.

moto's ``TestEventPattern`` is not implemented, so the patterns are checked with
the small EventBridge matcher below, written from the EventBridge user guide
("Event patterns", "Content filtering"): values of a field are OR-ed, fields
AND-ed; ``prefix``, ``numeric``, ``anything-but`` and ``exists`` as documented;
every matcher but ``exists: false`` needs the field to be present.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from backends.stepfunctions.patterns import EXECUTION_STATUS_CHANGE, after_pattern, event_pattern
from planner.errors import ManifestError
from tests.backends.stepfunctions.helpers import compile_manifest, load
from tests.backends.stepfunctions.test_compile import BACKEND

_MISSING = object()


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    for key, rule in pattern.items():
        value = event.get(key, _MISSING) if isinstance(event, dict) else _MISSING
        if isinstance(rule, dict):
            if not isinstance(value, dict) or not matches(rule, value):
                return False
        elif not any(_one(matcher, value) for matcher in rule):
            return False
    return True


def _one(matcher: Any, value: Any) -> bool:
    if isinstance(matcher, dict):
        ((op, arg),) = matcher.items()
        if op == "exists":
            return (value is not _MISSING) == arg
        if value is _MISSING:
            return False
        if op == "prefix":
            return isinstance(value, str) and value.startswith(arg)
        if op == "anything-but":
            return value != arg and not (isinstance(arg, list) and value in arg)
        if op == "numeric":
            if not isinstance(value, int | float) or isinstance(value, bool):
                return False
            checks = {"=": value.__eq__, ">": value.__gt__, ">=": value.__ge__, "<": value.__lt__, "<=": value.__le__}
            return all(checks[arg[i]](arg[i + 1]) for i in range(0, len(arg), 2))
        raise AssertionError(f"unknown matcher {op}")
    if isinstance(value, list):
        return matcher in value
    return value is not _MISSING and value == matcher and type(value) is type(matcher)


ARN = "arn:aws:states:eu-west-1:123456789012:stateMachine:recsys-prod-ingest"


def status_change(arn: str, status: str = "SUCCEEDED") -> dict[str, Any]:
    return {
        "source": "aws.states",
        "detail-type": EXECUTION_STATUS_CHANGE,
        "detail": {"executionArn": f"{arn}:run-1", "stateMachineArn": arn, "status": status},
    }


@pytest.mark.parametrize(
    ("arn", "status", "expected"),
    [
        (ARN, "SUCCEEDED", True),
        (f"{ARN}:live", "SUCCEEDED", True),
        (f"{ARN}:7", "SUCCEEDED", True),
        (ARN, "FAILED", False),
        (f"{ARN}-backfill", "SUCCEEDED", False),
        (f"{ARN}2:live", "SUCCEEDED", False),
        ("arn:aws:states:eu-west-1:123456789012:stateMachine:recsys-staging-ingest", "SUCCEEDED", False),
    ],
)
def test_after_matches_the_upstream_however_its_arn_is_qualified(arn: str, status: str, expected: bool) -> None:
    assert matches(after_pattern(ARN), status_change(arn, status)) is expected


EVENTS = """
events:
  settled:
    source: processor
    type: settlement.completed
    filters:
      - {path: currency, op: in, value: [EUR, USD]}
      - {path: amount_cents, op: gte, value: 100}
      - {path: amount_cents, op: lt, value: 100000}
      - {path: attempt, op: lt, value: 3}
      - {path: region, op: ne, value: test}
      - {path: file.name, op: prefix, value: "settlements/2026.*"}
      - {path: file.checksum, op: exists}
      - {path: live, op: eq, value: true}
      - {path: dry, op: ne, value: true}
      - {path: priority, op: in, value: [1, 2, 3]}
      - {path: merchant, op: eq, value: "acme (eu)"}
      - {path: batch.size, op: eq, value: 5}
    parameters:
      batch_id: batch.id
"""

GOOD = {
    "currency": "EUR",
    "amount_cents": 250,
    "attempt": 1,
    "region": "eu",
    "file": {"name": "settlements/2026.*/a.csv", "checksum": "abc"},
    "live": True,
    "dry": False,
    "priority": 2,
    "merchant": "acme (eu)",
    "batch": {"size": 5.0, "id": "b-1"},
}


def _event_manifest(tmp_path: Path, events: str) -> Any:
    text = f"version: 1\nproject: pay\n{BACKEND}{textwrap.dedent(events)}\nflows:\n  settle:\n    image: i\n"
    text += "    parameters: {batch_id: ''}\n    triggers: [{event: settled}]\n    steps: {start: {command: [x]}}\n"
    (tmp_path / "flows.yaml").write_text(text)
    return load(tmp_path / "flows.yaml", var_files=())


def test_every_filter_op_has_its_eventbridge_form(tmp_path: Path) -> None:
    manifest = _event_manifest(tmp_path, EVENTS)
    pattern, problems = event_pattern(manifest.events["settled"], "events.settled")
    assert problems == []
    assert pattern["detail"]["amount_cents"] == [{"numeric": [">=", 100, "<", 100000]}]
    assert pattern["detail"]["region"] == [{"anything-but": "test"}]
    assert pattern["detail"]["dry"] == [False]
    assert pattern["detail"]["file"] == {"checksum": [{"exists": True}], "name": [{"prefix": "settlements/2026.*"}]}
    event = {"source": "processor", "detail-type": "settlement.completed", "detail": GOOD}
    assert matches(pattern, event)
    misses = {
        "currency": "GBP",
        "amount_cents": 99,
        "attempt": 3,
        "region": "test",
        "file": {"name": "settlements/2025/a.csv", "checksum": "x"},
        "live": False,
        "dry": True,
        "priority": 4,
        "merchant": "acme",
    }
    for key, value in misses.items():
        assert not matches(pattern, {**event, "detail": {**GOOD, key: value}}), key
    assert not matches(pattern, {**event, "detail": {**GOOD, "file": {"name": "settlements/2026.*/a"}}})
    assert not matches(pattern, {**event, "source": "other"})
    assert not matches(pattern, {**event, "detail-type": "settlement.failed"})


def test_what_eventbridge_cannot_and_is_refused_at_the_filter(tmp_path: Path) -> None:
    events = """
    events:
      settled:
        source: processor
        type: settlement.completed
        filters:
          - {path: region, op: ne, value: test}
          - {path: region, op: prefix, value: eu-}
          - {path: file, op: exists}
          - {path: file.name, op: eq, value: x}
    """
    with pytest.raises(ManifestError) as info:
        compile_manifest(_event_manifest(tmp_path, events))
    found = {p.path: p.message for p in info.value.problems}
    assert set(found) == {"events.settled.filters[1]", "events.settled.filters[3]"}
    assert "cannot both hold" in found["events.settled.filters[1]"]
    assert "both a value and a parent" in found["events.settled.filters[3]"]
