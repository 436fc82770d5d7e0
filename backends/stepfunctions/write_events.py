"""EventBridge rules (full replaces, targets removed first) and Scheduler groups and schedules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backends.stepfunctions.normalize import (
    dumps,
    tag_list,
)
from backends.stepfunctions.reader import Found
from backends.stepfunctions.write_base import (
    WriterBase,
)
from planner.errors import BackendError
from planner.resources import Resource

__all__ = ["EventWrites"]


class EventWrites(WriterBase):
    """EventBridge rules (full replaces, targets removed first) and Scheduler groups and schedules."""

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
