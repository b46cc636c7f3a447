"""The emulated user's view of their calendar: friendly event fields in, item summaries out.

What a person sets in Outlook (subject, times in their zone, private, repeat daily...) becomes
the item content the EWS side serves; ``describe`` is what the control API and demo page show.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from typing import Any

from exchangelib.winzone import CLDR_TO_MS_TIMEZONE_MAP

from calendarsync.emulators.exchange_state import (
    MONTH_NAMES,
    WEEKDAY_NAMES,
    Attendee,
    EwsRecurrence,
    ItemData,
    StoredItem,
    data_summary,
    zone_of,
)

SIMPLE_PATTERNS = {
    "daily": "DailyRecurrence",
    "weekly": "WeeklyRecurrence",
    "monthly": "AbsoluteMonthlyRecurrence",
    "yearly": "AbsoluteYearlyRecurrence",
}


def _ms_zone(name: str) -> str:
    """A Windows time zone id for an IANA name (EWS speaks Windows ids); other names pass through."""
    if name in ("UTC", "Etc/UTC"):
        return "UTC"
    mapped = CLDR_TO_MS_TIMEZONE_MAP.get(name)
    return str(mapped[0]) if mapped else name


def meeting_summary(item: StoredItem) -> dict[str, Any]:
    """Who organizes the item (None: the mailbox itself; else it is a copy), the owner's answer
    (MyResponseType) and whether the organizer cancelled it; an occurrence has its series' values."""
    return {
        "organizer": item.organizer or None,
        "is_organizer": not item.is_copy,
        "my_response": item.my_response,
        "is_cancelled": item.is_cancelled,
    }


def describe(item: StoredItem) -> dict[str, Any]:
    return {
        **data_summary(item.data),
        **meeting_summary(item),
        "id": item.id,
        "change_key": item.change_key,
        "uid": item.uid,
        "last_modified": item.modified.isoformat(),
        "deleted_occurrences": sorted(moment.isoformat() for moment in item.deleted_occurrences),
        "modified_occurrences": sorted(moment.isoformat() for moment in item.exceptions),
    }


def _moment(value: Any, zone_name: str, what: str) -> tuple[dt.datetime, bool]:
    """A user-facing start/end: aware datetime, naive datetime (in the zone), date, or ISO text."""
    if isinstance(value, str):
        text = value.strip()
        value = dt.date.fromisoformat(text) if len(text) == 10 else dt.datetime.fromisoformat(text)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone_of(zone_name))
        return value.astimezone(dt.UTC), False
    if isinstance(value, dt.date):
        midnight = dt.datetime(value.year, value.month, value.day, tzinfo=zone_of(zone_name))
        return midnight.astimezone(dt.UTC), True
    raise ValueError(f"{what} must be a date, a datetime or ISO text")


def _recurrence(spec: Mapping[str, Any], first: dt.datetime, zone_name: str) -> EwsRecurrence:
    pattern = SIMPLE_PATTERNS.get(str(spec.get("pattern", "daily")).lower())
    if pattern is None:
        raise ValueError(f"recurrence pattern must be one of {sorted(SIMPLE_PATTERNS)}")
    local = first.astimezone(zone_of(zone_name))
    days = tuple(str(day).capitalize() for day in spec.get("days_of_week") or ())
    if pattern == "WeeklyRecurrence" and not days:
        days = (WEEKDAY_NAMES[local.weekday()],)
    count = spec.get("count")
    until = spec.get("until")
    return EwsRecurrence(
        pattern=pattern,
        interval=int(spec.get("interval", 1)),
        days_of_week=days,
        day_of_month=local.day
        if pattern in ("AbsoluteMonthlyRecurrence", "AbsoluteYearlyRecurrence")
        else None,
        month=MONTH_NAMES[local.month - 1] if pattern == "AbsoluteYearlyRecurrence" else None,
        range_kind="NumberedRecurrence" if count else ("EndDateRecurrence" if until else "NoEndRecurrence"),
        start_date=local.date(),
        end_date=dt.date.fromisoformat(str(until)[:10]) if until else None,
        count=int(count) if count else None,
    )


def item_data(fields: Mapping[str, Any], base: ItemData | None = None) -> ItemData:
    """Friendly fields (what a person sets in Outlook) -> item content; ``base`` gives the rest.

    subject, body, location, start, end (datetimes; dates for all-day, end exclusive),
    time_zone (IANA or Windows name), private (bool) or sensitivity, busy (bool) or
    free_busy, attendees (e-mail strings or {"email", "name", "optional", "response"}),
    recurrence ({"pattern": daily|weekly|monthly|yearly, "interval", "count" or "until",
    "days_of_week"}) or None.
    """
    data = (
        copy.deepcopy(base)
        if base is not None
        else ItemData(start=dt.datetime.now(dt.UTC), end=dt.datetime.now(dt.UTC))
    )
    zone_name = _ms_zone(str(fields.get("time_zone") or (base.start_tz if base else "UTC")))
    if "time_zone" in fields or base is None:
        data.start_tz = data.end_tz = zone_name
    for name in ("subject", "body", "location"):
        if name in fields:
            setattr(data, name, str(fields[name] or ""))
    if "start" in fields or base is None:
        data.start, data.all_day = _moment(fields.get("start"), zone_name, "start")
    if "end" in fields or base is None:
        end, all_day_end = _moment(fields.get("end"), zone_name, "end")
        if all_day_end != data.all_day:
            raise ValueError("start and end must both be dates (all-day) or both be datetimes")
        data.end = end
    if "private" in fields:
        data.sensitivity = "Private" if fields["private"] else "Normal"
    if "sensitivity" in fields:
        data.sensitivity = str(fields["sensitivity"])
    if "busy" in fields:
        data.free_busy = "Busy" if fields["busy"] else "Free"
    if "free_busy" in fields:
        data.free_busy = str(fields["free_busy"])
    if "attendees" in fields:
        data.attendees = [
            Attendee(email=entry)
            if isinstance(entry, str)
            else Attendee(
                email=str(entry["email"]),
                name=str(entry.get("name", "")),
                response=str(entry.get("response", "Unknown")),
                optional=bool(entry.get("optional", False)),
            )
            for entry in fields["attendees"] or ()
        ]
    if "recurrence" in fields:
        spec = fields["recurrence"]
        data.recurrence = None if not spec else _recurrence(spec, data.start, data.start_tz)
    if data.end <= data.start and not (data.end == data.start and not data.all_day):
        raise ValueError("the end must be after the start")
    return data
