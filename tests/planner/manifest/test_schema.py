"""The JSON Schema: the shipped file is current, accepts the repository's manifests, rejects the structural corpus.

Checked with ``jsonschema`` directly on YAML parsed by plain pyyaml, the way
an editor (yaml-language-server) sees the file, so the schema stands on its own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from planner.manifest import json_schema
from planner.manifest import schema as sch
from tests.planner.manifest.conftest import REPO, corpus_cases

SCHEMA_FILE = REPO / "docs" / "flows.schema.json"
REGENERATE = (
    '.venv/bin/python -c "import json; from planner.manifest import json_schema; '
    "open('docs/flows.schema.json', 'w').write(json.dumps(json_schema(), indent=2, sort_keys=True) + '\\n')\""
)
VALIDATOR = jsonschema.Draft202012Validator(json_schema())


def _repo_manifests() -> list[Path]:
    return [REPO / "flows.yaml", *sorted((REPO / "examples").glob("**/flows.yaml"))]


def test_schema_file_is_current() -> None:
    expected = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    assert SCHEMA_FILE.exists(), f"docs/flows.schema.json is missing; regenerate it with:\n  {REGENERATE}"
    assert SCHEMA_FILE.read_text() == expected, (
        f"docs/flows.schema.json is out of date; regenerate it with:\n  {REGENERATE}"
    )


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(json_schema())


def test_repository_manifest_points_editors_at_the_schema() -> None:
    first = (REPO / "flows.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=docs/flows.schema.json"


@pytest.mark.parametrize("path", _repo_manifests(), ids=lambda p: str(p.relative_to(REPO)))
def test_schema_accepts_the_repository_manifests(path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(data)]
    assert errors == []
    assert sch.check_manifest(data), "the fast check disagrees with jsonschema"


STRUCTURAL = [c for c in corpus_cases() if c.structural]


def test_enough_cases_are_marked_structural() -> None:
    assert len(STRUCTURAL) >= 12


@pytest.mark.parametrize("case", STRUCTURAL, ids=[c.name for c in STRUCTURAL])
def test_schema_rejects_the_structural_corpus(case: Any) -> None:
    data = yaml.safe_load((case.folder / "flows.yaml").read_text())
    assert not VALIDATOR.is_valid(data)
    assert not sch.check_manifest(data), "the fast check disagrees with jsonschema"


def test_fast_check_refuses_keywords_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="oneOf"):
        sch.compile_check({"oneOf": [{"type": "string"}]})


@pytest.mark.parametrize(
    ("schema", "value", "valid"),
    [
        ({"type": "integer"}, 1.0, True),
        ({"type": "integer"}, True, False),
        ({"type": "number"}, False, False),
        ({"const": 1}, True, False),
        ({"const": 1}, 1.0, True),
        ({"enum": ["a", "b"]}, "c", False),
        ({"type": "array", "uniqueItems": True}, [1, True], True),
        ({"type": "array", "uniqueItems": True}, ["a", "a"], False),
        ({"if": {"properties": {"t": {"const": "x"}}}, "then": {"required": ["y"]}}, {"t": "x"}, False),
        ({"if": {"properties": {"t": {"const": "x"}}}, "then": {"required": ["y"]}}, {"t": "z"}, True),
        ({"propertyNames": {"pattern": "^[a-z]+$"}}, {"A": 1}, False),
        ({"minLength": 1}, "", False),
        ({"minimum": 0}, -1, False),
        ({"minimum": 0}, "x", True),
    ],
)
def test_fast_check_agrees_with_jsonschema_on_edge_cases(schema: dict[str, Any], value: Any, valid: bool) -> None:
    assert jsonschema.Draft202012Validator(schema).is_valid(value) is valid
    assert sch.compile_check(schema)(value) is valid


def _property_names(node: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                names |= set(value)
            names |= _property_names(value)
    elif isinstance(node, list):
        for value in node:
            names |= _property_names(value)
    return names


def test_docs_mention_every_key_of_the_schema() -> None:
    """docs/manifest.md documents every key the schema knows (written as `key`)."""
    docs = (REPO / "docs" / "manifest.md").read_text()
    missing = sorted(name for name in _property_names(json_schema()) if f"`{name}`" not in docs)
    assert missing == []
