"""Batch job definitions: registered once per content, never again while a revision has it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backends.stepfunctions.aws import AwsError
from backends.stepfunctions.normalize import (
    job_content,
    tag_dict,
)
from backends.stepfunctions.reader import Found
from backends.stepfunctions.write_base import (
    _GONE,
    WriterBase,
)
from planner.resources import Resource

__all__ = ["BatchWrites"]


class BatchWrites(WriterBase):
    """Batch job definitions: registered once per content, never again while a revision has it."""

    # -- Batch job definitions ---------------------------------------------------------

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
