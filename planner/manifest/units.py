"""CPU, memory and duration values as people write them in a manifest.

Kubernetes quantities are parsed here rather than with the kubernetes
client's helper because the manifest layer must not import a cloud SDK, and
because we want messages that say what *is* allowed.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_DURATION = re.compile(r"^(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?$")


#: Kubernetes keeps quantities in a signed 64-bit integer (bytes, millicores): larger values overflow.
MAX_QUANTITY = 2**63 - 1


class UnitError(ValueError):
    """A value that is not a valid quantity or duration; the message says what is."""


# The parsers are cached: a large manifest repeats a few dozen distinct values
# ("500m", "4Gi", "30m") thousands of times, and Decimal parsing is not free.


def _parse(text: str) -> tuple[Decimal, str]:
    match = _QUANTITY.fullmatch(text.strip())
    if not match:
        raise UnitError(f"{text!r} is not a quantity")
    try:
        return Decimal(match.group(1)), match.group(2) or ""
    except InvalidOperation:  # pragma: no cover - the regex admits only valid decimals
        raise UnitError(f"{text!r} is not a quantity") from None


@lru_cache(maxsize=1024)
def cpu_millis(value: str | int | float) -> int:
    """CPU as millicores: ``500m`` → 500, ``2`` → 2000, ``0.5`` → 500."""
    text = str(value)
    try:
        number, suffix = _parse(text)
    except UnitError:
        raise UnitError(f"cpu {text!r} is not a Kubernetes quantity; write 500m, 1, 2 or 0.5") from None
    if suffix == "m":
        millis = number
    elif suffix == "":
        millis = number * 1000
    else:
        raise UnitError(f"cpu {text!r}: use millicores (500m) or cores (2), not {suffix!r}")
    if millis != millis.to_integral_value():
        raise UnitError(f"cpu {text!r} is finer than a millicore")
    if millis <= 0:
        raise UnitError(f"cpu {text!r} must be more than zero")
    if millis > MAX_QUANTITY:
        raise UnitError(f"cpu {text!r} is more than any machine has (Kubernetes quantities end at 2^63)")
    return int(millis)


@lru_cache(maxsize=1024)
def memory_bytes(value: str | int) -> int:
    """Memory in bytes: ``512Mi``, ``4Gi``, ``1G``, or a plain byte count."""
    text = str(value)
    try:
        number, suffix = _parse(text)
    except UnitError:
        raise UnitError(f"memory {text!r} is not a Kubernetes quantity; write 512Mi, 4Gi or 1G") from None
    if suffix == "m":
        raise UnitError(f"memory {text!r}: 'm' means milli-bytes; did you mean {number}Mi?")
    factor = _BINARY.get(suffix) or _DECIMAL.get(suffix) or 1
    result = number * factor
    if result <= 0:
        raise UnitError(f"memory {text!r} must be more than zero")
    if result > MAX_QUANTITY:
        raise UnitError(f"memory {text!r} is more than any machine has (Kubernetes quantities end at 2^63 bytes)")
    return int(result.to_integral_value(rounding="ROUND_CEILING"))


#: The longest duration a manifest may give (ten years): beyond it an orchestrator's integer overflows.
MAX_DURATION_SECONDS = 3650 * 86400


@lru_cache(maxsize=1024)
def duration_seconds(value: str | int) -> int:
    """Seconds from ``90s``, ``30m``, ``2h``, ``1h30m``, ``1d`` or a plain integer."""
    if isinstance(value, bool):
        raise UnitError(f"duration {value!r} is not a number of seconds")
    if isinstance(value, int):
        if value <= 0:
            raise UnitError(f"duration {value} must be more than zero seconds")
        if value > MAX_DURATION_SECONDS:
            raise UnitError(f"duration {value} is longer than ten years ({MAX_DURATION_SECONDS} seconds)")
        return value
    text = value.strip()
    if text.isascii() and text.isdigit():
        return duration_seconds(int(text))
    match = _DURATION.fullmatch(text)
    if not text or not match or not any(match.groups()):
        raise UnitError(f"duration {value!r} is not valid; write 90s, 30m, 2h, 1h30m or 1d")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    if total <= 0:
        raise UnitError(f"duration {value!r} must be more than zero")
    if total > MAX_DURATION_SECONDS:
        raise UnitError(f"duration {value!r} is longer than ten years ({MAX_DURATION_SECONDS} seconds)")
    return total
