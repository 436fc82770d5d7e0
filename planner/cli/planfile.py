"""Saved plan files (``flowplan plan --out FILE``, read by ``apply FILE`` and ``show FILE``).

A saved plan is a JSON document ``{kind, format_version, checksum, payload}``.
The checksum covers the whole payload, so any field added later goes inside
``payload`` and is protected the same way. A file whose ``format_version`` is
not :data:`FORMAT_VERSION` is refused with a message saying which flowplan made
it: plans are short-lived, and making a new one is always possible.

It lives with the CLI because it records how the CLI read the manifest
(:class:`~planner.cli.session.ManifestOptions`), so that ``apply FILE`` reads it
the same way.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.building import PlanOptions
from planner.cli.session import ManifestOptions
from planner.errors import FlowplanError, StalePlanError
from planner.plan import Plan, plan_file_checksum

KIND = "flowplan-saved-plan"
#: Version 2: the payload holds the plan, the manifest options and the plan options, all under the checksum.
FORMAT_VERSION = 2
_NEW_PLAN_HINT = "make a new plan with `flowplan plan --out FILE`"


@dataclass(frozen=True)
class SavedPlan:
    plan: Plan
    options: ManifestOptions
    plan_options: PlanOptions


def plan_options_json(options: PlanOptions) -> dict[str, Any]:
    return {
        "targets": list(options.targets),
        "mode": options.mode,
        "allow_destroy": options.allow_destroy,
        "adopt": options.adopt,
        "imports": list(options.imports),
        "import_from": [list(pair) for pair in options.import_from],
    }


def plan_options_from_json(data: dict[str, Any]) -> PlanOptions:
    return PlanOptions(
        targets=tuple(data.get("targets", [])),
        mode=str(data.get("mode", "normal")),
        allow_destroy=bool(data.get("allow_destroy", False)),
        adopt=bool(data.get("adopt", False)),
        imports=tuple(data.get("imports", [])),
        import_from=tuple((str(a), str(b)) for a, b in data.get("import_from", [])),
    )


def save_plan(path: str, plan: Plan, options: ManifestOptions, plan_options: PlanOptions) -> None:
    """Write the plan with full bodies (sensitive values included: the file is created with mode 0600)."""
    payload = {
        "plan": plan.to_json(redact=False, bodies=True),
        "manifest_options": options.to_json(),
        "plan_options": plan_options_json(plan_options),
    }
    document = {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "checksum": plan_file_checksum(payload),
        "payload": payload,
    }
    text = json.dumps(document, indent=1, sort_keys=True) + "\n"
    fd = os.open(Path(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def read_plan_file(path: str) -> SavedPlan:
    """The saved plan at ``path``; refused when it is not one, was edited, or another flowplan version made it."""
    try:
        document = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FlowplanError(f"no plan file at {path}", hint="make one with `flowplan plan --out FILE`") from None
    except (ValueError, UnicodeDecodeError):
        raise StalePlanError(f"{path} is not a flowplan plan file (it does not parse as one)") from None
    if not isinstance(document, dict) or document.get("kind") != KIND:
        raise StalePlanError(f"{path} is not a flowplan plan file")
    _check_version(path, document.get("format_version"))
    payload = document.get("payload")
    if not isinstance(payload, dict) or document.get("checksum") != plan_file_checksum(payload):
        raise StalePlanError(f"{path} was modified after flowplan wrote it; refusing to apply it", hint=_NEW_PLAN_HINT)
    try:
        plan = Plan.from_json(payload["plan"])
        options = ManifestOptions.from_json(payload["manifest_options"])
        plan_options = plan_options_from_json(payload.get("plan_options", {}))
    except (KeyError, ValueError, TypeError) as exc:
        raise StalePlanError(f"{path} cannot be read as a plan ({exc})") from None
    return SavedPlan(plan, options, plan_options)


def _check_version(path: str, version: object) -> None:
    if version == FORMAT_VERSION:
        return
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise StalePlanError(
            f"{path} was made by a newer flowplan (saved plan format {version}; this one reads {FORMAT_VERSION})",
            hint="apply it with the flowplan that made it, or " + _NEW_PLAN_HINT,
        )
    raise StalePlanError(
        f"{path} was made by an older flowplan (saved plan format {version}; this one reads {FORMAT_VERSION}); "
        "make a new plan",
        hint=_NEW_PLAN_HINT,
    )
