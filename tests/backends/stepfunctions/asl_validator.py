"""An Amazon States Language validator, independent of the compiler (moto validates nothing).

It checks what AWS's ``CreateStateMachine`` / ``ValidateStateMachineDefinition``
reject, in JSONPath mode, written from the ASL specification
(https://states-language.net/spec.html) and the Step Functions developer guide:

- the top level and every ``Parallel`` branch and ``Map`` processor: ``StartAt``
  names one of its own states, ``States`` is not empty;
- state names: at most 80 characters, unique in the whole machine;
- every state has a known ``Type`` and only the fields that type allows;
- ``Next`` resolves within the same scope; a state has exactly one of ``Next``
  / ``End: true`` unless it is terminal by type (Succeed, Fail, Choice);
- every state is reachable from ``StartAt``, and a terminal state is reachable;
- ``Retry``: non-empty ``ErrorEquals``, ``States.ALL`` alone and last,
  ``IntervalSeconds`` ≥ 1, ``MaxAttempts`` ≥ 0, ``BackoffRate`` ≥ 1;
  ``TimeoutSeconds`` a positive integer;
- paths (``ItemsPath``, ``ResultPath``, ``InputPath``, ``OutputPath``, values of
  ``.$`` fields) are reference paths; ``.$`` values may also be intrinsic
  functions, whose names and arities are checked (``States.Format``'s ``{}``
  count matches its arguments);
- a Batch ``submitJob.sync`` task names its job, queue and definition.

:func:`validate` returns the problems as text (empty = valid).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["validate"]

MAX_NAME = 80
_COMMON = {"Type", "Comment", "InputPath", "OutputPath"}
_FIELDS: dict[str, set[str]] = {
    "Pass": _COMMON | {"Next", "End", "Parameters", "Result", "ResultPath"},
    "Task": _COMMON
    | {
        "Next",
        "End",
        "Resource",
        "Parameters",
        "ResultPath",
        "ResultSelector",
        "Retry",
        "Catch",
        "TimeoutSeconds",
        "TimeoutSecondsPath",
        "HeartbeatSeconds",
        "HeartbeatSecondsPath",
        "Credentials",
    },
    "Choice": _COMMON | {"Choices", "Default"},
    "Wait": _COMMON | {"Next", "End", "Seconds", "Timestamp", "SecondsPath", "TimestampPath"},
    "Succeed": _COMMON,
    "Fail": {"Type", "Comment", "Error", "Cause", "ErrorPath", "CausePath"},
    "Parallel": _COMMON | {"Next", "End", "Branches", "Parameters", "ResultPath", "ResultSelector", "Retry", "Catch"},
    "Map": _COMMON
    | {
        "Next",
        "End",
        "ItemProcessor",
        "Iterator",
        "ItemsPath",
        "ItemSelector",
        "Parameters",
        "ItemReader",
        "ItemBatcher",
        "ResultWriter",
        "MaxConcurrency",
        "MaxConcurrencyPath",
        "ToleratedFailurePercentage",
        "ToleratedFailureCount",
        "Label",
        "ResultPath",
        "ResultSelector",
        "Retry",
        "Catch",
    },
}
_TERMINAL_TYPES = {"Succeed", "Fail"}
_TOP_LEVEL = {"StartAt", "States", "Comment", "Version", "TimeoutSeconds", "QueryLanguage"}
_PATH = re.compile(r"^\$\$?((\.[A-Za-z_][A-Za-z0-9_]*)|(\[\d+\])|(\['[^']+'\]))*$")
#: Intrinsic functions and their argument counts (None: any).
_INTRINSICS: dict[str, tuple[int, int | None]] = {
    "States.Format": (1, None),
    "States.StringToJson": (1, 1),
    "States.JsonToString": (1, 1),
    "States.JsonMerge": (3, 3),
    "States.Array": (0, None),
    "States.ArrayPartition": (2, 2),
    "States.ArrayContains": (2, 2),
    "States.ArrayRange": (3, 3),
    "States.ArrayGetItem": (2, 2),
    "States.ArrayLength": (1, 1),
    "States.ArrayUnique": (1, 1),
    "States.Base64Encode": (1, 1),
    "States.Base64Decode": (1, 1),
    "States.Hash": (2, 2),
    "States.MathRandom": (2, 3),
    "States.MathAdd": (2, 2),
    "States.StringSplit": (2, 2),
    "States.UUID": (0, 0),
}
BATCH_SYNC = "arn:aws:states:::batch:submitJob.sync"


def validate(definition: Any) -> list[str]:
    """Everything wrong with ``definition`` (a parsed ASL document); ``[]`` when AWS would accept it."""
    problems: list[str] = []
    if not isinstance(definition, dict):
        return ["the definition is not a JSON object"]
    for key in sorted(set(definition) - _TOP_LEVEL):
        problems.append(f"unknown top-level field {key!r}")
    names: dict[str, str] = {}
    _machine(definition, "$", problems, names)
    return problems


def _machine(machine: dict[str, Any], where: str, problems: list[str], names: dict[str, str]) -> None:
    states = machine.get("States")
    start = machine.get("StartAt")
    if not isinstance(states, dict) or not states:
        problems.append(f"{where}: States must be a non-empty object")
        return
    if not isinstance(start, str) or start not in states:
        problems.append(f"{where}: StartAt {start!r} is not one of its states")
    for name, state in states.items():
        here = f"{where}/{name}"
        if len(name) > MAX_NAME:
            problems.append(f"{here}: state name longer than {MAX_NAME} characters")
        if name in names:
            problems.append(f"{here}: state name also used at {names[name]} (names are unique in the machine)")
        names[name] = here
        if not isinstance(state, dict):
            problems.append(f"{here}: a state is an object")
            continue
        _state(name, state, states, here, problems, names)
    _reachability(start, states, where, problems)


def _state(
    name: str, state: dict[str, Any], scope: dict[str, Any], here: str, problems: list[str], names: dict[str, str]
) -> None:
    kind = state.get("Type")
    if kind not in _FIELDS:
        problems.append(f"{here}: unknown Type {kind!r}")
        return
    for key in sorted(set(state) - _FIELDS[kind]):
        problems.append(f"{here}: field {key!r} is not allowed in a {kind} state")
    if kind not in _TERMINAL_TYPES and kind != "Choice":
        has_next, ends = "Next" in state, state.get("End") is True
        if has_next == ends:
            problems.append(f"{here}: needs exactly one of Next and End: true")
        if "End" in state and state["End"] is not True:
            problems.append(f"{here}: End must be true when present")
        if has_next and state["Next"] not in scope:
            problems.append(f"{here}: Next {state['Next']!r} is not a state in the same scope")
    if kind == "Choice":
        for target in [c.get("Next") for c in state.get("Choices", [])] + [state.get("Default")]:
            if target is not None and target not in scope:
                problems.append(f"{here}: choice target {target!r} is not a state in the same scope")
    for key in ("InputPath", "OutputPath", "ItemsPath"):
        if key in state and state[key] is not None and not _is_path(state[key]):
            problems.append(f"{here}: {key} {state[key]!r} is not a reference path")
    if "ResultPath" in state and state["ResultPath"] is not None and not _is_path(state["ResultPath"]):
        problems.append(f"{here}: ResultPath {state['ResultPath']!r} is not a reference path")
    for key in ("Parameters", "ItemSelector", "ResultSelector"):
        if key in state:
            _template(state[key], f"{here}/{key}", problems)
    if "TimeoutSeconds" in state and not _positive_int(state["TimeoutSeconds"]):
        problems.append(f"{here}: TimeoutSeconds must be a positive integer")
    if "Retry" in state:
        _retry(state["Retry"], here, problems)
    if kind == "Task":
        _task(state, here, problems)
    elif kind == "Parallel":
        branches = state.get("Branches")
        if not isinstance(branches, list) or not branches:
            problems.append(f"{here}: Branches must be a non-empty list")
        else:
            for index, branch in enumerate(branches):
                _machine(branch, f"{here}/Branches[{index}]", problems, names)
    elif kind == "Map":
        processor = state.get("ItemProcessor", state.get("Iterator"))
        if not isinstance(processor, dict):
            problems.append(f"{here}: a Map state needs ItemProcessor")
        else:
            config = processor.get("ProcessorConfig", {})
            if config.get("Mode", "INLINE") not in ("INLINE", "DISTRIBUTED"):
                problems.append(f"{here}: ProcessorConfig.Mode must be INLINE or DISTRIBUTED")
            _machine(processor, f"{here}/ItemProcessor", problems, names)
        if "ItemSelector" in state and "Parameters" in state:
            problems.append(f"{here}: ItemSelector and Parameters cannot both be set")


def _task(state: dict[str, Any], here: str, problems: list[str]) -> None:
    resource = state.get("Resource")
    if not isinstance(resource, str) or not resource.startswith("arn:"):
        problems.append(f"{here}: a Task needs a Resource ARN")
        return
    if resource == BATCH_SYNC:
        parameters = state.get("Parameters", {})
        for field in ("JobName", "JobQueue", "JobDefinition"):
            if field not in parameters and f"{field}.$" not in parameters:
                problems.append(f"{here}: a Batch task needs Parameters.{field}")
        job_name = parameters.get("JobName")
        if isinstance(job_name, str) and not re.match(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$", job_name):
            problems.append(f"{here}: JobName {job_name!r} is not a valid Batch job name")
        environment = parameters.get("ContainerOverrides", {}).get("Environment", [])
        for variable in environment:
            if set(variable) not in ({"Name", "Value"}, {"Name", "Value.$"}):
                problems.append(f"{here}: environment entry {variable} needs Name and Value (or Value.$)")


def _retry(retriers: Any, here: str, problems: list[str]) -> None:
    if not isinstance(retriers, list):
        problems.append(f"{here}: Retry must be a list")
        return
    for index, retrier in enumerate(retriers):
        where = f"{here}/Retry[{index}]"
        errors = retrier.get("ErrorEquals")
        if not isinstance(errors, list) or not errors or not all(isinstance(e, str) for e in errors):
            problems.append(f"{where}: ErrorEquals must be a non-empty list of error names")
            continue
        if "States.ALL" in errors and (len(errors) > 1 or index != len(retriers) - 1):
            problems.append(f"{where}: States.ALL must appear alone in the last retrier")
        if "IntervalSeconds" in retrier and not _positive_int(retrier["IntervalSeconds"]):
            problems.append(f"{where}: IntervalSeconds must be a positive integer")
        attempts = retrier.get("MaxAttempts", 3)
        if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 0:
            problems.append(f"{where}: MaxAttempts must be a non-negative integer")
        rate = retrier.get("BackoffRate", 2.0)
        if not isinstance(rate, int | float) or isinstance(rate, bool) or rate < 1:
            problems.append(f"{where}: BackoffRate must be a number of at least 1")


def _template(node: Any, here: str, problems: list[str]) -> None:
    """A payload template: ``key.$`` values are paths or intrinsic functions; nested objects recurse."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith(".$"):
                if not isinstance(value, str) or not (_is_path(value) or _intrinsic(value, f"{here}/{key}", problems)):
                    problems.append(f"{here}/{key}: {value!r} is neither a reference path nor an intrinsic function")
            else:
                _template(value, f"{here}/{key}", problems)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            _template(item, f"{here}[{index}]", problems)


