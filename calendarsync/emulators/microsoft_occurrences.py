"""Occurrences of a recurring series in the emulated Outlook calendar: changing one on its own.

PATCH on an occurrence id makes that occurrence an exception (`type: "exception"`) of its series
(https://learn.microsoft.com/en-us/graph/api/resources/event, `type`); like Exchange, the
series master keeps what each exception overrides, and every other property follows the
series. Outlook refuses to move an occurrence to or before the day of the previous occurrence,
or to or after the day of the next one: 400 ErrorOccurrenceCrossingBoundary
(https://learn.microsoft.com/en-us/graph/api/event-update). A deleted occurrence still counts
as a neighbour there, as Outlook users report.

Callers hold `MicrosoftState.lock`. Errors are raised as `GraphError` with Graph's codes.
"""

from __future__ import annotations

import copy
import datetime as dt

from calendarsync.emulators.google_http import JsonDict
from calendarsync.emulators.google_rrule import Occurrence
from calendarsync.emulators.microsoft_events import (
    Timing,
    check_if_match,
    clean_extended,
    clean_fields,
    format_local,
    instant,
    occurrence_id,
    occurrences_of,
    timing,
    zone,
)
from calendarsync.emulators.microsoft_meetings import MEETING_PROPERTIES, UPDATE, after_occurrence_change
from calendarsync.emulators.microsoft_state import (
    Calendar,
    GraphError,
    MicrosoftState,
    OccurrenceChange,
    StoredEvent,
)

# How far past an occurrence its next one is looked for (yearly series with long intervals aside).
NEIGHBOUR_HORIZON = dt.timedelta(days=3660)
CROSSING_BOUNDARY = "Modified occurrence is crossing or overlapping adjacent occurrence."


def _when(value: dt.date, zone_name: str) -> JsonDict:
    """An occurrence's start or end in the stored DateTimeTimeZone form, in the series' zone."""
    if isinstance(value, dt.datetime):
        local = value.astimezone(zone(zone_name)).replace(tzinfo=None)
    else:
        local = dt.datetime.combine(value, dt.time(0))
    return {"dateTime": format_local(local), "timeZone": zone_name}


def occurrence_view(stored: StoredEvent, occurrence: Occurrence) -> tuple[JsonDict, dict[str, str], bool]:
    """One occurrence's fields and extended properties, and whether it is an exception."""
    fields = copy.deepcopy(stored.fields)
    fields["recurrence"] = None
    fields["start"] = _when(occurrence.start, stored.fields["start"]["timeZone"])
    fields["end"] = _when(occurrence.end, stored.fields["end"]["timeZone"])
    extended = dict(stored.extended)
    change = stored.changed_occurrences.get(occurrence_id(stored.id, occurrence))
    if change is None:
        return fields, extended, False
    fields.update(copy.deepcopy(change.overrides))
    extended.update(change.extended)
    return fields, extended, True


def occurrence_span(stored: StoredEvent, occurrence: Occurrence) -> Timing:
    """Where an occurrence lies now: its own times once it is an exception."""
    fields, _, changed = occurrence_view(stored, occurrence)
    return timing(fields) if changed else Timing(occurrence.start, occurrence.end)


def _day(value: dt.date, zone_name: str) -> dt.date:
    return value.astimezone(zone(zone_name)).date() if isinstance(value, dt.datetime) else value


def _check_boundary(stored: StoredEvent, occurrence: Occurrence, moved: Timing) -> None:
    zone_name = stored.fields["start"]["timeZone"]
    slots = occurrences_of(stored.fields, instant(occurrence.start) + NEIGHBOUR_HORIZON)
    index = next(i for i, slot in enumerate(slots) if slot.start == occurrence.start)
    new_day = _day(moved.start, zone_name)
    if index > 0:
        previous = occurrence_span(stored, slots[index - 1])
        if new_day <= _day(previous.start, zone_name) or instant(moved.start) < instant(previous.end):
            raise GraphError(400, "ErrorOccurrenceCrossingBoundary", CROSSING_BOUNDARY)
    if index + 1 < len(slots):
        following = occurrence_span(stored, slots[index + 1])
        if new_day >= _day(following.start, zone_name) or instant(moved.end) > instant(following.start):
            raise GraphError(400, "ErrorOccurrenceCrossingBoundary", CROSSING_BOUNDARY)


def update_occurrence(
    state: MicrosoftState,
    calendar: Calendar,
    series: StoredEvent,
    occurrence: Occurrence,
    body: JsonDict,
    if_match: str | None = None,
) -> None:
    """PATCH on an occurrence id: the occurrence becomes (or stays) an exception of its series."""
    check_if_match(series, if_match)
    if not calendar.can_edit:
        raise GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
    if body.get("recurrence") is not None:
        # The pattern belongs to the series master; an occurrence has none (emulator's choice of error).
        raise GraphError(400, "ErrorInvalidRequest", "An occurrence of a series cannot have a recurrence.")
    transaction_id = body.get("transactionId")
    if transaction_id is not None and transaction_id != series.transaction_id:
        raise GraphError(
            400, "ErrorInvalidRequest", "transactionId cannot be changed after the event was created."
        )
    current, _, _ = occurrence_view(series, occurrence)
    fields = clean_fields(body, current)
    fields["recurrence"] = None
    _check_boundary(series, occurrence, timing(fields))
    key = occurrence_id(series.id, occurrence)
    change = series.changed_occurrences.get(key) or OccurrenceChange()
    touched = {name for name in body if name in fields and name != "recurrence"}
    for name in touched | set(change.overrides):
        change.overrides[name] = copy.deepcopy(fields[name])
    change.extended = clean_extended(body.get("singleValueExtendedProperties"), change.extended)
    series.changed_occurrences[key] = change
    state.touch(series)
    if any(current.get(name) != fields.get(name) for name in MEETING_PROPERTIES):
        after_occurrence_change(state, calendar, series, UPDATE)
