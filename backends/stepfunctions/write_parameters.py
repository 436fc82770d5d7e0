"""SSM parameters (the sinks' settings), tagged in the call that creates them."""

from __future__ import annotations

from backends.stepfunctions.normalize import (
    dumps,
    tag_list,
)
from backends.stepfunctions.reader import Found
from backends.stepfunctions.write_base import (
    WriterBase,
)
from planner.resources import Resource

__all__ = ["ParameterWrites"]


class ParameterWrites(WriterBase):
    """SSM parameters (the sinks' settings), tagged in the call that creates them."""

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
