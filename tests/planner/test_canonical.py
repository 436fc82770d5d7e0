"""The canonical JSON every hash is taken over (planner.resources.canonical_bytes)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from planner.resources import canonical_bytes, canonical_json, digest


def _stdlib(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


# What bodies hold: strings (any Unicode, control characters included), 64-bit integers, booleans,
# null, and mappings and lists of them. (Floats below 1e-4 are spelled differently: see the docstring.)
_SCALARS = (
    st.text()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.booleans()
    | st.none()
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: f == 0 or abs(f) >= 1e-4)
)
_BODIES = st.recursive(_SCALARS, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=40)


@settings(max_examples=300, deadline=None)
@given(_BODIES)
def test_same_bytes_as_the_standard_library(value: Any) -> None:
    assert canonical_bytes(value) == _stdlib(value)


def test_what_orjson_refuses_takes_the_standard_spelling() -> None:
    huge = {"n": 2**70, "k": {1: "int key"}}
    assert canonical_bytes(huge) == json.dumps(huge, sort_keys=True, separators=(",", ":")).encode()
    assert canonical_bytes(huge) == canonical_bytes(json.loads(json.dumps(huge)) | {"k": {1: "int key"}})


def test_key_order_and_spacing_never_change_the_digest() -> None:
    a = {"b": [1, {"y": "ü", "x": None}], "a": True}
    b = {"a": True, "b": [1, {"x": None, "y": "ü"}]}
    assert canonical_json(a) == '{"a":true,"b":[1,{"x":null,"y":"ü"}]}'
    assert digest(a) == digest(b)
    assert digest(a) != digest({**a, "a": False})
