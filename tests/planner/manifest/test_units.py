"""CPU, memory and duration values."""

from __future__ import annotations

import pytest

from planner.manifest.units import UnitError, cpu_millis, duration_seconds, memory_bytes


@pytest.mark.parametrize(
    ("value", "millis"), [("500m", 500), ("2", 2000), (2, 2000), (0.5, 500), ("1.5", 1500), ("1m", 1)]
)
def test_cpu(value: str | int | float, millis: int) -> None:
    assert cpu_millis(value) == millis


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2 cores", "not a Kubernetes quantity"),
        ("0.0001", "finer than a millicore"),
        ("0", "more than zero"),
        ("1Gi", "use millicores"),
        ("-1", "not a Kubernetes quantity"),
    ],
)
def test_bad_cpu(value: str, message: str) -> None:
    with pytest.raises(UnitError, match=message):
        cpu_millis(value)


@pytest.mark.parametrize(
    ("value", "size"),
    [("512Mi", 512 * 2**20), ("4Gi", 4 * 2**30), ("1G", 10**9), ("1000", 1000), ("1.5Ki", 1536), ("100k", 100_000)],
)
def test_memory(value: str, size: int) -> None:
    assert memory_bytes(value) == size


@pytest.mark.parametrize(
    ("value", "message"),
    [("4GB", "not a Kubernetes quantity"), ("512m", "did you mean 512Mi"), ("0Gi", "more than zero"), ("", "quantity")],
)
def test_bad_memory(value: str, message: str) -> None:
    with pytest.raises(UnitError, match=message):
        memory_bytes(value)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("90s", 90),
        ("30m", 1800),
        ("2h", 7200),
        ("1h30m", 5400),
        ("1d", 86400),
        (45, 45),
        ("120", 120),
        ("1d2h3m4s", 93784),
    ],
)
def test_duration(value: str | int, seconds: int) -> None:
    assert duration_seconds(value) == seconds


@pytest.mark.parametrize("value", ["1h30", "5 minutes", "forever", "", "0s", 0, -5, "30m1h", True])
def test_bad_duration(value: str | int) -> None:
    with pytest.raises(UnitError):
        duration_seconds(value)
