"""Events of the emulated Outlook calendar: validation, storage form, changes, recurrence occurrences.

Graph's event resource: https://learn.microsoft.com/en-us/graph/api/resources/event
Callers hold `MicrosoftState.lock`. Errors are raised as `GraphError` with Graph's codes.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from calendarsync.emulators.google_http import JsonDict
from calendarsync.emulators.google_rrule import (
    WEEKDAYS,
    Occurrence,
    Recurrence,
    RecurrenceError,
    Rule,
    expand,
)
from calendarsync.emulators.microsoft_meetings import (
    CANCELLATION,
    after_create,
    after_delete,
    after_occurrence_change,
    after_update,
    clean_online_meeting,
)
from calendarsync.emulators.microsoft_state import (
    Calendar,
    GraphError,
    MicrosoftState,
    StoredEvent,
    item_not_found,
    new_event_id,
    now,
)

SENSITIVITIES = ("normal", "personal", "private", "confidential")
SHOW_AS = ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown")
IMPORTANCES = ("low", "normal", "high")
ATTENDEE_TYPES = ("required", "optional", "resource")
DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
PATTERN_FREQUENCIES = {
    "daily": "DAILY",
    "weekly": "WEEKLY",
    "absoluteMonthly": "MONTHLY",
    "absoluteYearly": "YEARLY",
}
RANGE_TYPES = ("endDate", "noEnd", "numbered")
NO_DATE = "0001-01-01"
# Windows zone names Outlook uses, mapped to IANA (Graph accepts both kinds).
WINDOWS_ZONES = {
    "UTC": "UTC",
    "GMT Standard Time": "Europe/London",
    "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris",
    "Central Europe Standard Time": "Europe/Budapest",
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "Pacific Standard Time": "America/Los_Angeles",
    "Tokyo Standard Time": "Asia/Tokyo",
}
OCCURRENCE_ID = re.compile(r"(?P<series>.+)_(?P<stamp>\d{8}(?:T\d{6}Z)?)")
EXTENDED_PROPERTY_ID = re.compile(
    r"(String|Integer|Boolean|SystemTime|Double|Binary) (\{[0-9a-fA-F-]{36}\} (Name|Id) \S.*|0x[0-9a-fA-F]{1,4})"
)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(WINDOWS_ZONES.get(name, name))
    except (ZoneInfoNotFoundError, ValueError):
        raise GraphError(
            400,
            "TimeZoneNotSupportedException",
            f"A valid TimeZone value must be specified. The following TimeZone value is not supported: '{name}'.",
        ) from None


def format_local(moment: dt.datetime) -> str:
    """A DateTimeTimeZone.dateTime: local wall time with seven fractional digits, no offset."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0"


def _invalid(message: str, code: str = "ErrorInvalidRequest") -> GraphError:
    return GraphError(400, code, message)


def _enum(value: Any, allowed: tuple[str, ...], type_name: str) -> str:
    if value not in allowed:
        raise _invalid(
            f"Cannot convert the literal '{value}' to the expected type 'microsoft.graph.{type_name}'.",
            "RequestBodyRead",
        )
    return str(value)


def _clean_when(value: Any, which: str) -> JsonDict:
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        raise _invalid(f"The {which} time of the event is missing or invalid.")
    try:
        moment = dt.datetime.fromisoformat(value["dateTime"])
    except ValueError:
        raise _invalid(f"The {which} dateTime '{value['dateTime']}' is not a valid date and time.") from None
    if moment.tzinfo is not None:
        # DateTimeTimeZone.dateTime is local time in timeZone; an offset would be ambiguous.
        raise _invalid(f"The {which} dateTime must not carry an offset; give the zone in timeZone.")
    zone_name = value.get("timeZone") or "UTC"
    if not isinstance(zone_name, str):
        raise _invalid(f"The {which} timeZone is invalid.")
    zone(zone_name)
    return {"dateTime": format_local(moment), "timeZone": zone_name}


