"""Business hours: schedule syntax, holidays, overnight spans and daylight-saving time."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minicc.queue.hours import (
    HoursError,
    HoursStatus,
    OpenSpan,
    business_hours,
    load_timezone,
    parse_holiday,
    parse_schedule_line,
)


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()  # type: ignore[misc]


def test_weekday_range_and_several_times() -> None:
    spans = parse_schedule_line("mon-fri 08:00-12:00, 13:00-18:30")
    assert len(spans) == 10
    assert OpenSpan(day=0, start=8 * 60, end=12 * 60) in spans
    assert OpenSpan(day=4, start=13 * 60, end=18 * 60 + 30) in spans


def test_day_lists_and_wrapping_ranges() -> None:
    assert {s.day for s in parse_schedule_line("mon,wed 09:00-10:00")} == {0, 2}
    assert {s.day for s in parse_schedule_line("fri-mon 09:00-10:00")} == {4, 5, 6, 0}
    assert {s.day for s in parse_schedule_line("SAT 09:00-10:00")} == {5}


def test_overnight_span_runs_into_the_next_day() -> None:
    spans = parse_schedule_line("sun 22:00-02:00")
    assert spans == [OpenSpan(day=6, start=22 * 60, end=1440), OpenSpan(day=0, start=0, end=120)]
    assert parse_schedule_line("mon 00:00-24:00") == [OpenSpan(day=0, start=0, end=1440)]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "mon-fry 08:00-18:00",
            'bad schedule "mon-fry 08:00-18:00": unknown day "fry" '
            "(use mon, tue, wed, thu, fri, sat, sun)",
        ),
        ("mon 8-18", 'bad schedule "mon 8-18": bad time "8" (use HH:MM)'),
        (
            "mon 08:00-25:00",
            'bad schedule "mon 08:00-25:00": bad time "25:00" (use 00:00 to 24:00)',
        ),
        ("mon 08:00", 'bad schedule "mon 08:00": bad time range "08:00" (use HH:MM-HH:MM)'),
        ("mon 08:00-08:00", 'bad schedule "mon 08:00-08:00": empty time range "08:00-08:00"'),
        (
            "08:00-18:00",
            'bad schedule "08:00-18:00": use days then times, e.g. "mon-fri 08:00-18:00"',
        ),
    ],
)
def test_bad_schedule_lines_say_what_is_wrong(line: str, message: str) -> None:
    with pytest.raises(HoursError) as caught:
        parse_schedule_line(line)
    assert str(caught.value) == message


def test_holidays_dated_and_yearly() -> None:
    assert parse_holiday("2026-12-25") == date(2026, 12, 25)
    assert parse_holiday("12-25") == (12, 25)
    assert parse_holiday("02-29") == (2, 29)
    for bad in ("2026-13-01", "13-01", "2026-02-30", "christmas", "2026-1-1"):
        with pytest.raises(HoursError, match=f'bad holiday "{bad}": use YYYY-MM-DD'):
            parse_holiday(bad)


def test_bad_time_zone_is_named() -> None:
    with pytest.raises(HoursError) as caught:
        load_timezone("Europe/Berln")
    assert (
        str(caught.value)
        == 'unknown time zone "Europe/Berln" (use an IANA name like "Europe/Berlin")'
    )
    for bad in ("", "../etc/passwd", "/usr/share/zoneinfo/UTC"):
        with pytest.raises(HoursError):
            load_timezone(bad)


BERLIN = business_hours(
    ["mon-fri 08:00-18:00", "sat 09:00-13:00"],
    ["2026-12-24", "12-25", "01-01"],
    timezone="Europe/Berlin",
)


@pytest.mark.parametrize(
    ("when", "status"),
    [
        # Winter (CET, UTC+1): Friday 2026-03-27.
        (utc(2026, 3, 27, 6, 59), HoursStatus.CLOSED),  # 07:59 local
        (utc(2026, 3, 27, 7, 0), HoursStatus.OPEN),  # 08:00 local
        (utc(2026, 3, 27, 16, 59), HoursStatus.OPEN),  # 17:59 local
        (utc(2026, 3, 27, 17, 0), HoursStatus.CLOSED),  # 18:00 local
        # Summer (CEST, UTC+2) from Sunday 2026-03-29: Monday 2026-03-30. A fixed UTC+1 offset
        # would get both of these wrong.
        (utc(2026, 3, 30, 6, 0), HoursStatus.OPEN),  # 08:00 local
        (utc(2026, 3, 30, 16, 0), HoursStatus.CLOSED),  # 18:00 local
        # Back to CET on Sunday 2026-10-25: Monday 2026-10-26 08:00 local is 07:00 UTC.
        (utc(2026, 10, 26, 6, 30), HoursStatus.CLOSED),  # 07:30 local
        (utc(2026, 10, 26, 7, 0), HoursStatus.OPEN),  # 08:00 local
        # Saturday morning only, Sunday closed.
        (utc(2026, 3, 28, 8, 0), HoursStatus.OPEN),  # Sat 09:00 CET
        (utc(2026, 3, 28, 12, 0), HoursStatus.CLOSED),  # Sat 13:00 CET
        (utc(2026, 3, 29, 10, 0), HoursStatus.CLOSED),  # Sun
        # Holidays: a dated one and yearly ones, by the local date.
        (utc(2026, 12, 24, 10, 0), HoursStatus.HOLIDAY),  # Thu
        (utc(2027, 12, 24, 10, 0), HoursStatus.OPEN),  # Fri; only 2026's 24th is a holiday
        (utc(2027, 12, 25, 10, 0), HoursStatus.HOLIDAY),  # yearly
        (utc(2026, 12, 31, 23, 30), HoursStatus.HOLIDAY),  # already 01-01 in Berlin
    ],
)
def test_status_in_berlin_across_dst(when: float, status: HoursStatus) -> None:
    assert BERLIN.status(when) is status


def test_fall_back_hour_counts_twice_and_spring_gap_never_happens() -> None:
    night = business_hours(["sun 02:00-03:00"], timezone="Europe/Berlin")
    # 2026-10-25: 02:00-03:00 local happens twice (00:00-01:00 UTC CEST, 01:00-02:00 UTC CET).
    assert night.status(utc(2026, 10, 25, 0, 30)) is HoursStatus.OPEN
    assert night.status(utc(2026, 10, 25, 1, 30)) is HoursStatus.OPEN
    assert night.status(utc(2026, 10, 25, 2, 30)) is HoursStatus.CLOSED
    # 2026-03-29: clocks jump from 02:00 to 03:00, so the span never opens.
    assert night.status(utc(2026, 3, 29, 0, 59)) is HoursStatus.CLOSED
    assert night.status(utc(2026, 3, 29, 1, 0)) is HoursStatus.CLOSED


def test_holiday_closes_the_spill_of_an_overnight_span() -> None:
    hours = business_hours(["fri 22:00-02:00"], ["2026-01-03"], timezone="UTC")
    assert hours.status(utc(2026, 1, 2, 23, 0)) is HoursStatus.OPEN  # Friday night
    assert hours.status(utc(2026, 1, 3, 1, 0)) is HoursStatus.HOLIDAY  # Saturday is a holiday
    assert hours.status(utc(2026, 1, 10, 1, 0)) is HoursStatus.OPEN  # next Saturday, 01:00


@given(
    start=st.integers(0, 1439),
    length=st.integers(1, 1439),
    moment=st.integers(0, 14 * 86400),
)
def test_a_span_is_open_exactly_for_its_length(start: int, length: int, moment: int) -> None:
    end = (start + length) % 1440
    line = f"mon-sun {start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"
    hours = business_hours([line])
    minute_of_day = (moment // 60) % 1440
    inside = (minute_of_day - start) % 1440 < length
    expected = HoursStatus.OPEN if inside else HoursStatus.CLOSED
    assert hours.status(utc(2026, 1, 5) + moment) is expected
