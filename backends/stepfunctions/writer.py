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

from collections.abc import Callable
from typing import Any

from backends.stepfunctions.reader import Found
from backends.stepfunctions.write_base import SEND_ATTEMPTS
from backends.stepfunctions.write_batch import BatchWrites
from backends.stepfunctions.write_events import EventWrites
from backends.stepfunctions.write_machines import MachineWrites
from backends.stepfunctions.write_parameters import ParameterWrites
from planner.contract import Writer
from planner.errors import BackendError
from planner.resources import LiveResource, Resource

__all__ = ["SEND_ATTEMPTS", "StepFunctionsWriter"]


class StepFunctionsWriter(MachineWrites, EventWrites, BatchWrites, ParameterWrites, Writer):
    """The :class:`~planner.contract.Writer` of a Step Functions backend; safe to call from several threads."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
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