def _clean_attendees(value: Any, current: list[JsonDict]) -> list[JsonDict]:
    """The attendees written; those already invited keep their response (it is not writable)."""
    if not isinstance(value, list):
        raise _invalid("attendees must be a collection.", "RequestBodyRead")
    responses = {str(a["emailAddress"]["address"]).lower(): a["status"] for a in current}
    cleaned = []
    for item in value:
        address = item.get("emailAddress") if isinstance(item, dict) else None
        if not isinstance(address, dict) or "@" not in str(address.get("address") or ""):
            raise _invalid("An attendee has no valid emailAddress.address.", "ErrorInvalidRecipients")
        cleaned.append(
            {
                "type": _enum(item.get("type") or "required", ATTENDEE_TYPES, "attendeeType"),
                "status": copy.deepcopy(
                    responses.get(
                        str(address["address"]).lower(), {"response": "none", "time": "0001-01-01T00:00:00Z"}
                    )
                ),
                "emailAddress": {
                    "name": str(address.get("name") or address["address"]),
                    "address": address["address"],
                },
            }
        )
    return cleaned


def _clean_location(value: Any) -> JsonDict:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise _invalid("location must be an object.", "RequestBodyRead")
    name = str(value.get("displayName") or "")
    return {"displayName": name, "locationType": "default", "uniqueIdType": "private" if name else "unknown"}


def _clean_body_content(value: Any) -> JsonDict:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise _invalid("body must be an object.", "RequestBodyRead")
    content_type = str(value.get("contentType") or "text").lower()
    if content_type not in ("text", "html"):
        raise _invalid(
            f"Cannot convert the literal '{content_type}' to the expected type 'microsoft.graph.bodyType'.",
            "RequestBodyRead",
        )
    return {"contentType": content_type, "content": str(value.get("content") or "")}


def _clean_recurrence(value: Any) -> JsonDict | None:
    if value is None:
        return None
    pattern, span = (value.get("pattern"), value.get("range")) if isinstance(value, dict) else (None, None)
    if not isinstance(pattern, dict) or not isinstance(span, dict):
        raise _invalid("A recurrence needs a pattern and a range.")
    kind = pattern.get("type")
    if kind not in PATTERN_FREQUENCIES:
        raise _invalid(
            f"The emulator supports recurrence patterns {sorted(PATTERN_FREQUENCIES)}, not {kind!r}."
        )
    interval = pattern.get("interval", 1)
    if not isinstance(interval, int) or interval < 1:
        raise _invalid("The recurrence interval must be a positive integer.")
    days = pattern.get("daysOfWeek") or []
    if not isinstance(days, list) or any(day not in DAY_NAMES for day in days):
        raise _invalid("daysOfWeek holds day names such as 'monday'.")
    if kind == "weekly" and not days:
        raise _invalid("A weekly pattern needs daysOfWeek.")
    first_day = pattern.get("firstDayOfWeek") or "sunday"
    if first_day not in DAY_NAMES:
        raise _invalid("firstDayOfWeek is a day name such as 'sunday'.")
    range_type = span.get("type")
    if range_type not in RANGE_TYPES:
        raise _invalid(f"The recurrence range type must be one of {list(RANGE_TYPES)}.")
    try:
        start_date = dt.date.fromisoformat(str(span.get("startDate")))
        end_date = dt.date.fromisoformat(str(span.get("endDate"))) if range_type == "endDate" else None
    except ValueError:
        raise _invalid("The recurrence range needs ISO dates (startDate, endDate).") from None
    count = span.get("numberOfOccurrences", 0)
    if range_type == "numbered" and (not isinstance(count, int) or count < 1):
        raise _invalid("A numbered range needs numberOfOccurrences of at least 1.")
    return {
        "pattern": {
            "type": kind,
            "interval": interval,
            "month": int(pattern.get("month") or 0),
            "dayOfMonth": int(pattern.get("dayOfMonth") or 0),
            "daysOfWeek": list(days),
            "firstDayOfWeek": first_day,
            "index": "first",
        },
        "range": {
            "type": range_type,
            "startDate": start_date.isoformat(),
            "endDate": end_date.isoformat() if end_date else NO_DATE,
            "recurrenceTimeZone": str(span.get("recurrenceTimeZone") or "UTC"),
            "numberOfOccurrences": count if range_type == "numbered" else 0,
        },
    }


