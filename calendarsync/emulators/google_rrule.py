"""Expansion of the RFC 5545 recurrence rules the emulator supports.

Supported: one RRULE with FREQ=DAILY, WEEKLY (BYDAY, WKST), MONTHLY (on the start's day of month)
or YEARLY, with INTERVAL and COUNT or UNTIL; EXDATE lines. Anything else raises RecurrenceError,
so a rule the emulator would silently mis-expand is refused at insert time instead.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
MAX_INSTANCES = 5000


class RecurrenceError(ValueError):
    pass


@dataclass(frozen=True)
class Rule:
    freq: str
    interval: int = 1
    count: int | None = None
    until: dt.date | None = None  # a date, or an aware datetime
    byday: tuple[int, ...] = ()
    wkst: int = 0


@dataclass(frozen=True)
class Recurrence:
    rule: Rule
    exdates: frozenset[dt.date]  # dates (all-day) and aware datetimes (timed)


@dataclass(frozen=True)
class Occurrence:
    """One instance: aware datetimes for timed events, dates for all-day events."""

    start: dt.date
    end: dt.date


def _parse_value(text: str, tzid: str | None) -> dt.date:
    """A DATE or DATE-TIME value; a DATE-TIME comes back aware (UTC 'Z', TZID, else UTC)."""
    if re.fullmatch(r"\d{8}", text):
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    match = re.fullmatch(r"(\d{8})T(\d{6})(Z?)", text)
    if not match:
        raise RecurrenceError(f"bad date value {text!r}")
    day, time, utc = match.groups()
    try:
        zone: dt.tzinfo = dt.UTC if utc or not tzid else ZoneInfo(tzid)
    except (ZoneInfoNotFoundError, ValueError):
        raise RecurrenceError(f"unknown TZID {tzid!r}") from None
    return dt.datetime(
        int(day[:4]), int(day[4:6]), int(day[6:8]), int(time[:2]), int(time[2:4]), int(time[4:6]), tzinfo=zone
    )


def _parse_rule(text: str) -> Rule:
    parts: dict[str, str] = {}
    for item in text.split(";"):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not value:
            raise RecurrenceError(f"bad rule part {item!r}")
        parts[key.upper()] = value.upper()
    freq = parts.pop("FREQ", "")
    if freq not in FREQUENCIES:
        raise RecurrenceError(f"unsupported FREQ {freq!r}")
    try:
        interval = int(parts.pop("INTERVAL", "1"))
        count = int(parts["COUNT"]) if "COUNT" in parts else None
    except ValueError:
        raise RecurrenceError("INTERVAL and COUNT must be integers") from None
    parts.pop("COUNT", None)
    if interval < 1 or (count is not None and count < 1):
        raise RecurrenceError("INTERVAL and COUNT must be positive")
    until = _parse_value(parts.pop("UNTIL"), None) if "UNTIL" in parts else None
    if count is not None and until is not None:
        raise RecurrenceError("COUNT and UNTIL are exclusive")
    byday: tuple[int, ...] = ()
    if "BYDAY" in parts:
        if freq != "WEEKLY":
            raise RecurrenceError("BYDAY is supported for FREQ=WEEKLY only")
        names = parts.pop("BYDAY").split(",")
        if any(name not in WEEKDAYS for name in names):
            raise RecurrenceError("BYDAY takes plain weekdays (MO..SU) only")
        byday = tuple(sorted({WEEKDAYS.index(name) for name in names}))
    wkst = WEEKDAYS.index(parts.pop("WKST")) if parts.get("WKST") in WEEKDAYS else 0
    parts.pop("WKST", None)
    if parts:
        raise RecurrenceError(f"unsupported rule parts {sorted(parts)}")
    return Rule(freq=freq, interval=interval, count=count, until=until, byday=byday, wkst=wkst)


def _property_name_and_params(name: str) -> tuple[str, dict[str, str]]:
    """'EXDATE;TZID=Europe/Berlin' -> ('EXDATE', {'TZID': 'Europe/Berlin'}).

    RFC 5545 (3.1, 3.2): property and parameter names are case-insensitive, parameter values
    are not (a TZID names a zone exactly); a value may be quoted.
    """
    head, *raw_params = name.split(";")
    params: dict[str, str] = {}
    for raw in raw_params:
        key, sep, value = raw.partition("=")
        if not sep:
            raise RecurrenceError(f"bad property parameter {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        params[key.strip().upper()] = value
    return head.strip().upper(), params


def parse_recurrence(lines: list[str]) -> Recurrence:
    rule: Rule | None = None
    exdates: set[dt.date] = set()
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep:
            raise RecurrenceError(f"bad recurrence line {line!r}")
        head, params = _property_name_and_params(name)
        tzid = params.get("TZID")
        if head == "RRULE":
            if rule is not None:
                raise RecurrenceError("only one RRULE is supported")
            rule = _parse_rule(value)
        elif head == "EXDATE":
            exdates.update(_parse_value(item.strip(), tzid) for item in value.split(",") if item.strip())
        else:
            raise RecurrenceError(f"unsupported recurrence line {head!r}")
    if rule is None:
        raise RecurrenceError("a recurrence needs an RRULE")
    return Recurrence(rule=rule, exdates=frozenset(exdates))


def _add_months(day: dt.date, months: int) -> dt.date | None:
    """The same day of month `months` later, or None where that month lacks the day (RFC 5545)."""
    index = day.year * 12 + day.month - 1 + months
    try:
        return day.replace(year=index // 12, month=index % 12 + 1)
    except ValueError:
        return None


def _candidates(rule: Rule, first: dt.date) -> Iterator[dt.date]:
    """Instance starts in order; `first` is a date or a naive local datetime."""
    if rule.freq == "DAILY":
        for k in itertools.count():
            yield first + dt.timedelta(days=k * rule.interval)
    elif rule.freq == "WEEKLY":
        days = rule.byday or (first.weekday(),)
        offsets = sorted((day - rule.wkst) % 7 for day in days)
        week_start = first - dt.timedelta(days=(first.weekday() - rule.wkst) % 7)
        for week in itertools.count():
            base = week_start + dt.timedelta(weeks=week * rule.interval)
            for offset in offsets:
                candidate = base + dt.timedelta(days=offset)
                if candidate >= first:
                    yield candidate
    else:
        step = 12 if rule.freq == "YEARLY" else 1
        for k in range(12 * 400):
            shifted = _add_months(first, k * rule.interval * step)
            if shifted is not None:
                yield shifted


def expand(
    recurrence: Recurrence,
    start: dt.date,
    end: dt.date,
    horizon: dt.datetime | None = None,
) -> list[Occurrence]:
    """The instances of a series starting at `start` (aware datetime, or date for all-day).

    Stops at COUNT/UNTIL, before `horizon` (instances must start before it; default one
    year after the first instance or after today, whichever is later), and at MAX_INSTANCES.
    """
    rule = recurrence.rule
    timed = isinstance(start, dt.datetime)
    if isinstance(start, dt.datetime) and isinstance(end, dt.datetime):
        zone = start.tzinfo
        first: dt.date = start.replace(tzinfo=None)
        duration = end.replace(tzinfo=None) - start.replace(tzinfo=None)
    else:
        zone = None
        first = start
        duration = end - start

    def aware(value: dt.date) -> dt.datetime:
        if isinstance(value, dt.datetime):
            return value.replace(tzinfo=zone)
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)

    # Without a horizon: a year past the first instance, or past today for a series that began
    # long ago, so an open-ended series always shows its coming instances.
    limit = horizon or max(aware(first), dt.datetime.now(dt.UTC)) + dt.timedelta(days=365)
    until = rule.until
    occurrences: list[Occurrence] = []
    for produced, candidate in enumerate(_candidates(rule, first)):
        if rule.count is not None and produced >= rule.count:
            break
        moment = aware(candidate)
        if until is not None:
            if isinstance(until, dt.datetime):
                if moment > until:
                    break
            elif (candidate.date() if isinstance(candidate, dt.datetime) else candidate) > until:
                break
        if moment >= limit or len(occurrences) >= MAX_INSTANCES:
            break
        excluded = (moment in recurrence.exdates) if timed else (candidate in recurrence.exdates)
        if not excluded:
            occurrences.append(
                Occurrence(start=moment if timed else candidate, end=_end(moment, candidate, duration, zone))
            )
    return occurrences


def _end(moment: dt.datetime, candidate: dt.date, duration: dt.timedelta, zone: dt.tzinfo | None) -> dt.date:
    if isinstance(candidate, dt.datetime):
        # Keep the wall-clock length across DST changes, as calendar apps do.
        return (candidate + duration).replace(tzinfo=zone)
    return candidate + duration
