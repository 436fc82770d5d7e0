"""yamlsource: positions, merge keys, tags, duplicate keys and the limits that stop hostile input."""

from __future__ import annotations

import pytest

from planner.errors import Location, ManifestError
from planner.manifest import yamlsource
from planner.manifest.yamlsource import Source, dotted, parse_yaml


def _problems(text: str | bytes) -> list[str]:
    with pytest.raises(ManifestError) as info:
        parse_yaml(text.encode() if isinstance(text, str) else text, "f.yaml")
    return [str(p) for p in info.value.problems]


def test_plain_data_and_core_scalars() -> None:
    src = parse_yaml(
        b"a: 1\nb: 1.5\nc: true\nd: null\ne: 2024-01-01\nf: '007'\ng: !!str 12\nh: [x, {y: z}]\n", "f.yaml"
    )
    assert src.data == {
        "a": 1,
        "b": 1.5,
        "c": True,
        "d": None,
        "e": "2024-01-01",
        "f": "007",
        "g": "12",
        "h": ["x", {"y": "z"}],
    }


def test_keys_stay_text_even_when_yaml_would_read_them_as_booleans() -> None:
    assert parse_yaml(b"on: 1\nno: 2\n1: 3\n", "f.yaml").data == {"on": 1, "no": 2, "1": 3}


def test_byte_order_mark_is_accepted() -> None:
    assert parse_yaml(b"\xef\xbb\xbfa: 1\n", "f.yaml").data == {"a": 1}


def test_positions_of_values_and_keys() -> None:
    src = parse_yaml(b"flows:\n  train:\n    steps:\n      fit: {next: [a, b]}\n", "f.yaml")
    assert src.locate(("flows", "train", "steps", "fit", "next", 1)) == Location("f.yaml", 4, 23)
    assert src.locate_key(("flows", "train")) == Location("f.yaml", 2, 3)
    assert src.locate(("flows", "train")) == Location("f.yaml", 3, 5)


def test_position_of_a_missing_path_is_its_nearest_ancestor() -> None:
    src = parse_yaml(b"flows:\n  train:\n    image: x\n", "f.yaml")
    assert src.locate_key(("flows", "train", "steps", "fit")) == Location("f.yaml", 2, 3)
    assert src.locate(("flows", "nope", "x")) == Location("f.yaml", 2, 3)
    assert src.locate(("flows", "train", "image", 3)) == Location("f.yaml", 3, 12)


def test_merge_keys_explicit_keys_win_and_earlier_sources_win() -> None:
    src = parse_yaml(
        b"base: &base {image: a, retries: 1}\nmore: &more {image: b, timeout: 5m}\n"
        b"step:\n  <<: [*base, *more]\n  retries: 3\n",
        "f.yaml",
    )
    assert src.data["step"] == {"retries": 3, "image": "a", "timeout": "5m"}
    assert src.locate(("step", "image")) == Location("f.yaml", 1, 21)


def test_merging_something_that_is_not_a_mapping_is_refused() -> None:
    assert _problems("a: &a [1]\nb:\n  <<: *a\n") == [
        "f.yaml:3:3: b.<<: a merge key (<<) takes a mapping or a list of mappings"
    ]


@pytest.mark.parametrize(
    "text",
    [
        "a: !!python/object/apply:os.system [ls]\n",
        "a: !!binary aGVsbG8=\n",
        "a: !custom x\n",
        "a: !!set {x, y}\n",
        "!!python/name:os.system a: 1\n",
    ],
)
def test_foreign_tags_are_refused_not_constructed(text: str) -> None:
    (problem,) = _problems(text)
    assert "unsupported YAML tag" in problem


def test_duplicate_keys_at_every_level_are_reported_together() -> None:
    assert _problems("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n") == [
        "f.yaml:4:3: b.c: duplicate key 'c' (first defined at line 3) "
        "(YAML would silently keep only the last one; remove or rename one of them)",
        "f.yaml:5:1: a: duplicate key 'a' (first defined at line 1) "
        "(YAML would silently keep only the last one; remove or rename one of them)",
    ]