_DEFAULTS: JsonDict = {
    "subject": "",
    "body": {"contentType": "html", "content": ""},
    "isAllDay": False,
    "sensitivity": "normal",
    "showAs": "busy",
    "importance": "normal",
    "categories": [],
    "isReminderOn": True,
    "reminderMinutesBeforeStart": 15,
    "attendees": [],
    "location": _clean_location(None),
    "recurrence": None,
    "isOnlineMeeting": False,
    "onlineMeetingProvider": "unknown",
}


def clean_fields(body: JsonDict, existing: JsonDict | None = None) -> JsonDict:
    """The stored writable fields after a create (``existing`` None) or a PATCH of ``existing``."""
    fields = copy.deepcopy(existing) if existing is not None else copy.deepcopy(_DEFAULTS)
    if existing is None and ("start" not in body or "end" not in body):
        raise _invalid("An event needs a start and an end.")
    if "subject" in body:
        if not isinstance(body["subject"], str | None):
            raise _invalid("subject must be a string.", "RequestBodyRead")
        fields["subject"] = body["subject"] or ""
    if "body" in body:
        fields["body"] = _clean_body_content(body["body"])
    for which in ("start", "end"):
        if which in body:
            fields[which] = _clean_when(body[which], which)
    if "isAllDay" in body:
        fields["isAllDay"] = bool(body["isAllDay"])
    if "sensitivity" in body:
        fields["sensitivity"] = _enum(body["sensitivity"], SENSITIVITIES, "sensitivity")
    if "showAs" in body:
        fields["showAs"] = _enum(body["showAs"], SHOW_AS, "freeBusyStatus")
    if "importance" in body:
        fields["importance"] = _enum(body["importance"], IMPORTANCES, "importance")
    if "attendees" in body:
        fields["attendees"] = _clean_attendees(body["attendees"] or [], fields["attendees"])
    if "location" in body:
        fields["location"] = _clean_location(body["location"])
    if "categories" in body:
        fields["categories"] = [str(c) for c in body["categories"] or []]
    if "isReminderOn" in body:
        fields["isReminderOn"] = bool(body["isReminderOn"])
    if "reminderMinutesBeforeStart" in body and isinstance(body["reminderMinutesBeforeStart"], int):
        fields["reminderMinutesBeforeStart"] = body["reminderMinutesBeforeStart"]
    if "recurrence" in body:
        fields["recurrence"] = _clean_recurrence(body["recurrence"])
    clean_online_meeting(body, fields)
    _check_timing(fields)
    return fields


@dataclass(frozen=True)
class Timing:
    """An event's span: aware datetimes (in the event's zone), or dates for all-day events."""

    start: dt.date
    end: dt.date


def _local(value: JsonDict) -> dt.datetime:
    return dt.datetime.fromisoformat(value["dateTime"]).replace(tzinfo=zone(value["timeZone"]))


def timing(fields: JsonDict) -> Timing:
    start, end = _local(fields["start"]), _local(fields["end"])
    if fields.get("isAllDay"):
        return Timing(start.date(), end.date())
    return Timing(start, end)


def _check_timing(fields: JsonDict) -> None:
    start, end = _local(fields["start"]), _local(fields["end"])
    if fields["isAllDay"]:
        if start.time() != dt.time(0) or end.time() != dt.time(0) or end.date() <= start.date():
            raise _invalid(
                "Your request can't be completed. If an event is all-day, start and end must be at "
                "midnight and the event must last whole days.",
                "ErrorPropertyValidationFailure",
            )
    elif end < start:
        raise _invalid("The end of the event is before its start.", "ErrorPropertyValidationFailure")
    recurrence = fields.get("recurrence")
    if recurrence is not None:
        pattern = recurrence["pattern"]
        if pattern["type"] in ("absoluteMonthly", "absoluteYearly") and pattern["dayOfMonth"] not in (
            0,
            start.day,
        ):
            raise _invalid("The emulator repeats monthly and yearly events on their start's day only.")
        try:
            occurrences_of(fields, None, limit=1)
        except RecurrenceError as error:
            raise _invalid(f"Invalid recurrence: {error}") from None


