"""Helpers for the operate tests: fire times computed independently of planner.schedule, run objects."""

from __future__ import annotations

import datetime
import json
from typing import Any
from zoneinfo import ZoneInfo

UTC = datetime.UTC


def wall_clock_fires(
    hour: int | None, minute: int, zone_name: str, after: datetime.datetime, count: int, weekday: int | None = None
) -> list[datetime.datetime]:
    """The next ``count`` times a daily (``hour``), hourly (``hour=None``) or weekly schedule fires.

    Computed straight from zoneinfo, as EventBridge Scheduler documents it: a wall-clock time
    that does not exist (spring forward) is skipped.
    """
    zone = ZoneInfo(zone_name)
    fires: list[datetime.datetime] = []
    day = after.astimezone(zone).date()
    while len(fires) < count:
        if weekday is None or day.weekday() == weekday:
            for h in range(24) if hour is None else (hour,):
                wall = datetime.datetime.combine(day, datetime.time(h, minute), tzinfo=zone)
                exists = wall.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall.replace(tzinfo=None)
                if exists and wall > after and len(fires) < count:
                    fires.append(wall)
        day += datetime.timedelta(days=1)
    return fires


def instants(values: list[str]) -> list[datetime.datetime]:
    return [datetime.datetime.fromisoformat(v).astimezone(UTC) for v in values]


def generated(view: dict[str, Any]) -> datetime.datetime:
    return datetime.datetime.fromisoformat(view["generated_at"].replace("Z", "+00:00"))


def iso(moment: datetime.datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def flow_view(view: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in view["flows"] if f["name"] == name)


def parse(text: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(text)
    return data