def _intrinsic(text: str, here: str, problems: list[str]) -> bool:
    """True when ``text`` is a well-formed intrinsic call (its problems reported); False if not one at all."""
    match = re.match(r"^(States\.[A-Za-z0-9]+)\((.*)\)$", text.strip(), re.DOTALL)
    if not match:
        return False
    name, body = match.groups()
    if name not in _INTRINSICS:
        problems.append(f"{here}: unknown intrinsic function {name}")
        return True
    args = _split_args(body)
    if args is None:
        problems.append(f"{here}: unbalanced quotes or parentheses in {text!r}")
        return True
    low, high = _INTRINSICS[name]
    if len(args) < low or (high is not None and len(args) > high):
        problems.append(f"{here}: {name} takes {low}..{high if high is not None else 'n'} arguments, got {len(args)}")
        return True
    for arg in args:
        if arg.startswith("'") or arg in ("true", "false", "null") or re.match(r"^-?\d+(\.\d+)?$", arg):
            continue
        if arg.startswith("States."):
            _intrinsic(arg, here, problems)
        elif not _is_path(arg):
            problems.append(f"{here}: argument {arg!r} of {name} is neither a literal nor a reference path")
    if name == "States.Format":
        template = args[0]
        if not template.startswith("'"):
            problems.append(f"{here}: the first argument of States.Format must be a string literal")
        elif template.count("{}") != len(args) - 1:
            problems.append(f"{here}: States.Format has {template.count('{}')} placeholders and {len(args) - 1} values")
    if name == "States.JsonMerge" and args[2] != "false":
        problems.append(f"{here}: States.JsonMerge supports only a shallow merge (third argument false)")
    return True