def clean_extended(value: Any, current: dict[str, str] | None = None) -> dict[str, str]:
    """singleValueExtendedProperties of a create or PATCH: upserted by id."""
    merged = dict(current or {})
    if value is None:
        return merged
    if not isinstance(value, list):
        raise _invalid("singleValueExtendedProperties must be a collection.", "RequestBodyRead")
    for item in value:
        prop_id = item.get("id") if isinstance(item, dict) else None
        if not isinstance(prop_id, str) or not EXTENDED_PROPERTY_ID.fullmatch(prop_id):
            raise _invalid(f"The extended property id {prop_id!r} is not valid.", "ErrorInvalidProperty")
        stored_id = next((key for key in merged if key.lower() == prop_id.lower()), prop_id)
        if item.get("value") is None:
            merged.pop(stored_id, None)
        else:
            merged[stored_id] = str(item["value"])
    return merged


# -- recurrence ------------------------------------------------------------------------------


def occurrences_of(
    fields: JsonDict, horizon: dt.datetime | None, limit: int | None = None
) -> list[Occurrence]:
    recurrence = fields["recurrence"]
    pattern, span = recurrence["pattern"], recurrence["range"]
    rule = Rule(
        freq=PATTERN_FREQUENCIES[pattern["type"]],
        interval=pattern["interval"],
        count=span["numberOfOccurrences"] if span["type"] == "numbered" else None,
        until=dt.date.fromisoformat(span["endDate"]) if span["type"] == "endDate" else None,
        byday=tuple(sorted(WEEKDAYS.index(day[:2].upper()) for day in pattern["daysOfWeek"]))
        if pattern["type"] == "weekly"
        else (),
        wkst=WEEKDAYS.index(pattern["firstDayOfWeek"][:2].upper()),
    )
    span_of = timing(fields)
    found = expand(Recurrence(rule=rule, exdates=frozenset()), span_of.start, span_of.end, horizon)
    return found[:limit] if limit is not None else found


def _stamp(start: dt.date) -> str:
    if isinstance(start, dt.datetime):
        return start.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return start.strftime("%Y%m%d")


def occurrence_id(series_id: str, occurrence: Occurrence) -> str:
    return f"{series_id}_{_stamp(occurrence.start)}"


# -- storing -----------------------------------------------------------------------------------


def insert_event(
    state: MicrosoftState, calendar: Calendar, body: JsonDict, *, allow_transaction: bool = True
) -> tuple[StoredEvent, bool]:
    """Create an event; returns it and whether it is new (False: a repeat of a transactionId)."""
    if not calendar.can_edit:
        raise GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
    fields = clean_fields(body)
    extended = clean_extended(body.get("singleValueExtendedProperties"))
    transaction_id = body.get("transactionId") if allow_transaction else None
    if transaction_id is not None:
        if not isinstance(transaction_id, str) or not transaction_id:
            raise _invalid("transactionId must be a non-empty string.", "RequestBodyRead")
        repeat = _repeated_transaction(state, calendar, transaction_id, fields, extended)
        if repeat is not None:
            return repeat, False
    moment = now()
    stored = StoredEvent(
        id=new_event_id(),
        calendar_id=calendar.id,
        fields=fields,
        created=moment,
        modified=moment,
        seq=state.next_seq(),
        extended=extended,
        transaction_id=transaction_id,
    )
    stored.ical_uid = "040000008200E00074C5B7101A82E008" + stored.change_key.encode().hex()[:40].upper()
    calendar.events[stored.id] = stored
    if transaction_id is not None:
        state.transactions[(calendar.owner, transaction_id)] = (calendar.id, stored.id)
    after_create(state, calendar, stored)
    return stored, True


def _repeated_transaction(
    state: MicrosoftState, calendar: Calendar, transaction_id: str, fields: JsonDict, extended: dict[str, str]
) -> StoredEvent | None:
    """A create repeating a used transactionId: the same event again, or ErrorDuplicateTransactionId.

    Graph answers a retried create (same transactionId, same event) with the event it made the
    first time, and refuses the id for a different event. The emulator also refuses it once that
    event was deleted (Exchange keeps deleted items recoverable); that part is an assumption.
    """
    known = state.transactions.get((calendar.owner, transaction_id))
    if known is None:
        return None
    calendar_id, event_id = known
    stored = state.calendar(calendar.owner, calendar_id).events[event_id]
    if (
        not stored.deleted
        and calendar_id == calendar.id
        and _without_responses(stored.fields) == _without_responses(fields)
        and stored.extended == extended
    ):
        return stored
    raise GraphError(
        400,
        "ErrorDuplicateTransactionId",
        "Your request can't be completed. The TransactionId specified in the request has already "
        "been used to create a different event.",
    )


