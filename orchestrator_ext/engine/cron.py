"""Schedule arithmetic for cron schedules: validation, next firing, due firings. No I/O.

Expressions have five fields (minute hour day-of-month month day-of-week) with
cronsim's extras (``L``, ``LW``, ``#``, names such as ``MON`` or ``JAN``) or one
of the aliases ``@hourly`` ... ``@yearly``. They are read as wall-clock time in
an IANA time zone and every instant this module returns is in UTC.

Daylight saving time follows Debian cron, as cronsim does. A job at a fixed time
(neither the minute nor the hour field starts with ``*``) fires once a day: a
time skipped when clocks go forward runs at the first minute after the gap
(``30 2 * * *`` in Europe/Paris runs at 03:00 local on that day) and a time
repeated when clocks go back runs at its first occurrence only. Other jobs
follow real time: ``0 * * * *`` fires once per real hour through both changes.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain, islice, takewhile
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FIELDS = "minute hour day-of-month month day-of-week"
_TICK = timedelta(microseconds=1)


class MisfirePolicy(enum.StrEnum):
    """What to do with due times that fell while no scheduler was running."""

    RUN_ONCE = "run_once"
    SKIP = "skip"


class OverlapPolicy(enum.StrEnum):
    """What to do when a firing comes while the previous run is still going."""

    SKIP = "skip"
    QUEUE = "queue"
    CANCEL_PREVIOUS = "cancel_previous"


class CronError(ValueError):
    """A cron expression or time zone a user must fix; ``field`` is ``"cron"`` or ``"timezone"``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Firing:
    """The outcome of one scheduler tick for one schedule (all instants in UTC)."""

    fire_times: tuple[datetime, ...]
    next_run_at: datetime
    missed: int


def check_cron(expression: str) -> str:
    """Return ``expression`` normalized (whitespace collapsed, aliases lower-cased); raise CronError if invalid."""
    normalized = " ".join(expression.split())
    if normalized.lower() in _ALIASES:
        return normalized.lower()
    count = len(normalized.split())
    if count != 5:
        reason = f"expected 5 fields ({_FIELDS}), got {count}"
        raise CronError("cron", f"{expression!r} is not a valid cron expression: {reason}")
    try:
        CronSim(normalized, datetime(2000, 1, 1))
    except CronSimError as exc:
        raise CronError("cron", f"{normalized!r} is not a valid cron expression: {str(exc).lower()}") from None
    return normalized


def check_timezone(name: str) -> ZoneInfo:
    """Return the zone named ``name``; raise CronError if there is no such IANA zone."""
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CronError("timezone", f"unknown timezone {name!r}; use an IANA name such as 'Europe/Paris'") from None


def next_fire(expression: str, timezone: str, after: datetime) -> datetime:
    """Return the first firing strictly after the aware datetime ``after``, in UTC."""
    fire = next(_firings(_five_fields(expression), check_timezone(timezone), _utc(after, "after")), None)
    if fire is None:
        raise CronError("cron", f"{expression!r} never fires after {after.isoformat()}")
    return fire


def due_firings(
    expression: str,
    timezone: str,
    next_run_at: datetime,
    now: datetime,
    misfire_policy: str,
    grace: timedelta = timedelta(seconds=60),
    limit: int = 1000,
) -> Firing:
    """Return what a schedule whose stored next firing is ``next_run_at`` must run at ``now``.

    Due times are ``next_run_at`` and every later firing up to ``now``; those
    older than ``grace`` are missed. ``run_once`` runs the on-time ones, or one
    late run for the latest missed time when none is on time; ``skip`` runs the
    on-time ones only. ``missed`` counts the due times not run (at most ``limit``).
    """
    policy = MisfirePolicy(misfire_policy)
    expr, zone = _five_fields(expression), check_timezone(timezone)
    start, now = _utc(next_run_at, "next_run_at"), _utc(now, "now")
    if start > now:
        return Firing((), start, 0)
    cutoff = now - grace
    on_time = [start] if start >= cutoff else []
    later = takewhile(lambda t: t <= now, _firings(expr, zone, max(start, cutoff - _TICK)))
    on_time += islice(later, limit - len(on_time))
    old = takewhile(lambda t: t < cutoff, _firings(expr, zone, start))
    missed = list(islice(chain([start] if start < cutoff else [], old), limit))
    following = next_fire(expr, zone.key, now)
    if policy is MisfirePolicy.SKIP or on_time or not missed:
        return Firing(tuple(on_time), following, len(missed))
    late = missed[-1] if len(missed) < limit else _latest_before(expr, zone, cutoff, missed[-1])
    return Firing((late,), following, len(missed) - 1)


def _five_fields(expression: str) -> str:
    expression = check_cron(expression)
    return _ALIASES.get(expression, expression)


def _utc(moment: datetime, name: str) -> datetime:
    if moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return moment.astimezone(UTC)


def _firings(expr: str, zone: ZoneInfo, after: datetime) -> Iterator[datetime]:
    """Firings strictly after ``after``, oldest first, in UTC.

    cronsim works on the wall clock: when ``after`` falls in a repeated hour it
    may yield an instant at or before ``after``, which is dropped here.
    """
    last = after
    for fire in CronSim(expr, after.astimezone(zone)):
        instant = fire.astimezone(UTC)
        if instant > last:
            last = instant
            yield instant


def _latest_before(expr: str, zone: ZoneInfo, before: datetime, floor: datetime) -> datetime:
    """The latest firing before ``before`` (and not before ``floor``, a firing known to be earlier)."""
    anchor = next(CronSim(expr, before.astimezone(zone), reverse=True), None)
    latest = floor if anchor is None else max(floor, anchor.astimezone(UTC))
    # cronsim walks back on the wall clock; walking forward from its answer corrects a repeated hour
    for fire in takewhile(lambda t: t < before, _firings(expr, zone, latest)):
        latest = fire
    return latest
