"""Characters that change how text looks without showing themselves, shown as ``\\uXXXX`` instead.

A bidirectional override (U+202E) makes ``safe\\u202eevil`` display reversed; a zero-width space
(U+200B) makes two different names look the same; a line separator (U+2028) starts a line that is
not one. In a plan a reviewer approves, each must be visible: every character of the Unicode
categories Cf (format: bidi controls, zero-width characters, the BOM, the soft hyphen), Zl and Zp
(line and paragraph separators) is written as its ``\\uXXXX`` (``\\UXXXXXXXX``) escape.

:func:`escape_invisible` works on finished output: inside a JSON string the escape is valid JSON
and decodes to the same value. :func:`escape_values` works on a view before it is rendered, and
also escapes control characters other than newline and tab (a carriage return or an ANSI escape in
a value could overwrite what the terminal shows); it leaves the renderer's own colour codes alone.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import orjson

_HIDDEN = frozenset({"Cf", "Zl", "Zp"})
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _hidden(char: str) -> bool:
    return unicodedata.category(char) in _HIDDEN


def escape_invisible(text: str) -> str:
    """``text`` with every format, line- and paragraph-separator character written as its escape."""
    if text.isascii():
        return text
    return "".join(_escape(c) if not c.isascii() and _hidden(c) else c for c in text)


def _escape_value(text: str) -> str:
    text = escape_invisible(text)
    return _ASCII_CONTROL.sub(lambda m: _escape(m.group()), text) if not text.isprintable() else text


def escape_values(value: Any) -> Any:
    """A JSON-like value with every string (keys included) passed through the value escaping.

    ``value`` itself when nothing in it needs an escape (the common case, found from one
    serialisation instead of a walk over every string of a large plan).
    """
    if not _needs_escaping(value):
        return value
    return _escape_walk(value)


#: How orjson writes the ASCII control characters other than newline and tab (DEL stays raw).
_ESCAPED_CONTROLS = (b"\\u00", b"\\b", b"\\f", b"\\r", b"\x7f")


def _needs_escaping(value: Any) -> bool:
    """False only when no string under ``value`` holds a hidden or control character (a false alarm costs the walk)."""
    try:
        blob = orjson.dumps(value)
    except TypeError:  # not JSON-like (orjson.JSONEncodeError is a TypeError): walk it
        return True
    if any(seq in blob for seq in _ESCAPED_CONTROLS):
        return True
    if blob.isascii():
        return False
    return any(_hidden(c) for c in blob.decode() if not c.isascii())


def _escape_walk(value: Any) -> Any:
    if isinstance(value, str):
        return _escape_value(value)
    if isinstance(value, list):
        return [_escape_walk(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_escape_walk(v) for v in value)
    if isinstance(value, dict):
        return {(_escape_value(k) if isinstance(k, str) else k): _escape_walk(v) for k, v in value.items()}
    return value
