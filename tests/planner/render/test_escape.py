"""planner.render.escape: invisible and bidirectional characters are shown, JSON stays equal in value."""

from __future__ import annotations

import json

import pytest

from planner.render.escape import escape_invisible, escape_values

HIDDEN = ["\u202a", "\u202e", "\u2066", "\u2069", "\u200b", "\u200f", "\u2028", "\u2029", "\ufeff", "\u00ad", "\u061c"]


@pytest.mark.parametrize("char", HIDDEN)
def test_each_hidden_character_is_written_as_its_escape(char: str) -> None:
    shown = escape_invisible(f"safe{char}evil")
    assert char not in shown and f"\\u{ord(char):04x}" in shown


@pytest.mark.parametrize("char", HIDDEN)
def test_escaped_json_is_valid_and_equal_in_value(char: str) -> None:
    data = {f"k{char}": [f"v{char}", "\\", 'q"'], "plain": "é ü 日本"}
    text = escape_invisible(json.dumps(data, ensure_ascii=False))
    assert char not in text and json.loads(text) == data
    assert "é ü 日本" in text  # ordinary non-ASCII text is left as it is


def test_values_also_show_control_characters_but_keep_newlines_and_tabs() -> None:
    assert escape_values({"a\u202e": ["x\x1b[2Jy", "one\ntwo\tthree", "back\rtrack"]}) == {
        "a\\u202e": ["x\\u001b[2Jy", "one\ntwo\tthree", "back\\u000dtrack"]
    }
