"""Fuzzing the loader: whatever the input, the only exception that escapes is ManifestError.

Two generators: YAML-ish text (syntax edge cases, tags, anchors, tabs, odd
bytes) and structurally plausible manifests (the repository's flows.yaml with
random mutations: values replaced, keys dropped or added, lists reshaped). The
second also checks that the schema's fast check agrees with jsonschema.

The default suite runs a couple of hundred examples; ``pytest -m slow`` runs 10,000 (300 with
``FLOWPLAN_TRIAL_SCALE=seed``, as CI does).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.errors import ManifestError
from planner.manifest import json_schema, load_manifest
from planner.manifest import schema as sch
from tests.planner.manifest.conftest import REPO

BASE = yaml.safe_load((REPO / "flows.yaml").read_text())
VALIDATOR = jsonschema.Draft202012Validator(json_schema())

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: ``pytest -m slow`` runs 10,000 examples; CI's small seed (``FLOWPLAN_TRIAL_SCALE=seed``) runs 300.
LONG_EXAMPLES = 300 if os.environ.get("FLOWPLAN_TRIAL_SCALE", "full").strip().lower() == "seed" else 10_000
SLOW = settings(max_examples=LONG_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_TOKENS = [
    "version: 1\n",
    "project: p\n",
    "flows:\n",
    "  f:\n",
    "    steps:\n",
    "      start:\n",
    "        command: [a]\n",
    "next: ",
    "- ",
    ": ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "&a ",
    "*a",
    "<<: ",
    "!!python/object ",
    "!tag ",
    "? ",
    "|\n",
    ">-\n",
    "'",
    '"',
    "#",
    "\t",
    "\n",
    "  ",
    "---\n",
    "...\n",
    "{{ vars.x }}",
    "{% for %}",
    "\x00",
    "\ufeff",
    "é",
    "null",
    "~",
    "yes",
    "0x1F",
    "1e309",
    ".inf",
    "2024-01-01",
    "@",
    "`",
    "%YAML 1.1\n",
    "%TAG ! tag:x,2000:\n",
]

yamlish = st.lists(st.sampled_from(_TOKENS) | st.text(max_size=8), max_size=40).map("".join)

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(
        [
            "{{ vars.registry }}",
            "{{ vars.nope }}",
            "{{ workflow.parameters.x }}",
            "{{ 'x' * 10**9 }}",
            "{{",
            "0 2 * * *",
            "0 0 30 2 *",
            "@daily",
            "* * * * * *",
            "Europe/Berlin",
            "Mars/Base",
            "500m",
            "4Gi",
            "30m",
            "-1",
            "start",
            "end",
            "evaluate",
            "ingest",
            "train",
            "warehouse",
            "nightly",
            "raw-data-landed",
            "arn:aws:iam::123456789012:role/x",
            "CronWorkflow:/spec/suspend",
            "local",
            "postgres://u:p@h/db",
        ]
    ),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=10) | _SCALARS.filter(lambda v: isinstance(v, str)), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*prefix, i))
    return found


def _mutate(data: Any, draw: Callable[[st.SearchStrategy[Any]], Any]) -> Any:
    doc = copy.deepcopy(data)
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        if not path:
            if draw(st.booleans()):
                doc = draw(_VALUES)
            continue
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        action = draw(st.sampled_from(["replace", "delete", "add", "rename"]))
        if action == "replace":
            parent[last] = draw(_VALUES)
        elif action == "delete":
            del parent[last]
        elif action == "add" and isinstance(parent[last], dict):
            parent[last][draw(st.text(max_size=10))] = draw(_VALUES)
        elif action == "add" and isinstance(parent[last], list):
            parent[last].append(draw(_VALUES))
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(st.text(max_size=12))] = parent.pop(last)
    return doc


def _load_raw(raw: bytes, tmp: Path) -> None:
    try:
        load_manifest(tmp / "flows.yaml", raw=raw, branch="prod")
    except ManifestError as exc:
        assert exc.problems, "a ManifestError without problems"
        exc.render()


def _check_text(text: str, tmp: Path) -> None:
    _load_raw(text.encode("utf-8", "surrogatepass") if "\ud800" not in text else text.encode("utf-8", "replace"), tmp)


def _check_mutation(draw: Callable[[st.SearchStrategy[Any]], Any], tmp: Path) -> None:
    doc = _mutate(BASE, draw)
    assert sch.check_manifest(doc) == VALIDATOR.is_valid(doc), "the fast check disagrees with jsonschema"
    try:
        text = yaml.safe_dump(doc, allow_unicode=True)
    except (yaml.YAMLError, ValueError, OverflowError):
        return
    _load_raw(text.encode("utf-8", "replace"), tmp)


@FAST
@given(yamlish)
def test_yamlish_text_only_raises_manifest_errors(text: str) -> None:
    _check_text(text, Path("/nonexistent"))


@FAST
@given(st.data())
def test_mutated_manifests_only_raise_manifest_errors(data: st.DataObject) -> None:
    _check_mutation(data.draw, Path("/nonexistent"))


@pytest.mark.slow
@SLOW
@given(yamlish)
def test_yamlish_text_only_raises_manifest_errors_long(text: str) -> None:
    _check_text(text, Path("/nonexistent"))


@pytest.mark.slow
@SLOW
@given(st.data())
def test_mutated_manifests_only_raise_manifest_errors_long(data: st.DataObject) -> None:
    _check_mutation(data.draw, Path("/nonexistent"))
