"""AWS names for what the Step Functions compiler writes, shortened deterministically when too long.

Every name starts from the *base* ``<name_prefix><project>-<branch>`` and is
*logical* (what flowplan means) and *physical* (what AWS stores). They are the
same until a limit bites; then the physical name is the logical one cut short
plus ``-`` and 8 hex digits of its SHA-256, so the same input always gives the
same name, two long names that differ only at the end still differ, and the
logical name is kept in the ``flowplan.dev/logical-name`` tag. Only a collision
*after* shortening is an error (:func:`check_unique`), reported at every party's
location.

==================  ====  =========================================================
kind                max   AWS rule
==================  ====  =========================================================
StateMachine        80    ``CreateStateMachine`` name
Rule                64    ``PutRule`` name; listed with ``NamePrefix``, so the base
                          part is cut on its own (see :func:`rule_name`)
Schedule            64    ``CreateSchedule`` name
ScheduleGroup       64    ``CreateScheduleGroup`` name
JobDefinition       128   ``RegisterJobDefinition`` name (ends in a content hash)
state names         80    Amazon States Language
Batch job names     128   ``SubmitJob`` ``JobName``
==================  ====  =========================================================
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from planner.errors import Location, ManifestError, Problem

__all__ = [
    "HASH_CHARS",
    "LIMITS",
    "RULE_BASE_MAX",
    "Claim",
    "Name",
    "check_unique",
    "cut",
    "fit",
    "job_name",
    "parameter_address_name",
    "parameter_path",
    "parameter_path_of",
    "rule_name",
    "rule_prefix",
]

HASH_CHARS = 8

LIMITS: Mapping[str, int] = {
    "StateMachine": 80,
    "Rule": 64,
    "Schedule": 64,
    "ScheduleGroup": 64,
    "JobDefinition": 128,
    "State": 80,
    "JobName": 128,
}

#: The project-and-branch part of a rule name is at most this long, so ``NamePrefix`` listing
#: always sees it whole and at least 23 characters remain for the flow and the trigger.
RULE_BASE_MAX = 40

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_CHARS]


def cut(text: str, limit: int) -> str:
    """``text`` if it fits, else its head, ``-`` and a hash of all of it: ``limit`` characters at most."""
    if len(text) <= limit:
        return text
    head = text[: limit - HASH_CHARS - 1].rstrip("-_.")
    return f"{head}-{_digest(text)}"


@dataclass(frozen=True)
class Name:
    """A physical name and the logical name it stands for."""

    physical: str
    logical: str

    @property
    def shortened(self) -> bool:
        return self.physical != self.logical


def fit(logical: str, kind: str) -> Name:
    """The physical name of ``logical`` within ``kind``'s limit."""
    return Name(cut(logical, LIMITS[kind]), logical)


def rule_prefix(base: str) -> str:
    """What every rule of a project and branch starts with (``ListRules(NamePrefix=...)``)."""
    return cut(base, RULE_BASE_MAX) + "-"


def rule_name(base: str, rest: str) -> Name:
    """``<base>-<rest>`` within 64 characters, cutting ``rest`` (never the listed prefix)."""
    prefix = rule_prefix(base)
    return Name(prefix + cut(rest, LIMITS["Rule"] - len(prefix)), f"{base}-{rest}")


def job_name(text: str) -> str:
    """A Batch ``JobName``: letters, digits, ``-`` and ``_``, starting with a letter or digit."""
    cleaned = _UNSAFE.sub("-", text).strip("-_") or "step"
    return cut(cleaned, LIMITS["JobName"])


def parameter_path(name_prefix: str, project: str, branch: str, sink: str) -> str:
    """The SSM parameter of a sink: ``/flowplan/<prefix><project>/<branch>/sinks/<sink>``."""
    return f"/flowplan/{name_prefix}{project}/{branch}/sinks/{sink}"


def parameter_address_name(path: str) -> str:
    """An SSM path as an address name: no ``/`` (the files backend makes file names of them).

    Project, branch and sink names never hold ``.`` and name prefixes cannot, so
    ``/flowplan/recsys/prod/sinks/warehouse`` ↔ ``flowplan.recsys.prod.sinks.warehouse``
    is reversible.
    """
    return path.strip("/").replace("/", ".")


def parameter_path_of(address_name: str) -> str:
    """Inverse of :func:`parameter_address_name`."""
    return "/" + address_name.replace(".", "/")


@dataclass(frozen=True)
class Claim:
    """One resource's wish for a name, with who wants it and where that is written."""

    kind: str
    name: Name
    owner: str
    loc: Location
    path: str


def check_unique(claims: Iterable[Claim]) -> None:
    """Raise :class:`ManifestError` when two resources of one kind end up with one physical name.

    Every party gets its own Problem at its own location, so the message points
    at both flows (or steps) and a person can rename either.
    """
    groups: dict[tuple[str, str], list[Claim]] = defaultdict(list)
    for claim in claims:
        groups[(claim.kind, claim.name.physical)].append(claim)
    problems: list[Problem] = []
    for (kind, physical), group in sorted(groups.items()):
        if len(group) < 2:
            continue
        for claim in group:
            others = ", ".join(c.owner for c in group if c is not claim)
            problems.append(
                Problem(
                    claim.loc,
                    claim.path,
                    f"its {kind} name {physical!r} is also the name of {others} "
                    f"(AWS allows {LIMITS.get(kind, 64)} characters; longer names are cut and end in a hash)",
                    "rename one of them, or shorten the project, branch or name_prefix",
                )
            )
    if problems:
        raise ManifestError(problems)
