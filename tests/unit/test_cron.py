"""Cron schedule arithmetic: validation, next firing across DST, due firings and misfires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from orchestrator_ext.engine.cron import (
    CronError,
    Firing,
    MisfirePolicy,
    OverlapPolicy,
    check_cron,
    check_timezone,
    due_firings,
    next_fire,
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def fires(expression: str, timezone: str, after: datetime, count: int) -> list[datetime]:
    out = []
    for _ in range(count):
        after = next_fire(expression, timezone, after)
        out.append(after)
    return out


# validation


@pytest.mark.parametrize(
    ("expression", "normalized"),
    [
        ("*/15 * * * *", "*/15 * * * *"),
        ("  0   9 * *\t1 ", "0 9 * * 1"),
        ("0 9 * * MON-FRI", "0 9 * * MON-FRI"),
        ("0 0 1 jan *", "0 0 1 jan *"),
        ("0 0 L * *", "0 0 L * *"),
        ("0 0 LW * *", "0 0 LW * *"),
        ("0 0 * * 5L", "0 0 * * 5L"),
        ("0 0 * * MON#2", "0 0 * * MON#2"),
        ("@daily", "@daily"),
        (" @HOURLY ", "@hourly"),
    ],
)
def test_valid_expressions_are_normalized(expression: str, normalized: str) -> None:
    assert check_cron(expression) == normalized


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("61 * * * *", "bad minute"),
        ("0 24 * * *", "bad hour"),
        ("0 0 30 2 *", "bad day-of-month"),
        ("0 0 15W * *", "bad day-of-month"),
        ("0 0 * 13 *", "bad month"),
        ("0 0 * * MON#6", "bad day-of-week"),
        ("a b c d e", "bad minute"),
        ("0 0 * * * *", "expected 5 fields"),
        ("* * * *", "expected 5 fields"),
        ("", "got 0"),
        ("@reboot", "got 1"),
    ],
)
def test_invalid_expressions(expression: str, reason: str) -> None:
    with pytest.raises(CronError, match="is not a valid cron expression") as caught:
        check_cron(expression)
    assert caught.value.field == "cron"
    assert reason in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_valid_timezones() -> None:
    assert check_timezone("Europe/Paris") == ZoneInfo("Europe/Paris")
    assert check_timezone(" Asia/Tokyo ").key == "Asia/Tokyo"
    assert check_timezone("UTC").key == "UTC"


@pytest.mark.parametrize("name", ["Mars/Base", "../etc", "/etc/passwd", "", "America", "Europe/", "a\x00b", "utc"])
def test_invalid_timezones(name: str) -> None:
    with pytest.raises(CronError, match=r"unknown timezone .*use an IANA name such as 'Europe/Paris'") as caught:
        check_timezone(name)
    assert caught.value.field == "timezone"


def test_next_fire_checks_its_inputs() -> None:
    with pytest.raises(CronError) as caught:
        next_fire("0 0 * * * *", "UTC", utc(2024, 1, 1))
    assert caught.value.field == "cron"
    with pytest.raises(CronError) as caught:
        next_fire("0 0 * * *", "Mars/Base", utc(2024, 1, 1))
    assert caught.value.field == "timezone"
    with pytest.raises(ValueError, match="timezone-aware"):
        next_fire("0 0 * * *", "UTC", datetime(2024, 1, 1))


def test_policies() -> None:
    assert [p.value for p in MisfirePolicy] == ["run_once", "skip"]
    assert [p.value for p in OverlapPolicy] == ["skip", "queue", "cancel_previous"]
    assert MisfirePolicy("skip") == "skip"


# next_fire


def test_next_fire_in_utc_is_strictly_after() -> None:
    assert next_fire("0 0 * * *", "UTC", utc(2024, 1, 1)) == utc(2024, 1, 2)
    assert next_fire("0 0 * * *", "UTC", utc(2024, 1, 1, 0, 0, 0, 1)) == utc(2024, 1, 2)
    assert next_fire("*/15 * * * *", "UTC", utc(2024, 1, 1, 10, 7, 59)) == utc(2024, 1, 1, 10, 15)
    assert next_fire("0 9 * * MON-FRI", "UTC", utc(2024, 1, 5, 10)) == utc(2024, 1, 8, 9)  # Friday -> Monday
    assert next_fire("0 0 L * *", "UTC", utc(2024, 2, 1)) == utc(2024, 2, 29)


def test_next_fire_in_a_zone_from_any_zone() -> None:
    tokyo_morning = datetime(2024, 1, 15, 9, tzinfo=ZoneInfo("Asia/Tokyo"))  # 00:00Z
    fire = next_fire("0 9 * * *", "Europe/Paris", tokyo_morning)
    assert fire == utc(2024, 1, 15, 8)  # 09:00 CET
    assert fire.tzinfo is UTC
    assert next_fire("0 9 * * *", "Europe/Paris", utc(2024, 7, 15, 8)) == utc(2024, 7, 16, 7)  # 09:00 CEST


def test_aliases() -> None:
    wednesday = utc(2024, 1, 3, 12)
    assert next_fire("@hourly", "UTC", wednesday) == utc(2024, 1, 3, 13)
    assert next_fire("@daily", "UTC", wednesday) == utc(2024, 1, 4)
    assert next_fire("@midnight", "UTC", wednesday) == utc(2024, 1, 4)
    assert next_fire("@weekly", "UTC", wednesday) == utc(2024, 1, 7)  # Sunday
    assert next_fire("@monthly", "UTC", wednesday) == utc(2024, 2, 1)
    assert next_fire("@yearly", "UTC", wednesday) == utc(2025, 1, 1)
    assert next_fire("@annually", "Europe/Paris", wednesday) == utc(2024, 12, 31, 23)


# DST: Europe/Paris springs forward 2024-03-31 at 01:00Z (02:00 CET -> 03:00 CEST)
# and falls back 2024-10-27 at 01:00Z (03:00 CEST -> 02:00 CET).


def test_paris_spring_forward_fixed_time_runs_at_the_end_of_the_gap() -> None:
    # 02:30 does not exist that day: it runs once, at 03:00 CEST
    assert fires("30 2 * * *", "Europe/Paris", utc(2024, 3, 30, 12), 3) == [
        utc(2024, 3, 31, 1),
        utc(2024, 4, 1, 0, 30),
        utc(2024, 4, 2, 0, 30),
    ]


def test_paris_fall_back_fixed_time_runs_once() -> None:
    # 02:30 happens twice that day: it runs at the first one (CEST) only
    assert fires("30 2 * * *", "Europe/Paris", utc(2024, 10, 26, 12), 2) == [
        utc(2024, 10, 27, 0, 30),
        utc(2024, 10, 28, 1, 30),
    ]
    # from inside the repeated hour (02:15 CET, after the first 02:30) the next run is the next day
    assert next_fire("30 2 * * *", "Europe/Paris", utc(2024, 10, 27, 1, 15)) == utc(2024, 10, 28, 1, 30)


def test_paris_hourly_fires_every_real_hour() -> None:
    fall = fires("0 * * * *", "Europe/Paris", utc(2024, 10, 26, 22, 30), 5)
    assert fall == [utc(2024, 10, 26, 23)] + [utc(2024, 10, 27, hour) for hour in range(4)]
    spring = fires("0 * * * *", "Europe/Paris", utc(2024, 3, 30, 22, 30), 5)
    assert spring == [utc(2024, 3, 30, 23)] + [utc(2024, 3, 31, hour) for hour in range(4)]


# DST: America/New_York springs forward 2024-03-10 at 07:00Z (02:00 EST -> 03:00 EDT)
# and falls back 2024-11-03 at 06:00Z (02:00 EDT -> 01:00 EST).


def test_new_york_spring_forward() -> None:
    assert fires("30 2 * * *", "America/New_York", utc(2024, 3, 9), 3) == [
        utc(2024, 3, 9, 7, 30),  # 02:30 EST
        utc(2024, 3, 10, 7),  # 03:00 EDT: 02:30 does not exist
        utc(2024, 3, 11, 6, 30),  # 02:30 EDT
    ]
    # a job that is not at a fixed time follows real time: the missing hour has no 02:xx
    assert fires("*/30 2 * * *", "America/New_York", utc(2024, 3, 9, 6), 3) == [
        utc(2024, 3, 9, 7),
        utc(2024, 3, 9, 7, 30),
        utc(2024, 3, 11, 6),
    ]


def test_new_york_fall_back() -> None:
    assert fires("30 1 * * *", "America/New_York", utc(2024, 11, 2), 3) == [
        utc(2024, 11, 2, 5, 30),  # 01:30 EDT
        utc(2024, 11, 3, 5, 30),  # the first 01:30 (EDT), not the second one at 06:30Z
        utc(2024, 11, 4, 6, 30),  # 01:30 EST
    ]
    hourly = fires("0 * * * *", "America/New_York", utc(2024, 11, 3, 3, 30), 4)
    assert hourly == [utc(2024, 11, 3, hour) for hour in (4, 5, 6, 7)]  # 00:00, 01:00 EDT, 01:00 EST, 02:00


# due_firings


def test_not_due() -> None:
    stored = datetime(2024, 1, 1, 11, 5, tzinfo=ZoneInfo("Europe/Paris"))
    firing = due_firings("* * * * *", "UTC", stored, utc(2024, 1, 1, 10, 4, 30), "run_once")
    assert firing == Firing((), utc(2024, 1, 1, 10, 5), 0)


def test_one_on_time() -> None:
    firing = due_firings("* * * * *", "UTC", utc(2024, 1, 1, 10, 5), utc(2024, 1, 1, 10, 5, 10), "skip")
    assert firing == Firing((utc(2024, 1, 1, 10, 5),), utc(2024, 1, 1, 10, 6), 0)


def test_due_exactly_now_and_exactly_grace_old_are_on_time() -> None:
    # due 10:04 (60 s old: on time), 10:05 (0 s old: on time)
    firing = due_firings("* * * * *", "UTC", utc(2024, 1, 1, 10, 4), utc(2024, 1, 1, 10, 5), "skip")
    assert firing == Firing((utc(2024, 1, 1, 10, 4), utc(2024, 1, 1, 10, 5)), utc(2024, 1, 1, 10, 6), 0)


def test_several_on_time() -> None:
    # due 10:03, 10:04, 10:05; now 10:05:30, so the oldest is 150 s old, within a 5 minute grace
    now = utc(2024, 1, 1, 10, 5, 30)
    firing = due_firings("* * * * *", "UTC", utc(2024, 1, 1, 10, 3), now, "run_once", grace=timedelta(minutes=5))
    assert firing.fire_times == (utc(2024, 1, 1, 10, 3), utc(2024, 1, 1, 10, 4), utc(2024, 1, 1, 10, 5))
    assert firing.next_run_at == utc(2024, 1, 1, 10, 6)
    assert firing.missed == 0


def test_missed_run_once_runs_the_latest_once() -> None:
    # due 06:00, 07:00, 08:00, 09:00: all more than 60 s old at 09:20
    firing = due_firings("0 * * * *", "UTC", utc(2024, 1, 1, 6), utc(2024, 1, 1, 9, 20), "run_once")
    assert firing == Firing((utc(2024, 1, 1, 9),), utc(2024, 1, 1, 10), 3)


def test_missed_skip_runs_nothing() -> None:
    firing = due_firings("0 * * * *", "UTC", utc(2024, 1, 1, 6), utc(2024, 1, 1, 9, 20), MisfirePolicy.SKIP)
    assert firing == Firing((), utc(2024, 1, 1, 10), 4)


@pytest.mark.parametrize("policy", ["run_once", "skip"])
def test_missed_and_on_time_runs_the_on_time_ones(policy: str) -> None:
    # due 09:00, 09:10, 09:20 (missed) and 09:30 (30 s old)
    firing = due_firings("*/10 * * * *", "UTC", utc(2024, 1, 1, 9), utc(2024, 1, 1, 9, 30, 30), policy)
    assert firing == Firing((utc(2024, 1, 1, 9, 30),), utc(2024, 1, 1, 9, 40), 3)


def test_stored_time_off_the_schedule_is_due() -> None:
    firing = due_firings("0 * * * *", "UTC", utc(2024, 1, 1, 9, 17), utc(2024, 1, 1, 9, 17, 5), "skip")
    assert firing == Firing((utc(2024, 1, 1, 9, 17),), utc(2024, 1, 1, 10), 0)


def test_due_across_fall_back_runs_every_real_hour() -> None:
    now = utc(2024, 11, 3, 7, 0, 10)
    firing = due_firings("0 * * * *", "America/New_York", utc(2024, 11, 3, 5), now, "skip", grace=timedelta(hours=3))
    assert firing.fire_times == (utc(2024, 11, 3, 5), utc(2024, 11, 3, 6), utc(2024, 11, 3, 7))
    assert firing.next_run_at == utc(2024, 11, 3, 8)


def test_limit_caps_the_missed_count_and_keeps_the_on_time_run() -> None:
    # a week of every-minute due times (10 081), down to a count of 100
    start, now = utc(2024, 1, 1), utc(2024, 1, 8, 0, 0, 30)
    firing = due_firings("* * * * *", "UTC", start, now, "run_once", limit=100)
    assert firing == Firing((utc(2024, 1, 8),), utc(2024, 1, 8, 0, 1), 100)


def test_limit_still_runs_the_latest_missed_time() -> None:
    start, now = utc(2024, 1, 1), utc(2024, 1, 8, 0, 0, 30)
    firing = due_firings("* * * * *", "UTC", start, now, "run_once", grace=timedelta(0), limit=100)
    assert firing == Firing((utc(2024, 1, 8),), utc(2024, 1, 8, 0, 1), 99)


def test_limit_latest_missed_time_in_a_repeated_hour() -> None:
    # due 01:30 EDT on Nov 1, 2 and 3; now is 01:20 EST on Nov 3, after the one run of that day
    firing = due_firings(
        "30 1 * * *", "America/New_York", utc(2024, 11, 1, 5, 30), utc(2024, 11, 3, 6, 20), "run_once", limit=2
    )
    assert firing == Firing((utc(2024, 11, 3, 5, 30),), utc(2024, 11, 4, 6, 30), 1)


def test_limit_caps_the_on_time_runs() -> None:
    now = utc(2024, 1, 1, 12)
    firing = due_firings("* * * * *", "UTC", utc(2024, 1, 1), now, "skip", grace=timedelta(days=1), limit=10)
    assert firing.fire_times == tuple(utc(2024, 1, 1, 0, minute) for minute in range(10))
    assert firing.next_run_at == utc(2024, 1, 1, 12, 1)


def test_bad_policy() -> None:
    with pytest.raises(ValueError, match="'later' is not a valid MisfirePolicy"):
        due_firings("* * * * *", "UTC", utc(2024, 1, 1), utc(2024, 1, 1), "later")