def test_keys_overridden_through_a_merge_are_not_duplicates() -> None:
    assert parse_yaml(b"b: &b {x: 1}\nc:\n  <<: *b\n  x: 2\n", "f.yaml").data["c"] == {"x": 2}


def test_complex_keys_are_refused() -> None:
    (problem,) = _problems("? [a, b]\n: 1\n")
    assert "mapping keys must be plain strings" in problem


def test_syntax_errors_name_line_column_and_path() -> None:
    (problem,) = _problems("flows:\n  a:\n    steps: [x, y\n")
    assert problem.startswith("f.yaml:4:1: flows.a.steps[1]: invalid YAML:")


def test_tabs_get_their_own_message() -> None:
    (problem,) = _problems("a:\n\tb: 1\n")
    assert "a tab character" in problem and "spaces" in problem


def test_shared_aliases_are_counted_as_expanded(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\nb: [*a, *a, *a, *a]\n"
    assert parse_yaml(text.encode(), "f.yaml").data["b"][3] == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    monkeypatch.setattr(yamlsource, "MAX_EXPANDED_NODES", 30)
    (problem,) = _problems(text)
    assert problem.startswith("f.yaml:2:") and "alias bomb" in problem


def test_billion_laughs_is_refused_without_walking_the_expansion(converter_visits: list[int]) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefghi", "bcdefghij", strict=True):
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    (problem,) = _problems("\n".join(lines) + "\n")
    assert "alias bomb" in problem
    # Each distinct node converted once, each alias one memo hit: about a hundred, against 9**10 expanded.
    assert len(converter_visits) < 200


def test_nesting_is_bounded() -> None:
    (problem,) = _problems("a: " + "[" * 70 + "]" * 70 + "\n")
    assert "nesting deeper than 64 levels" in problem
    assert parse_yaml(("a: " + "[" * 60 + "]" * 60 + "\n").encode(), "f.yaml").data is not None


def test_libyaml_nesting_limit_is_an_error_too() -> None:
    (problem,) = _problems("a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "invalid YAML" in problem


def test_size_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlsource, "MAX_BYTES", 10)
    (problem,) = _problems(b"a: 1234567890\n")
    assert "manifests are limited to" in problem


def test_binary_and_non_utf8_input() -> None:
    assert _problems(b"\x00\x01\x02") == [
        "f.yaml: this is a binary file, not YAML (check that the right file was given)"
    ]
    assert _problems(b"a: 1\nb: caf\xe9\n") == ["f.yaml:2:7: the file is not valid UTF-8 (byte 0xe9); save it as UTF-8"]


def test_empty_document_is_none() -> None:
    assert parse_yaml(b"", "f.yaml").data is None
    assert parse_yaml(b"# just a comment\n", "f.yaml").data is None


def test_multiple_documents_are_refused() -> None:
    (problem,) = _problems("a: 1\n---\nb: 2\n")
    assert "invalid YAML" in problem and "single document" in problem


def test_dotted() -> None:
    assert dotted(("flows", "train", "steps", "fit", "next", 0)) == "flows.train.steps.fit.next[0]"
    assert dotted(()) == ""
    assert dotted((0, "a")) == "[0].a"


def test_positions_recorded_while_converting_are_the_ones_a_walk_from_the_root_finds() -> None:
    text = (
        "base: &base {image: py, env: {A: '1'}}\n"
        "flows:\n"
        "  f:\n"
        "    <<: *base\n"
        "    steps:\n"
        "      start: {command: [run], next: [a, b]}\n"
        "      a: {command: [x, {y: 1}]}\n"
        "    triggers:\n"
        "      - {event: e}\n"
        "      - after: f\n"
        "  g: *base\n"
    )
    recorded = parse_yaml(text, "flows.yaml")
    assert recorded._walked  # the converter recorded the paths to containers
    walking = Source(recorded.file, recorded.data, recorded.root)  # nothing recorded: every lookup walks
    for path in list(recorded._walked):
        assert recorded.locate(path) == walking.locate(path), path
        assert recorded.locate_key(path) == walking.locate_key(path), path
    for path in [("flows", "f", "image"), ("flows", "g", "env", "A"), ("flows", "f", "steps", "start", "next", 1)]:
        assert recorded.locate_key(path) == walking.locate_key(path), path