def _without_responses(fields: JsonDict) -> JsonDict:
    """The fields as written (attendees' responses come later and are not part of a create)."""
    attendees = [{k: v for k, v in a.items() if k != "status"} for a in fields["attendees"]]
    return {**fields, "attendees": attendees}


def live_event(calendar: Calendar, event_id: str) -> StoredEvent:
    stored = calendar.events.get(event_id)
    if stored is None or stored.deleted:
        raise item_not_found()
    return stored


def check_if_match(stored: StoredEvent, if_match: str | None) -> None:
    if if_match is None:
        return
    wanted = [tag.strip() for tag in if_match.split(",")]
    if "*" not in wanted and stored.etag not in wanted and f'"{stored.change_key}"' not in wanted:
        raise GraphError(
            412,
            "ErrorIrresolvableConflict",
            "The send or update operation could not be performed because the change key passed in "
            "the request does not match the current change key for the item.",
        )


def update_event(
    state: MicrosoftState,
    calendar: Calendar,
    stored: StoredEvent,
    body: JsonDict,
    if_match: str | None = None,
) -> StoredEvent:
    check_if_match(stored, if_match)
    if not calendar.can_edit:
        raise GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
    transaction_id = body.get("transactionId")
    if transaction_id is not None and transaction_id != stored.transaction_id:
        raise _invalid("transactionId cannot be changed after the event was created.")
    if stored.is_copy:
        # Read-only on an attendee's copy (EWS documents IsOnlineMeeting so): silently kept.
        body = {k: v for k, v in body.items() if k not in ("isOnlineMeeting", "onlineMeetingProvider")}
    before = stored.fields
    fields = clean_fields(body, stored.fields)
    extended = clean_extended(body.get("singleValueExtendedProperties"), stored.extended)
    stored.fields, stored.extended = fields, extended
    if fields["recurrence"] is None:
        # No longer a series: its occurrences' own changes and cancellations go with it.
        stored.changed_occurrences.clear()
        stored.cancelled_occurrences.clear()
    state.touch(stored)
    after_update(state, calendar, stored, before)
    return stored


def delete_event(
    state: MicrosoftState, calendar: Calendar, stored: StoredEvent, if_match: str | None = None
) -> None:
    """Delete; a meeting the mailbox organizes is cancelled for its attendees."""
    check_if_match(stored, if_match)
    stored.deleted = True
    state.touch(stored)
    after_delete(state, calendar, stored)


def delete_occurrence(
    state: MicrosoftState, calendar: Calendar, series: StoredEvent, occurrence: str
) -> None:
    series.cancelled_occurrences.add(occurrence)
    series.changed_occurrences.pop(occurrence, None)
    state.touch(series)
    after_occurrence_change(state, calendar, series, CANCELLATION)


def instant(value: dt.date) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.combine(value, dt.time(0), tzinfo=dt.UTC)


def find_occurrence(calendar: Calendar, item_id: str) -> tuple[StoredEvent, Occurrence] | None:
    match = OCCURRENCE_ID.fullmatch(item_id)
    series = calendar.events.get(match["series"]) if match else None
    if match is None or series is None or series.deleted or not series.recurring:
        return None
    if item_id in series.cancelled_occurrences:
        return None
    day = dt.datetime.strptime(match["stamp"][:8], "%Y%m%d").replace(tzinfo=dt.UTC)
    for occurrence in occurrences_of(series.fields, day + dt.timedelta(days=2)):
        if occurrence_id(series.id, occurrence) == item_id:
            return series, occurrence
    return None


def sort_key(stored: StoredEvent) -> tuple[dt.datetime, str]:
    return instant(timing(stored.fields).start), stored.id