def _split_args(body: str) -> list[str] | None:
    args: list[str] = []
    depth, quoted, current = 0, False, ""
    index = 0
    while index < len(body):
        char = body[index]
        if quoted:
            current += char
            if char == "\\" and index + 1 < len(body):
                current += body[index + 1]
                index += 1
            elif char == "'":
                quoted = False
        elif char == "'":
            quoted = True
            current += char
        elif char == "(":
            depth += 1
            current += char
        elif char == ")":
            depth -= 1
            if depth < 0:
                return None
            current += char
        elif char == "," and depth == 0:
            args.append(current.strip())
            current = ""
        else:
            current += char
        index += 1
    if quoted or depth:
        return None
    if current.strip():
        args.append(current.strip())
    return args


def _reachability(start: Any, states: dict[str, Any], where: str, problems: list[str]) -> None:
    if not isinstance(start, str) or start not in states:
        return
    seen: set[str] = set()
    todo = [start]
    terminal = False
    while todo:
        name = todo.pop()
        if name in seen or name not in states:
            continue
        seen.add(name)
        state = states[name]
        if not isinstance(state, dict):
            continue
        if state.get("End") is True or state.get("Type") in _TERMINAL_TYPES:
            terminal = True
        todo += [t for t in _targets(state) if isinstance(t, str)]
    for name in sorted(set(states) - seen):
        problems.append(f"{where}/{name}: unreachable from StartAt")
    if not terminal:
        problems.append(f"{where}: no terminal state is reachable (the machine never ends)")


def _targets(state: dict[str, Any]) -> Iterable[Any]:
    if "Next" in state:
        yield state["Next"]
    for choice in state.get("Choices", []):
        yield choice.get("Next")
    if "Default" in state:
        yield state["Default"]
    for catcher in state.get("Catch", []):
        yield catcher.get("Next")


def _is_path(value: Any) -> bool:
    return isinstance(value, str) and bool(_PATH.match(value))


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
