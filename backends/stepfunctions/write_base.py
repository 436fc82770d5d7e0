"""What every Step Functions write needs: reading an object again, checking the plan's version,
sending a non-idempotent create once and reading back after an ambiguous outcome, tags, validation.

The writes of each kind live in their own module (``write_machines``, ``write_events``,
``write_batch``, ``write_parameters``) as classes over this base; :mod:`backends.stepfunctions.writer`
composes them into the backend's :class:`~planner.contract.Writer` (the rules every write keeps are
in its docstring).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from backends.stepfunctions.aws import Aws, AwsError, AwsTransientError
from backends.stepfunctions.compile import TAGS_FIELD, machine_arn
from backends.stepfunctions.names import parameter_path_of
from backends.stepfunctions.normalize import (
    dumps,
    tag_dict,
)
from backends.stepfunctions.reader import Found, StepFunctionsReader, owner_of
from planner.contract import Scope
from planner.errors import BackendError, ConflictError
from planner.manifest import StepFunctionsSettings
from planner.resources import SPEC_HASH_KEY, LiveResource, Resource, spec_hash

__all__ = ["SEND_ATTEMPTS", "WriterBase"]


#: How often a non-idempotent create is sent when read-back proves the earlier attempt never landed.
SEND_ATTEMPTS = 3
_GONE = frozenset({"ResourceNotFoundException", "ResourceNotFound", "StateMachineDoesNotExist", "ParameterNotFound"})
_VALIDATION_UNAVAILABLE = frozenset({"UnknownOperationException", "NotImplemented", "InvalidAction"})
MAX_DEFINITION_BYTES = 1024 * 1024
MAX_TAGS = 50


class WriterBase:
    """The shared machinery of the Step Functions writer (see the module docstring)."""

    def __init__(
        self,
        aws: Aws,
        settings: StepFunctionsSettings,
        scope: Scope,
        reader: StepFunctionsReader,
        *,
        dry_run: bool = False,
        readback_delay: float = 0.5,
    ) -> None:
        self.aws = aws
        self.settings = settings
        self.scope = scope
        self.reader = reader
        self.dry_run = dry_run
        self.readback_delay = readback_delay

    # -- shared machinery --------------------------------------------------------------

    def _current(self, kind: str, name: str, meta: Mapping[str, Any]) -> Found | None:
        """The resource as it is now, read the way the reader reads it (so versions compare)."""
        if kind == "StateMachine":
            return self.reader.state_machine(str(meta.get("arn") or machine_arn(self.settings, name)))
        if kind == "Rule":
            bus = str(meta.get("bus") or "default")
            try:
                rule = self.aws.call("events", "DescribeRule", Name=name, EventBusName=bus, resource=name)
            except AwsError as exc:
                if exc.code in _GONE:
                    return None
                raise
            arn = str(rule["Arn"])
            tags = tag_dict(self.aws.call("events", "ListTagsForResource", ResourceARN=arn, resource=arn)["Tags"])
            return self.reader.rule(rule, tags)
        if kind == "ScheduleGroup":
            return self.reader.group(name)
        if kind == "Schedule":
            return self.reader.schedule(str(meta.get("group") or self.reader.group_name(self.scope)), name, None)
        if kind == "JobDefinition":
            revisions = self._revisions(name)
            return self.reader.job_definition(name, revisions) if revisions else None
        if kind == "Parameter":
            path = parameter_path_of(name)
            try:
                item = self.aws.call("ssm", "GetParameter", Name=path, resource=path)["Parameter"]
            except AwsError as exc:
                if exc.code in _GONE:
                    return None
                raise
            return self.reader.parameter(item)
        raise BackendError(f"flowplan cannot write {kind} resources to Step Functions backends")

    def _revisions(self, name: str) -> list[Mapping[str, Any]]:
        """The ACTIVE revisions of a job definition."""
        revisions: list[Mapping[str, Any]] = []
        for page in self.aws.pages("batch", "DescribeJobDefinitions", jobDefinitionName=name, status="ACTIVE"):
            revisions += page.get("jobDefinitions", [])
        return revisions

    def _check(self, live: LiveResource, *, gone_ok: bool = False) -> Found | None:
        """Read again; the same content hash as planned — or a ConflictError."""
        address = live.address
        current = self._current(address.kind, address.name, live.meta)
        if current is None:
            if gone_ok:
                return None
            raise ConflictError(f"{address} was deleted since the plan", hint="run flowplan plan again, then apply")
        # The version hashes the whole normalized body, tags included: it also proves the markers are as
        # planned (ours for an update or delete, absent for an adoption the plan showed).
        if current.version != live.version:
            raise ConflictError(
                f"{address} changed since the plan was made",
                hint="run flowplan plan to see the current state, then apply",
            )
        return current

    def _taken(self, resource: Resource, current: Found, same: bool) -> bool:
        """A create found something at the name: fine if it is ours and what we want, else a conflict."""
        owner = owner_of(current.tags)
        ours = resource.address.kind == "Schedule" or (
            owner is not None and (owner.project, owner.branch) == (self.scope.project, self.scope.branch)
        )
        if ours and same:
            return True
        who = "someone else" if not ours else "a different version of it"
        raise ConflictError(
            f"{resource.address} appeared since the plan ({who} created it); flowplan leaves it alone",
            hint="run flowplan plan to see it; adopt it with `flowplan import`, or rename the flow",
        )

    def _send_once(
        self,
        what: str,
        send: Callable[[], Any],
        read_back: Callable[[], bool | None],
        exists: frozenset[str] = frozenset(),
    ) -> Any:
        """Send a non-idempotent write once; after an ambiguous outcome read back instead of repeating.

        ``read_back`` answers True (there, as sent), False (there, different) or
        None (absent: the write never landed, so sending again is safe).
        """
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                return send()
            except AwsError as exc:
                if exc.code in exists:
                    if read_back():
                        return None
                    raise ConflictError(
                        f"{what}: the name is taken by something else ({exc.code})",
                        hint="run flowplan plan to see it",
                    ) from None
                # Throttled: refused before it was processed, so it is safe to send again (after a backoff).
                throttled = isinstance(exc, AwsTransientError) and exc.sent and not exc.ambiguous
                if exc.sent and not exc.ambiguous and not throttled:
                    raise
                if exc.sent and exc.ambiguous:
                    time.sleep(self.readback_delay)
                    seen = read_back()
                    if seen is True:
                        return None
                    if seen is False:
                        raise ConflictError(
                            f"{what}: the answer was lost and what is there now differs from what was sent",
                            hint="run flowplan plan to see it",
                        ) from None
                if attempt == SEND_ATTEMPTS:
                    raise
                time.sleep(min(5.0, self.readback_delay * 2**attempt) * random.uniform(0.5, 1.0))
        raise AssertionError("unreachable")  # pragma: no cover

    def _tags(self, resource: Resource) -> dict[str, str]:
        """The tags to write: the body's, with the spec hash of exactly this body."""
        tags = dict(resource.body.get(TAGS_FIELD[resource.address.kind], {}))
        tags[SPEC_HASH_KEY] = resource.spec_hash
        return dict(sorted(tags.items()))

    def _sync_tags(
        self,
        current: Mapping[str, str],
        desired: Mapping[str, str],
        untag: Callable[[list[str]], Any],
        tag: Callable[[dict[str, str]], Any],
    ) -> None:
        """Remove what is no longer wanted, then set what changed (the last call carries the spec hash)."""
        if self.dry_run:
            return
        stale = sorted(set(current) - set(desired))
        if stale:
            untag(stale)
        changed = {k: v for k, v in desired.items() if current.get(k) != v}
        if changed:
            tag(changed)

    def _validate(self, resource: Resource) -> None:
        """What AWS would reject, caught before any call (dry runs stop here for most kinds)."""
        field = TAGS_FIELD.get(resource.address.kind)
        if field is not None and len(resource.body.get(field, {})) + 1 > MAX_TAGS:
            raise BackendError(f"{resource.address}: more than {MAX_TAGS} tags", hint="use fewer tags on the flow")
        if resource.address.kind == "StateMachine":
            text = dumps(resource.body["definition"])
            if len(text.encode()) > MAX_DEFINITION_BYTES:
                raise BackendError(f"{resource.address}: the definition is over 1 MiB", hint="split the flow")
            if self.dry_run:
                self._validate_remotely(resource, text)

    def _validate_remotely(self, resource: Resource, text: str) -> None:
        """``ValidateStateMachineDefinition`` where the endpoint has it (AWS does; moto answers 500)."""
        try:
            answer = self.aws.call(
                "stepfunctions", "ValidateStateMachineDefinition", once=True, definition=text, type="STANDARD"
            )
        except AwsError as exc:
            if exc.code in _VALIDATION_UNAVAILABLE or (exc.status or 0) >= 500:
                return
            raise
        if answer.get("result") == "FAIL":
            found = "; ".join(
                str(d.get("message")) for d in answer.get("diagnostics", []) if d.get("severity") == "ERROR"
            )
            raise BackendError(f"{resource.address}: AWS rejects the definition: {found}")

    def _gone_ok(self, call: Callable[[], Any]) -> None:
        """A delete retried after it landed finds nothing: that is success."""
        try:
            call()
        except AwsError as exc:
            if exc.code not in _GONE:
                raise

    @staticmethod
    def _same(found: Found | None, resource: Resource) -> bool | None:
        """Is what was found what ``resource`` describes (volatile tags aside)? None when nothing was found."""
        if found is None:
            return None
        return spec_hash(found.body, resource.volatile_paths) == resource.spec_hash
