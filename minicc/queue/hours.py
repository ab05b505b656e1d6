"""Business hours and holidays, evaluated in a tenant's time zone. Pure.

A schedule is a list of lines such as ``"mon-fri 08:00-18:00"`` or
``"sat 09:00-12:00, 13:00-16:00"``. :func:`parse_schedule` turns them into open spans of
local wall-clock time; :meth:`BusinessHours.status` answers open / closed / holiday for a
unix time. Nothing here reads a clock: the caller passes ``now``.

Choices:

- Spans are local wall-clock time, so "08:00" stays 08:00 across a daylight-saving change.
  On the night clocks go back, 02:30 happens twice and both count as 02:30; on the night
  they go forward, 02:30 never happens.
- A span whose end is not after its start runs past midnight: ``"fri 22:00-02:00"`` is open
  Friday 22:00 until Saturday 02:00. ``24:00`` is allowed as an end.
- A holiday closes the whole local calendar day, including the part of an overnight span
  that spills into it.
- Holidays are ``YYYY-MM-DD`` (one day) or ``MM-DD`` (that day every year).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MINUTES_PER_DAY = 24 * 60
_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})\Z")
_DATE = re.compile(r"(?:([0-9]{4})-)?([0-9]{2})-([0-9]{2})\Z")
# A leap year, so that "02-29" is a valid every-year holiday.
_LEAP_YEAR = 2024


class HoursError(ValueError):
    """A schedule line, holiday or time zone that cannot be understood.

    The message names the offending text and says what is expected.
    """


class HoursStatus(enum.Enum):
    """What a schedule says about one moment."""

    OPEN = "open"
    CLOSED = "closed"
    HOLIDAY = "holiday"


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenSpan:
    """One open interval within one weekday, in local wall-clock minutes."""

    day: int
    """Weekday, 0 = Monday ... 6 = Sunday (as :meth:`datetime.weekday`)."""
    start: int
    """First open minute of the day (0..1439)."""
    end: int
    """Minute at which it closes again (start < end <= 1440)."""

    def __post_init__(self) -> None:
        if not 0 <= self.day <= 6:
            raise ValueError(f"day must be 0..6, got {self.day}")
        if not 0 <= self.start < self.end <= _MINUTES_PER_DAY:
            raise ValueError(f"need 0 <= start < end <= 1440, got {self.start}..{self.end}")


@dataclass(frozen=True, slots=True, kw_only=True)
class BusinessHours:
    """Open spans, holidays and the time zone they are read in."""

    spans: tuple[OpenSpan, ...]
    """Open intervals; overlapping spans simply add up."""
    holidays: frozenset[date] = frozenset()
    """Single-day holidays."""
    yearly_holidays: frozenset[tuple[int, int]] = frozenset()
    """(month, day) pairs closed every year."""
    timezone: tzinfo = UTC
    """IANA zone the spans and holidays are local to."""

    def status(self, now: float) -> HoursStatus:
        """Open, closed or holiday at unix time ``now``.

        Args:
            now: Wall-clock unix seconds.

        Returns:
            ``HOLIDAY`` if the local date is a holiday, else ``OPEN`` if the local time falls
            in a span, else ``CLOSED``.
        """
        local = datetime.fromtimestamp(now, self.timezone)
        if self.is_holiday(local.date()):
            return HoursStatus.HOLIDAY
        minute = local.hour * 60 + local.minute
        day = local.weekday()
        for span in self.spans:
            if span.day == day and span.start <= minute < span.end:
                return HoursStatus.OPEN
        return HoursStatus.CLOSED

    def is_holiday(self, day: date) -> bool:
        """Whether the local calendar day ``day`` is a holiday."""
        return day in self.holidays or (day.month, day.day) in self.yearly_holidays


def load_timezone(name: str) -> ZoneInfo:
    """The IANA time zone called ``name``.

    Raises:
        HoursError: ``name`` is not a known zone (the message names it).
    """
    # ZoneInfo also accepts relative file paths; keep to plain IANA keys.
    if not name or name.startswith(("/", ".")) or ".." in name:
        raise HoursError(f'unknown time zone "{name}" (use an IANA name like "Europe/Berlin")')
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise HoursError(
            f'unknown time zone "{name}" (use an IANA name like "Europe/Berlin")'
        ) from None


def _parse_time(text: str, line: str) -> int:
    match = _TIME.match(text)
    if match is None:
        raise HoursError(f'bad schedule "{line}": bad time "{text}" (use HH:MM)')
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and minutes != 0):
        raise HoursError(f'bad schedule "{line}": bad time "{text}" (use 00:00 to 24:00)')
    return hours * 60 + minutes


def _parse_day(text: str, line: str) -> int:
    try:
        return DAYS.index(text.lower())
    except ValueError:
        raise HoursError(
            f'bad schedule "{line}": unknown day "{text}" (use {", ".join(DAYS)})'
        ) from None


def _parse_days(text: str, line: str) -> list[int]:
    days: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            first_text, _, last_text = part.partition("-")
            first, last = _parse_day(first_text, line), _parse_day(last_text, line)
            # "fri-mon" wraps over the weekend.
            count = (last - first) % 7 + 1
            days.extend((first + offset) % 7 for offset in range(count))
        else:
            days.append(_parse_day(part, line))
    return days


def _spans_for(day: int, start: int, end: int) -> list[OpenSpan]:
    if end > start:
        return [OpenSpan(day=day, start=start, end=end)]
    # Past midnight: the rest of this day, then the morning of the next.
    spans = [OpenSpan(day=day, start=start, end=_MINUTES_PER_DAY)]
    if end > 0:
        spans.append(OpenSpan(day=(day + 1) % 7, start=0, end=end))
    return spans


def parse_schedule_line(line: str) -> list[OpenSpan]:
    """Open spans for one line like ``"mon-fri 08:00-12:00, 13:00-18:00"``.

    Days are ``mon``..``sun``, single, ranges (``mon-fri``, wrapping ``fri-mon``) or comma
    lists (``mon,wed``). Times are ``HH:MM-HH:MM``, comma separated; an end at or before the
    start runs past midnight.

    Raises:
        HoursError: the line is malformed (the message quotes it and says why).
    """
    text = line.strip()
    days_text, _, ranges_text = text.partition(" ")
    if not days_text or not ranges_text.strip():
        raise HoursError(f'bad schedule "{line}": use days then times, e.g. "mon-fri 08:00-18:00"')
    days = _parse_days(days_text, line)
    spans: list[OpenSpan] = []
    for part in ranges_text.split(","):
        start_text, dash, end_text = part.strip().partition("-")
        if not dash:
            raise HoursError(
                f'bad schedule "{line}": bad time range "{part.strip()}" (use HH:MM-HH:MM)'
            )
        start, end = _parse_time(start_text.strip(), line), _parse_time(end_text.strip(), line)
        if start in (end, _MINUTES_PER_DAY):
            raise HoursError(f'bad schedule "{line}": empty time range "{part.strip()}"')
        for day in days:
            spans.extend(_spans_for(day, start, end))
    return spans


def parse_schedule(lines: Iterable[str]) -> tuple[OpenSpan, ...]:
    """Open spans for every line; see :func:`parse_schedule_line`.

    Raises:
        HoursError: for the first malformed line.
    """
    spans: list[OpenSpan] = []
    for line in lines:
        spans.extend(parse_schedule_line(line))
    return tuple(spans)


def parse_holiday(text: str) -> date | tuple[int, int]:
    """A ``YYYY-MM-DD`` date, or a ``(month, day)`` pair for ``MM-DD`` (every year).

    Raises:
        HoursError: the text is neither form or not a real date.
    """
    usage = f'bad holiday "{text}": use YYYY-MM-DD, or MM-DD for every year'
    match = _DATE.match(text.strip())
    if match is None:
        raise HoursError(usage)
    year, month, day = match.group(1), int(match.group(2)), int(match.group(3))
    try:
        parsed = date(int(year) if year else _LEAP_YEAR, month, day)
    except ValueError:
        raise HoursError(usage) from None
    return parsed if year else (month, day)


def business_hours(
    schedule: Sequence[str], holidays: Sequence[str] = (), *, timezone: str = "UTC"
) -> BusinessHours:
    """Build :class:`BusinessHours` from schedule lines, holiday strings and a zone name.

    Raises:
        HoursError: any part is malformed.
    """
    dated: set[date] = set()
    yearly: set[tuple[int, int]] = set()
    for text in holidays:
        parsed = parse_holiday(text)
        if isinstance(parsed, date):
            dated.add(parsed)
        else:
            yearly.add(parsed)
    return BusinessHours(
        spans=parse_schedule(schedule),
        holidays=frozenset(dated),
        yearly_holidays=frozenset(yearly),
        timezone=load_timezone(timezone),
    )
