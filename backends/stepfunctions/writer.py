"""Writing to AWS: create, update and delete each kind, safely.

The rules (the same as the Argo backend's):

- **Ownership in the create call.** Tags travel in ``CreateStateMachine``,
  ``PutRule``, ``CreateScheduleGroup``, ``RegisterJobDefinition`` and
  ``PutParameter`` themselves: a crash between create and tag can never leave
  an unowned resource. Schedules are owned through their tagged group.
- **Check before changing.** Before an update or delete the resource is read
  again (one describe and, where tags are separate, one tag listing) and its
  content hash compared with the one the plan saw: a difference is a
  :class:`~planner.errors.ConflictError` for that resource (and its dependents
  are skipped), never a blind overwrite. A create first checks the name is
  still free: AWS's "already exists" is not relied on (moto's
  ``CreateStateMachine`` returns an existing machine unchanged).
- **Retries only for idempotent calls** (botocore standard mode, see
  :mod:`backends.stepfunctions.aws`). Non-idempotent creates are sent once;
  after an ambiguous outcome (connection dropped, 5xx) the writer reads back:
  equal to what was sent is success, absent means it never happened (send
  again), anything else is a conflict. ``RegisterJobDefinition`` in
  particular is never repeated while a revision with the same content exists.
- **Full replaces.** ``PutRule`` and ``UpdateSchedule`` are sent with every
  field; tags are diffed with TagResource / UntagResource; a rule's targets
  are removed before the rule.
- **Publish, then move the alias, then confirm.** A state machine change is
  published as a version, the ``live`` alias moved to it, and only then the
  ``flowplan.dev/published`` tag written; a run that dies in between leaves a
  tag the next plan sees as stale (see :mod:`backends.stepfunctions.normalize`).

With ``dry_run`` every check and validation runs (reads only) and nothing is
written.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from backends.stepfunctions.aws import Aws, AwsError, AwsTransientError
from backends.stepfunctions.compile import ALIAS, TAGS_FIELD, machine_arn
from backends.stepfunctions.names import parameter_path_of
from backends.stepfunctions.normalize import (
    PUBLISHED_KEY,
    dumps,
    job_content,
    published_hash,
    tag_dict,
    tag_list,
)
from backends.stepfunctions.reader import Found, StepFunctionsReader, owner_of
from planner.contract import Scope, Writer
from planner.errors import BackendError, ConflictError
from planner.manifest import StepFunctionsSettings
from planner.resources import SPEC_HASH_KEY, LiveResource, Resource, spec_hash

__all__ = ["SEND_ATTEMPTS", "StepFunctionsWriter"]

#: How often a non-idempotent create is sent when read-back proves the earlier attempt never landed.
SEND_ATTEMPTS = 3
_GONE = frozenset({"ResourceNotFoundException", "ResourceNotFound", "StateMachineDoesNotExist", "ParameterNotFound"})
_VALIDATION_UNAVAILABLE = frozenset({"UnknownOperationException", "NotImplemented", "InvalidAction"})
MAX_DEFINITION_BYTES = 1024 * 1024
MAX_TAGS = 50


class StepFunctionsWriter(Writer):
    """The :class:`~planner.contract.Writer` of a Step Functions backend; safe to call from several threads."""

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
        # kind → (create, update, delete): every kind this writer knows, spelled out
        self._ops: dict[
            str,
            tuple[
                Callable[[Resource], None],
                Callable[[Resource, Found], None],
                Callable[[Found], None],
            ],
        ] = {
            "StateMachine": (self._create_statemachine, self._update_statemachine, self._delete_statemachine),
            "Rule": (self._create_rule, self._update_rule, self._delete_rule),
            "ScheduleGroup": (self._create_schedulegroup, self._update_schedulegroup, self._delete_schedulegroup),
            "Schedule": (self._create_schedule, self._update_schedule, self._delete_schedule),
            "JobDefinition": (self._create_jobdefinition, self._update_jobdefinition, self._delete_jobdefinition),
            "Parameter": (self._create_parameter, self._update_parameter, self._delete_parameter),
        }

    def _kind_ops(
        self, kind: str
    ) -> tuple[Callable[[Resource], None], Callable[[Resource, Found], None], Callable[[Found], None]]:
        try:
            return self._ops[kind]
        except KeyError:
            raise BackendError(f"the Step Functions backend cannot write objects of kind {kind!r}") from None

    # -- the Writer protocol -----------------------------------------------------------

    def create(self, resource: Resource) -> LiveResource | None:
        self._validate(resource)
        self._kind_ops(resource.address.kind)[0](resource)
        return None

    def update(self, resource: Resource, live: LiveResource) -> LiveResource | None:
        self._validate(resource)
        current = self._check(live)
        assert current is not None  # _check raises when the object is gone
        self._kind_ops(resource.address.kind)[1](resource, current)
        return None

    def delete(self, live: LiveResource) -> None:
        current = self._check(live, gone_ok=True)
        if current is None or self.dry_run:
            return
        self._kind_ops(live.address.kind)[2](current)

    def replace(self, resource: Resource, live: LiveResource) -> LiveResource | None:
        """What cannot change in place (a machine's type, a rule's bus): delete, then create."""
        self.delete(live)
        return self.create(resource)

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

    # -- state machines ----------------------------------------------------------------

    def _machine_matches(self, found: Found | None, resource: Resource) -> bool | None:
        if found is None:
            return None
        body = resource.body
        same = all(found.body.get(k) == body.get(k) for k in ("definition", "roleArn", "type"))
        owner = owner_of(found.tags)
        return same and owner is not None and (owner.project, owner.branch) == (self.scope.project, self.scope.branch)

    def _machine_settings(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Logging, tracing and encryption written out in full (AWS keeps what an update omits)."""
        return {
            "loggingConfiguration": body.get("loggingConfiguration", {"level": "OFF"}),
            "tracingConfiguration": body.get("tracingConfiguration", {"enabled": False}),
            "encryptionConfiguration": body.get("encryptionConfiguration", {"type": "AWS_OWNED_KEY"}),
        }

    def _create_statemachine(self, resource: Resource) -> None:
        body = resource.body
        name = str(body["name"])
        arn = machine_arn(self.settings, name)
        existing = self.reader.state_machine(arn)
        if existing is not None:
            self._taken(resource, existing, bool(self._machine_matches(existing, resource)))
        if self.dry_run:
            return
        version_arn: str | None = None
        if existing is None:
            tags = self._tags(resource)
            answer = self._send_once(
                str(resource.address),
                lambda: self.aws.call(
                    "stepfunctions",
                    "CreateStateMachine",
                    once=True,
                    resource=arn,
                    name=name,
                    definition=dumps(body["definition"]),
                    roleArn=body["roleArn"],
                    type=body.get("type", "STANDARD"),
                    tags=tag_list(tags, "key", "value"),
                    publish=True,
                    **self._machine_settings(body),
                ),
                lambda: self._machine_matches(self.reader.state_machine(arn), resource),
                exists=frozenset({"StateMachineAlreadyExists"}),
            )
            version_arn = answer.get("stateMachineVersionArn") if answer else None
        self._publish(resource, arn, version_arn, alias_exists=existing is not None)

    def _update_statemachine(self, resource: Resource, current: Found) -> None:
        if self.dry_run:
            return
        self._publish(resource, str(current.meta["arn"]), None, alias_exists=True, tags=current.tags)

    def _publish(
        self,
        resource: Resource,
        arn: str,
        version_arn: str | None,
        *,
        alias_exists: bool,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Publish (if not yet), move ``live`` to the version, then tags with the published mark last."""
        body = resource.body
        if version_arn is None:
            answer = self.aws.call(
                "stepfunctions",
                "UpdateStateMachine",
                resource=arn,
                stateMachineArn=arn,
                definition=dumps(body["definition"]),
                roleArn=body["roleArn"],
                publish=True,
                **self._machine_settings(body),
            )
            version_arn = str(answer["stateMachineVersionArn"])
        self._move_alias(arn, version_arn, alias_exists)
        if tags is None:
            listed = self.aws.call("stepfunctions", "ListTagsForResource", resourceArn=arn, resource=arn)
            tags = tag_dict(listed.get("tags", []), "key", "value")
        desired = dict(self._tags(resource))
        desired[PUBLISHED_KEY] = published_hash(body)
        self._sync_tags(
            tags,
            desired,
            lambda keys: self.aws.call("stepfunctions", "UntagResource", resourceArn=arn, tagKeys=keys, resource=arn),
            lambda changed: self.aws.call(
                "stepfunctions", "TagResource", resourceArn=arn, tags=tag_list(changed, "key", "value"), resource=arn
            ),
        )

    def _move_alias(self, arn: str, version_arn: str, exists: bool) -> None:
        routing = [{"stateMachineVersionArn": version_arn, "weight": 100}]
        alias = f"{arn}:{ALIAS}"
        if exists:
            try:
                self.aws.call(
                    "stepfunctions",
                    "UpdateStateMachineAlias",
                    resource=alias,
                    stateMachineAliasArn=alias,
                    routingConfiguration=routing,
                )
                return
            except AwsError as exc:
                if exc.code not in _GONE:
                    raise

        def create() -> Any:
            return self.aws.call(
                "stepfunctions",
                "CreateStateMachineAlias",
                once=True,
                resource=alias,
                name=ALIAS,
                routingConfiguration=routing,
                description="flowplan: the version schedules and triggers start",
            )

        def read_back() -> bool | None:
            try:
                found = self.aws.call("stepfunctions", "DescribeStateMachineAlias", stateMachineAliasArn=alias)
            except AwsError as exc:
                if exc.code in _GONE:
                    return None
                raise
            return [r.get("stateMachineVersionArn") for r in found.get("routingConfiguration", [])] == [version_arn]

        try:
            self._send_once(alias, create, read_back)
        except AwsError as exc:
            if exc.code != "ConflictException":
                raise
            self.aws.call(
                "stepfunctions",
                "UpdateStateMachineAlias",
                resource=alias,
                stateMachineAliasArn=alias,
                routingConfiguration=routing,
            )

    def _delete_statemachine(self, current: Found) -> None:
        arn = str(current.meta["arn"])
        # Deleting a machine deletes its versions and aliases. Its tags go *after* it: untagged first, a run
        # killed in between left an unowned machine that no later run would ever delete. (An emulator, moto,
        # keeps a deleted machine's tags and hands them to the next machine of that name; AWS answers
        # "not found", which is fine.)
        self._gone_ok(lambda: self.aws.call("stepfunctions", "DeleteStateMachine", stateMachineArn=arn, resource=arn))
        if current.tags:
            self._gone_ok(
                lambda: self.aws.call(
                    "stepfunctions", "UntagResource", resourceArn=arn, tagKeys=sorted(current.tags), resource=arn
                )
            )

    def _gone_ok(self, call: Callable[[], Any]) -> None:
        """A delete retried after it landed finds nothing: that is success."""
        try:
            call()
        except AwsError as exc:
            if exc.code not in _GONE:
                raise

    # -- rules -------------------------------------------------------------------------

    def _put_rule(self, body: Mapping[str, Any], tags: Mapping[str, str] | None) -> None:
        """``PutRule`` is a full replace: every field, every time (tags only when creating)."""
        params: dict[str, Any] = {
            "Name": body["Name"],
            "EventBusName": body.get("EventBusName", "default"),
            "State": body.get("State", "ENABLED"),
            "Description": body.get("Description", ""),
        }
        if "EventPattern" in body:
            params["EventPattern"] = dumps(body["EventPattern"])
        if "ScheduleExpression" in body:
            params["ScheduleExpression"] = body["ScheduleExpression"]
        if "RoleArn" in body:
            params["RoleArn"] = body["RoleArn"]
        if tags is not None:
            params["Tags"] = tag_list(tags)
        self.aws.call("events", "PutRule", resource=str(body["Name"]), **params)

    def _put_targets(self, body: Mapping[str, Any], current: list[str]) -> None:
        name, bus = str(body["Name"]), str(body.get("EventBusName", "default"))
        wanted = [dict(t) for t in body.get("Targets", [])]
        stale = sorted(set(current) - {str(t["Id"]) for t in wanted})
        if stale:
            self._remove_targets(name, bus, stale)
        for target in wanted:
            if "Input" in target:
                target["Input"] = dumps(target["Input"])
        if wanted:
            answer = self.aws.call("events", "PutTargets", resource=name, Rule=name, EventBusName=bus, Targets=wanted)
            if answer.get("FailedEntryCount"):
                failed = answer.get("FailedEntries", [])
                raise BackendError(f"rule {name}: EventBridge refused targets: {failed}")

    def _remove_targets(self, name: str, bus: str, ids: list[str]) -> None:
        answer = self.aws.call("events", "RemoveTargets", resource=name, Rule=name, EventBusName=bus, Ids=ids)
        if answer.get("FailedEntryCount"):
            raise BackendError(f"rule {name}: EventBridge did not remove targets: {answer.get('FailedEntries')}")

    def _create_rule(self, resource: Resource) -> None:
        body = resource.body
        existing = self._current("Rule", str(body["Name"]), {"bus": body.get("EventBusName")})
        if existing is not None:
            self._taken(resource, existing, bool(self._same(existing, resource)))
            return
        if self.dry_run:
            return
        self._put_rule(body, self._tags(resource))
        self._put_targets(body, [])

    def _update_rule(self, resource: Resource, current: Found) -> None:
        if self.dry_run:
            return
        self._put_rule(resource.body, None)
        self._put_targets(resource.body, list(current.meta.get("targets", [])))
        arn = str(current.meta["arn"])
        self._sync_tags(
            current.tags,
            self._tags(resource),
            lambda keys: self.aws.call("events", "UntagResource", ResourceARN=arn, TagKeys=keys, resource=arn),
            lambda changed: self.aws.call(
                "events", "TagResource", ResourceARN=arn, Tags=tag_list(changed), resource=arn
            ),
        )

    def _delete_rule(self, current: Found) -> None:
        name, bus = current.address.name, str(current.meta.get("bus", "default"))
        targets = list(current.meta.get("targets", []))
        if targets:
            self._remove_targets(name, bus, targets)
        self._gone_ok(lambda: self.aws.call("events", "DeleteRule", resource=name, Name=name, EventBusName=bus))

    @staticmethod
    def _same(found: Found | None, resource: Resource) -> bool | None:
        """Is what was found what ``resource`` describes (volatile tags aside)? None when nothing was found."""
        if found is None:
            return None
        return spec_hash(found.body, resource.volatile_paths) == resource.spec_hash

    # -- schedule groups and schedules -------------------------------------------------

    def _create_schedulegroup(self, resource: Resource) -> None:
        name = str(resource.body["Name"])
        existing = self.reader.group(name)
        if existing is not None:
            self._taken(resource, existing, bool(self._same(existing, resource)))
            return
        if self.dry_run:
            return

        def read_back() -> bool | None:
            return self._same(self.reader.group(name), resource)

        self._send_once(
            str(resource.address),
            lambda: self.aws.call(
                "scheduler",
                "CreateScheduleGroup",
                once=True,
                resource=name,
                Name=name,
                Tags=tag_list(self._tags(resource)),
            ),
            read_back,
            exists=frozenset({"ConflictException"}),
        )

    def _update_schedulegroup(self, resource: Resource, current: Found) -> None:
        arn = str(current.meta["arn"])
        self._sync_tags(
            current.tags,
            self._tags(resource),
            lambda keys: self.aws.call("scheduler", "UntagResource", ResourceArn=arn, TagKeys=keys, resource=arn),
            lambda changed: self.aws.call(
                "scheduler", "TagResource", ResourceArn=arn, Tags=tag_list(changed), resource=arn
            ),
        )

    def _delete_schedulegroup(self, current: Found) -> None:
        name = current.address.name
        self._gone_ok(lambda: self.aws.call("scheduler", "DeleteScheduleGroup", Name=name, resource=name))

    def _schedule_params(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Every field of the schedule: ``UpdateSchedule`` is a full replace (an omitted time zone becomes UTC)."""
        params = {k: v for k, v in body.items() if k != "Target"}
        target = dict(body["Target"])
        if "Input" in target:
            target["Input"] = dumps(target["Input"])
        params["Target"] = target
        return params

    def _create_schedule(self, resource: Resource) -> None:
        body = resource.body
        group, name = str(body["GroupName"]), str(body["Name"])
        existing = self.reader.schedule(group, name, None)
        if existing is not None:
            self._taken(resource, existing, bool(self._same(existing, resource)))
            return
        if self.dry_run:
            return

        def read_back() -> bool | None:
            return self._same(self.reader.schedule(group, name, None), resource)

        self._send_once(
            str(resource.address),
            lambda: self.aws.call(
                "scheduler", "CreateSchedule", once=True, resource=f"{group}/{name}", **self._schedule_params(body)
            ),
            read_back,
            exists=frozenset({"ConflictException"}),
        )

    def _update_schedule(self, resource: Resource, current: Found) -> None:
        if self.dry_run:
            return
        body = resource.body
        self.aws.call(
            "scheduler", "UpdateSchedule", resource=f"{body['GroupName']}/{body['Name']}", **self._schedule_params(body)
        )

    def _delete_schedule(self, current: Found) -> None:
        group, name = str(current.meta.get("group")), current.address.name
        self._gone_ok(
            lambda: self.aws.call("scheduler", "DeleteSchedule", GroupName=group, Name=name, resource=f"{group}/{name}")
        )

    # -- Batch job definitions ---------------------------------------------------------

    def _revisions(self, name: str) -> list[Mapping[str, Any]]:
        revisions: list[Mapping[str, Any]] = []
        for page in self.aws.pages("batch", "DescribeJobDefinitions", jobDefinitionName=name, status="ACTIVE"):
            revisions += page.get("jobDefinitions", [])
        return revisions

    def _job_content(self, resource: Resource) -> dict[str, Any]:
        return job_content({k: v for k, v in resource.body.items() if k != "tags"})

    def _register(self, resource: Resource) -> str:
        """Register the desired content once; after an ambiguous outcome find it instead of registering again."""
        body = resource.body
        name = str(body["jobDefinitionName"])
        wanted = self._job_content(resource)

        def matching() -> list[Mapping[str, Any]]:
            return [r for r in self._revisions(name) if job_content(r) == wanted]

        def read_back() -> bool | None:
            return True if matching() else None

        # Every field of the content goes out (propagateTags, nodeProperties, retryStrategy, timeout, ...):
        # what is not sent is not registered, and would show as drift on every plan after.
        request = {**job_content(body), "jobDefinitionName": name, "tags": self._tags(resource)}
        request.setdefault("platformCapabilities", ["EC2"])
        answer = self._send_once(
            str(resource.address),
            lambda: self.aws.call("batch", "RegisterJobDefinition", once=True, resource=name, **request),
            read_back,
        )
        if answer:
            return str(answer["jobDefinitionArn"])
        return str(max(matching(), key=lambda r: int(r.get("revision", 0)))["jobDefinitionArn"])

    def _create_jobdefinition(self, resource: Resource) -> None:
        name = str(resource.body["jobDefinitionName"])
        revisions = self._revisions(name)
        if revisions:
            existing = self.reader.job_definition(name, revisions)
            same = any(job_content(r) == self._job_content(resource) for r in revisions)
            self._taken(resource, existing, same)
            if not self.dry_run:
                self._tag_revisions(resource, self._one_revision(revisions, self._job_content(resource)))
            return
        if self.dry_run:
            return
        self._register(resource)

    def _update_jobdefinition(self, resource: Resource, current: Found) -> None:
        if self.dry_run:
            return
        name = str(resource.body["jobDefinitionName"])
        revisions = self._revisions(name)
        wanted = self._job_content(resource)
        if not any(job_content(r) == wanted for r in revisions):
            self._register(resource)
            revisions = self._revisions(name)
        kept = self._one_revision(revisions, wanted)
        self._tag_revisions(resource, kept)

    def _one_revision(self, revisions: list[Mapping[str, Any]], wanted: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """Deregister every revision but the oldest with the wanted content (other contents, and duplicates)."""
        matching = sorted((r for r in revisions if job_content(r) == wanted), key=lambda r: int(r.get("revision", 0)))
        kept = matching[:1]
        for revision in revisions:
            if not any(revision is k for k in kept):
                self._deregister(str(revision["jobDefinitionArn"]))
        return kept

    def _tag_revisions(self, resource: Resource, revisions: list[Mapping[str, Any]]) -> None:
        desired = self._tags(resource)
        for revision in revisions:
            self._sync_job_tags(str(revision["jobDefinitionArn"]), tag_dict(revision.get("tags")), desired)

    def _sync_job_tags(self, arn: str, current: Mapping[str, str], desired: Mapping[str, str]) -> None:
        self._sync_tags(
            current,
            desired,
            lambda keys: self.aws.call("batch", "UntagResource", resourceArn=arn, tagKeys=keys, resource=arn),
            lambda changed: self.aws.call("batch", "TagResource", resourceArn=arn, tags=changed, resource=arn),
        )

    def _deregister(self, arn: str) -> None:
        try:
            self.aws.call("batch", "DeregisterJobDefinition", jobDefinition=arn, resource=arn)
        except AwsError as exc:
            if "inactive" not in str(exc).lower() and exc.code not in _GONE:
                raise

    def _delete_jobdefinition(self, current: Found) -> None:
        for arn in current.meta.get("arns", []):
            self._deregister(str(arn))

    # -- SSM parameters ----------------------------------------------------------------

    def _create_parameter(self, resource: Resource) -> None:
        body = resource.body
        path = str(body["Name"])
        existing = self._current("Parameter", resource.address.name, {})
        if existing is not None:
            self._taken(resource, existing, bool(self._same(existing, resource)))
            return
        if self.dry_run:
            return

        def read_back() -> bool | None:
            return self._same(self._current("Parameter", resource.address.name, {}), resource)

        self._send_once(
            str(resource.address),
            lambda: self.aws.call(
                "ssm",
                "PutParameter",
                once=True,
                resource=path,
                Name=path,
                Value=dumps(body["Value"]),
                Type=body.get("Type", "String"),
                Tier="Standard",
                Tags=tag_list(self._tags(resource)),
            ),
            read_back,
            exists=frozenset({"ParameterAlreadyExists"}),
        )

    def _update_parameter(self, resource: Resource, current: Found) -> None:
        if self.dry_run:
            return
        body = resource.body
        path = str(body["Name"])
        if {k: current.body.get(k) for k in ("Type", "Value")} != {k: body.get(k) for k in ("Type", "Value")}:
            self.aws.call(
                "ssm",
                "PutParameter",
                resource=path,
                Name=path,
                Value=dumps(body["Value"]),
                Type=body.get("Type", "String"),
                Overwrite=True,
            )
        self._sync_tags(
            current.tags,
            self._tags(resource),
            lambda keys: self.aws.call(
                "ssm", "RemoveTagsFromResource", ResourceType="Parameter", ResourceId=path, TagKeys=keys
            ),
            lambda changed: self.aws.call(
                "ssm", "AddTagsToResource", ResourceType="Parameter", ResourceId=path, Tags=tag_list(changed)
            ),
        )

    def _delete_parameter(self, current: Found) -> None:
        path = str(current.body["Name"])
        self._gone_ok(lambda: self.aws.call("ssm", "DeleteParameter", Name=path, resource=path))
