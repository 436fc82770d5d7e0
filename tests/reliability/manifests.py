"""Generated manifests for the reliability trials: as many flows as a trial needs, on any backend.

``manifest(kind, flows, variant)`` writes the text of a ``flows.yaml`` whose
flows are numbered ``f000``, ``f001``, …; every flow has a schedule (some an
event trigger or an ``after:`` trigger), and one step or two. ``variant``
moves the manifest on, so a second apply has creates, updates and deletes to
make: variant 1 changes every fifth flow's schedule, drops every seventh flow
and adds a few new ones.

Resources per flow: files and argo — a WorkflowTemplate and a CronWorkflow
(plus a Sensor for triggered flows), stepfunctions — a StateMachine, a
Schedule and a JobDefinition per step (plus a Rule for triggered flows).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["manifest"]

_HEAD = {
    "files": """\
backends:
  local:
    type: files
    path: deploy
    render: argo
    argo: {namespace: ml, service_account: runner}
""",
    "argo": """\
  namespace: {default: ml}
backends:
  cluster:
    type: argo
    argo:
      namespace: "{{ vars.namespace }}"
      sensor_namespace: "{{ vars.namespace }}"
      service_account: runner
""",
    "stepfunctions": """\
  region: {}
  account_id: {}
  job_queue: {default: flowplan-batch}
  endpoint_url: {default: ""}
backends:
  aws:
    type: stepfunctions
    endpoint_url: "{{ vars.endpoint_url }}"
    stepfunctions:
      region: "{{ vars.region }}"
      account_id: "{{ vars.account_id }}"
      execution_role_arn: "arn:aws:iam::{{ vars.account_id }}:role/run"
      events_role_arn: "arn:aws:iam::{{ vars.account_id }}:role/start"
      job_queue: "{{ vars.job_queue }}"
""",
}

_CRONS = ("0 1 * * *", "30 2 * * *", "15 */4 * * *", "0 7 * * MON", "45 23 * * 1-5")
_ZONES = ("Europe/Berlin", "UTC", "America/New_York", "Asia/Tokyo")


def _flow_names(flows: int, variant: int) -> list[int]:
    numbers = list(range(flows))
    if variant >= 1:
        numbers = [n for n in numbers if n % 7 != 3] + list(range(flows, flows + max(1, flows // 10)))
    return numbers


def manifest(
    kind: str, flows: int, variant: int = 0, project: str = "rel", numbers: Iterable[int] | None = None
) -> str:
    """The text of a ``flows.yaml`` with ``flows`` flows for backend ``kind`` (files, argo, stepfunctions).

    ``numbers`` picks exactly which flows (``f003`` is 3) instead of ``range(flows)`` and the variant's choice.
    """
    lines = [f"version: 1\nproject: {project}\nvars:\n  tag: {{default: '1.36'}}\n", _HEAD[kind]]
    lines.append(
        "events:\n  landed:\n    source: s3\n    type: object-created\n"
        "    filters:\n      - {path: bucket, op: eq, value: raw}\n"
    )
    lines.append('sinks:\n  store: {type: cache, uri: "redis://cache:6379/0", key_prefix: "k/"}\n')
    lines.append("flows:\n")
    names = sorted(set(numbers)) if numbers is not None else _flow_names(flows, variant)
    present = set(names)
    for n in names:
        cron = _CRONS[n % len(_CRONS)]
        if variant >= 1 and n % 5 == 0:
            cron = "5 5 * * *"
        zone = _ZONES[n % len(_ZONES)]
        body = [f"  f{n:03d}:\n", '    image: "busybox:{{ vars.tag }}"\n']
        body.append(f'    schedule: {{cron: "{cron}", timezone: {zone}}}\n')
        if n % 4 == 1:
            upstream = n - 1
            if kind == "stepfunctions" or upstream not in present:
                # Step Functions: an `after:` rule; Argo: an event sensor (an `after:` sensor needs the upstream)
                trigger = f"{{after: f{upstream:03d}}}" if upstream in present else "{event: landed}"
            else:
                trigger = "{event: landed}"
            body.append(f"    triggers: [{trigger}]\n")
        if n % 6 == 0:
            body.append("    sinks: [store]\n")
        body.append("    steps:\n")
        if n % 3 == 0:
            body.append(f"      start: {{command: [echo, 'n{n}'], next: end, resources: {{cpu: '1', memory: 1Gi}}}}\n")
            body.append(f"      end: {{command: [echo, done, 'n{n}'], resources: {{cpu: '1', memory: 1Gi}}}}\n")
        else:
            body.append(f"      start: {{command: [echo, 'n{n}'], resources: {{cpu: '1', memory: 1Gi}}}}\n")
        lines.append("".join(body))
    return "".join(lines)
