"""Saved plan files (``flowplan plan --out FILE``, read by ``apply FILE`` and ``show FILE``).

A saved plan is a JSON document ``{kind, format_version, checksum, payload}``.
The checksum covers the whole payload, so any field added later goes inside
``payload`` and is protected the same way. A file whose ``format_version`` is
not :data:`FORMAT_VERSION` is refused with a message saying which flowplan made
it: plans are short-lived, and making a new one is always possible.

The checksum catches an accident, not an attacker (anyone can recompute it), so nothing a reader
shows may differ from what ``apply FILE`` acts on: the field diffs stored with each change are
for other readers of the JSON and are ignored when the file is read; they are derived again from
the stored before/after bodies, the ones ``apply`` compares (:func:`derived_field_diffs`).

The file is written as a new file with mode 0600 (it holds sensitive values) and renamed over
``FILE``: a symlink planted at ``FILE`` is replaced, never written through, and an existing file's
mode is never loosened.

It lives with the CLI because it records how the CLI read the manifest
(:class:`~planner.cli.session.ManifestOptions`), so that ``apply FILE`` reads it
the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from planner.building import PlanOptions
from planner.cli.session import ManifestOptions
from planner.diff import comparison_form, field_diffs
from planner.errors import FlowplanError, StalePlanError
from planner.plan import FieldDiff, Plan, ResourceChange, plan_file_checksum
from planner.safe_files import UnsafeFile, read_regular

KIND = "flowplan-saved-plan"
#: Version 2: the payload holds the plan, the manifest options and the plan options, all under the checksum.
FORMAT_VERSION = 2
_NEW_PLAN_HINT = "make a new plan with `flowplan plan --out FILE`"
#: The largest saved plan read (bodies of every changed resource: about 40 MiB at 10,000 changed flows).
MAX_PLAN_BYTES = 1024 * 1024 * 1024


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
    try:
        _write_private(Path(path), text.encode())
    except OSError as exc:
        raise FlowplanError(
            f"cannot save the plan to {path}: {exc.strerror or exc}", hint="choose another --out FILE"
        ) from None


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a new 0600 file beside ``path`` and rename it over ``path``.

    A symlink at ``path`` is replaced (rename never follows it); an existing regular file keeps
    no more permission than it had (its mode, at most 0600); a directory there is an error.
    """
    mode = 0o600
    with contextlib.suppress(FileNotFoundError):
        existing = os.lstat(path)
        if stat.S_ISDIR(existing.st_mode):
            raise IsADirectoryError(21, "it is a directory", str(path))
        if stat.S_ISREG(existing.st_mode):
            mode &= stat.S_IMODE(existing.st_mode)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            os.fchmod(handle.fileno(), mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_plan_file(path: str) -> SavedPlan:
    """The saved plan at ``path``; refused when it is not one, was edited, or another flowplan version made it."""
    try:
        raw = read_regular(path, limit=MAX_PLAN_BYTES)
        if len(raw) > MAX_PLAN_BYTES:
            raise StalePlanError(f"{path} is not a flowplan plan file (it is larger than any plan)")
        document = json.loads(raw)
    except FileNotFoundError:
        raise FlowplanError(f"no plan file at {path}", hint="make one with `flowplan plan --out FILE`") from None
    except UnsafeFile as exc:
        raise FlowplanError(f"cannot read the plan: {exc}", hint=_NEW_PLAN_HINT) from None
    except OSError as exc:
        raise FlowplanError(f"cannot read the plan {path}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError):
        raise StalePlanError(f"{path} is not a flowplan plan file (it does not parse as one)") from None
    if not isinstance(document, dict) or document.get("kind") != KIND:
        raise StalePlanError(f"{path} is not a flowplan plan file")
    _check_version(path, document.get("format_version"))
    payload = document.get("payload")
    if not isinstance(payload, dict) or document.get("checksum") != plan_file_checksum(payload):
        raise StalePlanError(f"{path} was modified after flowplan wrote it; refusing to apply it", hint=_NEW_PLAN_HINT)
    try:
        plan = _with_derived_diffs(Plan.from_json(payload["plan"]))
        options = ManifestOptions.from_json(payload["manifest_options"])
        plan_options = plan_options_from_json(payload.get("plan_options", {}))
    except (KeyError, ValueError, TypeError) as exc:
        raise StalePlanError(f"{path} cannot be read as a plan ({exc})") from None
    return SavedPlan(plan, options, plan_options)


def derived_field_diffs(change: ResourceChange) -> tuple[FieldDiff, ...]:
    """A change's field diffs, from its before/after bodies, compared as the builder compared them.

    Volatile and ignored pointers are left out of both sides; a create or a delete has no field
    diffs (one side is missing).
    """
    if change.before is None or change.after is None:
        return ()
    excluded = (*change.volatile_paths, *change.ignored_paths)
    return field_diffs(
        comparison_form(change.before, excluded), comparison_form(change.after, excluded), change.sensitive_paths
    )


def _with_derived_diffs(plan: Plan) -> Plan:
    """``plan`` with every change's stored field diffs replaced by the ones its bodies give."""
    changes = tuple(replace(c, field_diffs=derived_field_diffs(c)) for c in plan.changes)
    return replace(plan, changes=changes)


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
