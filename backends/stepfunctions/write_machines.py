"""State machines: publish a version, move the ``live`` alias, then confirm with a tag."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backends.stepfunctions.aws import AwsError
from backends.stepfunctions.compile import ALIAS, machine_arn
from backends.stepfunctions.normalize import (
    PUBLISHED_KEY,
    dumps,
    published_hash,
    tag_dict,
    tag_list,
)
from backends.stepfunctions.reader import Found, owner_of
from backends.stepfunctions.write_base import (
    _GONE,
    WriterBase,
)
from planner.resources import Resource

__all__ = ["MachineWrites"]


class MachineWrites(WriterBase):
    """State machines: publish a version, move the ``live`` alias, then confirm with a tag."""

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
