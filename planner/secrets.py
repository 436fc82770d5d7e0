"""Finding and masking a secret in every encoding flowplan's outputs use (stdlib only, pure).

A rendering never carries a secret only as its raw characters: JSON escapes a quote, a backslash
and (by default) every non-ASCII character, YAML's double-quoted style escapes them its own way,
a URI carries it percent-encoded, a Kubernetes Secret base64-encoded. Searching the escaped text
for the raw value misses all of these, so :func:`find` walks a body's strings (decoded values) and
also looks for each spelling and for the percent-decoded text; :func:`scrub` masks every spelling.

A value shorter than :data:`MIN_LENGTH` cannot be masked safely: ``risk`` would be cut out of
``risk-scores``. The manifest loader refuses such sensitive values instead of masking them.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any
from urllib.parse import quote, quote_plus, unquote, unquote_plus

#: Fewest characters a sensitive value may have: a shorter one is too likely to occur inside a name.
MIN_LENGTH = 8

#: What a masked secret reads as.
MASK = "(sensitive)"


def too_short(value: str) -> bool:
    """True when ``value`` is too short to mask without cutting pieces out of names and addresses."""
    return len(value) < MIN_LENGTH


def _yaml_double_quoted(secret: str) -> str:
    """The secret as PyYAML writes it in a double-quoted scalar (non-ASCII as ``\\xNN``/``\\uNNNN``)."""
    out = []
    for char in secret:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= code < 0x7F:
            out.append(char)
        elif code <= 0xFF:
            out.append(f"\\x{code:02X}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04X}")
        else:
            out.append(f"\\U{code:08X}")
    return "".join(out)


def _base64_cores(secret: str) -> set[str]:
    """The part of the secret's base64 that is the same wherever it sits in a longer encoded text.

    Base64 turns 3 bytes into 4 characters, so the encoding of a secret inside longer data depends on
    its offset modulo 3: for each offset, the characters made only from the secret's own bytes.
    """
    data = secret.encode()
    cores = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode()
        start = 4 if offset else 0
        end = ((offset + len(data)) // 3) * 4
        core = encoded[start:end]
        if len(core) >= MIN_LENGTH:
            cores.add(core)
            cores.add(core.replace("+", "-").replace("/", "_"))
    return cores


@lru_cache(maxsize=256)
def spellings(secret: str) -> frozenset[str]:
    """Every way a rendering may carry ``secret``: raw, JSON/YAML-escaped, percent-encoded, base64."""
    if not secret:
        return frozenset()
    found = {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        _yaml_double_quoted(secret),
        secret.replace("\\", "\\\\").replace('"', '\\"'),
        secret.replace("'", "''"),
        quote(secret, safe=""),
        re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), quote(secret, safe="")),
        quote(secret),
        quote_plus(secret),
        *_base64_cores(secret),
    }
    # A JSON text inside a JSON string (a parameter holding a list) escapes the escapes once more.
    found.add(json.dumps(json.dumps(secret)[1:-1])[1:-1])
    return frozenset(s for s in found if s)


def _texts(value: Any) -> Iterable[str]:
    """Every string in a JSON-like value, keys included."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            for key, item in node.items():
                if isinstance(key, str):
                    yield key
                stack.append(item)
        elif isinstance(node, list | tuple):
            stack.extend(node)


def contains(text: str, secrets: Iterable[str]) -> bool:
    """True when ``text`` carries one of ``secrets`` in any spelling (percent-decoded text included)."""
    decoded = {text}
    if "%" in text or "+" in text:
        decoded |= {unquote(text), unquote_plus(text)}
    for secret in secrets:
        for spelling in spellings(secret):
            if any(spelling in candidate for candidate in decoded):
                return True
    return False


def find(value: Any, secrets: Iterable[str]) -> bool:
    """True when any string of the JSON-like ``value`` (a resource body) carries one of ``secrets``.

    The strings are searched joined by NUL (one pass per spelling, not one per string); those that may
    be percent-encoded are also decoded one by one.
    """
    wanted = [s for s in secrets if s]
    if not wanted:
        return False
    texts = list(_texts(value))
    joined = "\0".join(texts)
    needles = {spelling for secret in wanted for spelling in spellings(secret)}
    if any(needle in joined for needle in needles):
        return True
    return any(contains(text, wanted) for text in texts if "%" in text or "+" in text)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every spelling of every secret replaced by :data:`MASK` (longest first)."""
    needles = sorted({sp for s in secrets if s for sp in spellings(s)}, key=len, reverse=True)
    for needle in needles:
        if needle in text:
            text = text.replace(needle, MASK)
    return text
