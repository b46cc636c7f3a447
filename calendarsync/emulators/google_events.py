"""Events of the emulated Google Calendar: validation, changes, rendering and recurrence instances.

Callers hold `EmulatorState.lock`. Errors are raised as `ApiError` with Google's reasons.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from calendarsync.emulators.google_http import (
    ApiError,
    JsonDict,
    format_datetime,
    format_timestamp,
    not_found,
    parse_timestamp,
)
from calendarsync.emulators.google_rrule import Occurrence, RecurrenceError, expand, parse_recurrence
from calendarsync.emulators.google_state import Calendar, EmulatorState, StoredEvent, now, random_id

ID_PATTERN = re.compile(r"[0-9a-v]{5,1024}")
INSTANCE_ID_PATTERN = re.compile(r"(?P<series>[0-9a-v]{5,1024})_(?P<stamp>\d{8}(?:T\d{6}Z)?)")
VISIBILITIES = ("default", "public", "private", "confidential")
TRANSPARENCIES = ("opaque", "transparent")
STATUSES = ("confirmed", "tentative", "cancelled")
RESPONSE_STATUSES = ("needsAction", "declined", "tentative", "accepted")
STRING_FIELDS = ("summary", "description", "location", "colorId")
BOOLEAN_FIELDS = (
    "guestsCanInviteOthers",
    "guestsCanModify",
    "guestsCanSeeOtherGuests",
    "anyoneCanAddSelf",
    "endTimeUnspecified",
)
ATTENDEE_FIELDS = (
    "email",
    "displayName",
    "optional",
    "resource",
    "responseStatus",
    "comment",
    "additionalGuests",
)
# The order Google writes event fields in; anything else a client sends is ignored.
FIELD_ORDER = (
    "kind",
    "etag",
    "id",
    "status",
    "htmlLink",
    "created",
    "updated",
    "summary",
    "description",
    "location",
    "colorId",
    "creator",
    "organizer",
    "start",
    "end",
    "endTimeUnspecified",
    "recurrence",
    "recurringEventId",
    "originalStartTime",
    "transparency",
    "visibility",
    "iCalUID",
    "sequence",
    "attendees",
    "hangoutLink",
    "conferenceData",
    "guestsCanInviteOthers",
    "guestsCanModify",
    "guestsCanSeeOtherGuests",
    "anyoneCanAddSelf",
    "extendedProperties",
    "reminders",
    "source",
    "eventType",
)
SERVER_FIELDS = (
    "kind",
    "etag",
    "id",
    "htmlLink",
    "created",
    "updated",
    "creator",
    "organizer",
    "iCalUID",
    "eventType",
    # Written only through conferenceDataVersion=1 (google_conference.py), kept by other writes.
    "hangoutLink",
    "conferenceData",
)


@dataclass(frozen=True)
class Timing:
    """An event's span: aware datetimes, or dates for all-day events."""

    start: dt.date
    end: dt.date

    @property
    def all_day(self) -> bool:
        return not isinstance(self.start, dt.datetime)


def as_instant(value: dt.date) -> dt.datetime:
    """Where on the time line a start or end lies (all-day dates at midnight UTC, the calendar's zone)."""
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)


def _zone(name: str, which: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ApiError(400, "invalid", f"Invalid time zone definition for {which} time.") from None


def _clean_event_time(value: Any, which: str, calendar: Calendar, default_zone: str | None) -> JsonDict:
    """Validate an EventDateTime and return the form Google stores and returns."""
    if not isinstance(value, dict) or not (value.get("date") or value.get("dateTime")):
        raise ApiError(400, "required", f"Missing {which} time.")
    if value.get("date") and value.get("dateTime"):
        raise ApiError(400, "invalid", f"Invalid {which} time.")
    if value.get("date"):
        try:
            day = dt.date.fromisoformat(str(value["date"]))
        except ValueError:
            raise ApiError(400, "invalid", f"Invalid {which} time.") from None
        return {"date": day.isoformat()}
    zone_name = value.get("timeZone") or default_zone
    try:
        moment = dt.datetime.fromisoformat(str(value["dateTime"]))
    except ValueError:
        raise ApiError(400, "invalid", f"Invalid {which} time.") from None
    if moment.tzinfo is None:
        if not zone_name:
            raise ApiError(400, "required", f"Missing time zone definition for {which} time.")
        moment = moment.replace(tzinfo=_zone(str(zone_name), which))
    cleaned: JsonDict = {}
    if zone_name:
        moment = moment.astimezone(_zone(str(zone_name), which))
        cleaned["dateTime"] = format_datetime(moment)
        cleaned["timeZone"] = str(zone_name)
    else:
        cleaned["dateTime"] = format_datetime(moment.astimezone(_zone(calendar.time_zone, which)))
    return cleaned


def timing_of(resource: JsonDict) -> Timing:
    return Timing(start=_moment(resource["start"]), end=_moment(resource["end"]))


def _moment(value: JsonDict) -> dt.date:
    if "date" in value:
        return dt.date.fromisoformat(value["date"])
    moment = parse_timestamp(value["dateTime"])
    if value.get("timeZone"):
        moment = moment.astimezone(ZoneInfo(value["timeZone"]))
    return moment


def _clean_attendees(value: Any) -> list[JsonDict]:
    if not isinstance(value, list):
        raise ApiError(400, "invalid", "Invalid attendees value.")
    attendees = []
    for item in value:
        if not isinstance(item, dict) or "@" not in str(item.get("email", "")):
            raise ApiError(400, "invalid", "Invalid attendee email.")
        attendee = {key: item[key] for key in ATTENDEE_FIELDS if item.get(key) is not None}
        attendee.setdefault("responseStatus", "needsAction")
        if attendee["responseStatus"] not in RESPONSE_STATUSES:
            raise ApiError(400, "invalid", "Invalid attendee response status.")
        attendees.append(attendee)
    return attendees


def _clean_extended_properties(value: Any) -> JsonDict:
    if not isinstance(value, dict):
        raise ApiError(400, "invalid", "Invalid extendedProperties value.")
    cleaned: JsonDict = {}
    for scope in ("private", "shared"):
        properties = value.get(scope)
        if properties is None:
            continue
        if not isinstance(properties, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in properties.items()
        ):
            raise ApiError(400, "invalid", f"Invalid extendedProperties.{scope} value.")
        cleaned[scope] = dict(properties)
    return cleaned


def clean_body(body: JsonDict, calendar: Calendar, *, lenient: bool = False) -> JsonDict:
    """The writable fields of an event body, validated; start and end are required.

    `lenient` (events made by the emulated user in Google's own UI) gives recurring events
    without a time zone the calendar's zone, as the UI always does; the API refuses them.
    """
    cleaned: JsonDict = {}
    for name in STRING_FIELDS:
        if body.get(name) is not None:
            if not isinstance(body[name], str):
                raise ApiError(400, "invalid", f"Invalid value for: {name}")
            cleaned[name] = body[name]
    for name in BOOLEAN_FIELDS:
        if body.get(name) is not None:
            cleaned[name] = bool(body[name])
    for name, allowed in (
        ("visibility", VISIBILITIES),
        ("transparency", TRANSPARENCIES),
        ("status", STATUSES),
    ):
        if body.get(name) is not None:
            if body[name] not in allowed:
                raise ApiError(400, "invalid", f"Invalid value for: {name}")
            cleaned[name] = body[name]
    recurrence = body.get("recurrence") or None
    if recurrence is not None:
        if not isinstance(recurrence, list) or not all(isinstance(line, str) for line in recurrence):
            raise ApiError(400, "invalid", "Invalid recurrence rule.")
        try:
            parse_recurrence(recurrence)
        except RecurrenceError:
            raise ApiError(400, "invalid", "Invalid recurrence rule.") from None
        cleaned["recurrence"] = list(recurrence)
    default_zone = calendar.time_zone if (lenient and recurrence) else None
    if recurrence and not lenient:
        for which in ("start", "end"):
            value = body.get(which)
            if isinstance(value, dict) and value.get("dateTime") and not value.get("timeZone"):
                raise ApiError(400, "required", f"Missing time zone definition for {which} time.")
    cleaned["start"] = _clean_event_time(body.get("start"), "start", calendar, default_zone)
    cleaned["end"] = _clean_event_time(body.get("end"), "end", calendar, default_zone)
    timing = timing_of(cleaned)
    if isinstance(timing.start, dt.datetime) != isinstance(timing.end, dt.datetime):
        raise ApiError(400, "invalid", "Start and end times must either both be date or both be dateTime.")
    if as_instant(timing.end) < as_instant(timing.start) or (timing.all_day and timing.end == timing.start):
        raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.")
    if body.get("attendees"):
        cleaned["attendees"] = _clean_attendees(body["attendees"])
    if body.get("extendedProperties"):
        cleaned["extendedProperties"] = _clean_extended_properties(body["extendedProperties"])
    reminders = body.get("reminders")
    if isinstance(reminders, dict):
        cleaned["reminders"] = {"useDefault": bool(reminders.get("useDefault", False))}
        if isinstance(reminders.get("overrides"), list):
            cleaned["reminders"]["overrides"] = [
                {"method": str(o.get("method", "popup")), "minutes": int(o.get("minutes", 10))}
                for o in reminders["overrides"]
                if isinstance(o, dict)
            ]
    if isinstance(body.get("source"), dict):
        cleaned["source"] = {k: str(v) for k, v in body["source"].items() if k in ("title", "url")}
    if isinstance(body.get("sequence"), int):
        cleaned["sequence"] = body["sequence"]
    if isinstance(body.get("iCalUID"), str):
        cleaned["iCalUID"] = body["iCalUID"]
    return cleaned


def ordered(resource: JsonDict) -> JsonDict:
    return {key: resource[key] for key in FIELD_ORDER if key in resource}


def html_link(event_id: str, calendar_id: str) -> str:
    eid = base64.urlsafe_b64encode(f"{event_id} {calendar_id}".encode()).decode().rstrip("=")
    return f"https://www.google.com/calendar/event?eid={eid}"


def _linked_calendar(link: object) -> str | None:
    """The calendar an htmlLink names: its eid is "<event id> <calendar id>", base64url."""
    if not isinstance(link, str) or "eid=" not in link:
        return None
    eid = link.partition("eid=")[2]
    try:
        decoded = base64.urlsafe_b64decode(eid + "=" * (-len(eid) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return decoded.partition(" ")[2] or None


def stamp(state: EmulatorState, stored_or_resource: JsonDict) -> int:
    seq = state.next_seq()
    stored_or_resource["etag"] = state.etag(seq)
    stored_or_resource["updated"] = format_timestamp(now())
    return seq


def insert_event(
    state: EmulatorState, calendar: Calendar, body: JsonDict, *, lenient: bool = False
) -> StoredEvent:
    requested_id = body.get("id")
    if requested_id is not None:
        if not isinstance(requested_id, str) or not ID_PATTERN.fullmatch(requested_id):
            raise ApiError(400, "invalid", "Invalid resource id value.")
        if requested_id in calendar.events:
            raise ApiError(409, "duplicate", "The requested identifier already exists.")
        event_id = requested_id
    else:
        event_id = random_id()
    fields = clean_body(body, calendar, lenient=lenient)
    if fields.get("status") == "cancelled":
        raise ApiError(400, "invalid", "Invalid value for: status")
    created = format_timestamp(now())
    organizer: JsonDict = {"email": calendar.id, "self": True}
    if not calendar.primary:
        organizer["displayName"] = calendar.summary
    resource: JsonDict = {
        "kind": "calendar#event",
        "id": event_id,
        "status": "confirmed",
        "htmlLink": html_link(event_id, calendar.id),
        "created": created,
        "creator": {"email": calendar.owner, "self": True},
        "organizer": organizer,
        "iCalUID": f"{event_id}@google.com",
        "sequence": 0,
        "reminders": {"useDefault": True},
        "eventType": "default",
        **fields,
    }
    seq = stamp(state, resource)
    stored = StoredEvent(resource=ordered(resource), changed_seq=seq)
    calendar.events[event_id] = stored
    return stored


def _live_event(calendar: Calendar, event_id: str) -> StoredEvent:
    stored = calendar.events.get(event_id)
    if stored is None or stored.deleted:
        raise not_found()
    return stored


def check_if_match(resource: JsonDict, if_match: str | None) -> None:
    if if_match is None:
        return
    etags = [tag.strip() for tag in if_match.split(",")]
    if "*" not in etags and resource["etag"] not in etags:
        raise ApiError(412, "conditionNotMet", "Precondition Failed")


def merge_patch(current: JsonDict, patch: JsonDict) -> JsonDict:
    """Google's patch semantics: nested objects merge, arrays and event times are replaced."""
    merged = copy.deepcopy(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict) and key not in ("start", "end"):
            merged[key] = merge_patch(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def update_event(
    state: EmulatorState,
    calendar: Calendar,
    event_id: str,
    body: JsonDict,
    *,
    patch: bool,
    if_match: str | None = None,
    lenient: bool = False,
) -> StoredEvent:
    stored = _live_event(calendar, event_id)
    check_if_match(stored.resource, if_match)
    old = stored.resource
    if patch:
        writable = {key: value for key, value in old.items() if key not in SERVER_FIELDS}
        body = merge_patch(writable, {key: value for key, value in body.items() if key not in SERVER_FIELDS})
    fields = clean_body(body, calendar, lenient=lenient)
    if fields.get("status") == "cancelled":
        delete_event(state, calendar, event_id)
        return stored
    resource = {key: old[key] for key in SERVER_FIELDS if key in old}
    resource.update(fields)
    resource.setdefault("status", "confirmed")
    resource.setdefault("reminders", {"useDefault": True})
    timing_changed = any(old.get(key) != resource.get(key) for key in ("start", "end", "recurrence"))
    resource["sequence"] = max(
        int(fields.get("sequence", 0)), int(old.get("sequence", 0)) + int(timing_changed)
    )
    _retire_instances(state, stored, old, resource)
    stored.changed_seq = stamp(state, resource)
    stored.resource = ordered(resource)
    return stored


def delete_event(
    state: EmulatorState, calendar: Calendar, event_id: str, if_match: str | None = None
) -> None:
    stored = calendar.events.get(event_id)
    if stored is not None and stored.deleted:
        raise ApiError(410, "deleted", "Resource has been deleted")
    stored = _live_event(calendar, event_id)
    check_if_match(stored.resource, if_match)
    stored.resource["status"] = "cancelled"
    stored.changed_seq = stamp(state, stored.resource)
    # Deleting a recurring event deletes all its instances, the changed ones too.
    for exception in stored.exceptions.values():
        if not exception.deleted:
            cancel_stored(state, exception)


def cancel_stored(state: EmulatorState, stored: StoredEvent) -> None:
    """Mark an event (or instance exception) cancelled; its details stay, as on the organizer's calendar."""
    stored.resource["status"] = "cancelled"
    stored.changed_seq = stamp(state, stored.resource)


# -- rendering -------------------------------------------------------------------------------


def cancelled_view(resource: JsonDict) -> JsonDict:
    """What list/sync shows of a deleted event: only id and status are guaranteed, like Google."""
    view = {key: resource[key] for key in ("kind", "etag", "id", "updated") if key in resource}
    view["status"] = "cancelled"
    for key in ("recurringEventId", "originalStartTime"):
        if key in resource:
            view[key] = resource[key]
    return ordered(view)


def render(stored: StoredEvent) -> JsonDict:
    return cancelled_view(stored.resource) if stored.deleted else copy.deepcopy(stored.resource)


def _instance_suffix(occurrence: Occurrence) -> str:
    if isinstance(occurrence.start, dt.datetime):
        return occurrence.start.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return occurrence.start.strftime("%Y%m%d")


def _event_time(value: dt.date, zone_name: str | None) -> JsonDict:
    if isinstance(value, dt.datetime):
        time: JsonDict = {"dateTime": format_datetime(value)}
        if zone_name:
            time["timeZone"] = zone_name
        return time
    return {"date": value.isoformat()}


def occurrences(resource: JsonDict, horizon: dt.datetime | None = None) -> list[Occurrence]:
    timing = timing_of(resource)
    return expand(parse_recurrence(resource["recurrence"]), timing.start, timing.end, horizon)


def instance_view(series: JsonDict, occurrence: Occurrence) -> JsonDict:
    zone_name = series["start"].get("timeZone")
    instance = {key: copy.deepcopy(value) for key, value in series.items() if key != "recurrence"}
    instance["id"] = f"{series['id']}_{_instance_suffix(occurrence)}"
    instance["start"] = _event_time(occurrence.start, zone_name)
    instance["end"] = _event_time(occurrence.end, series["end"].get("timeZone"))
    instance["recurringEventId"] = series["id"]
    instance["originalStartTime"] = _event_time(occurrence.start, zone_name)
    # Each instance opens on its own in the web UI: its link names the instance, not the series.
    calendar_id = _linked_calendar(series.get("htmlLink"))
    if calendar_id is not None:
        instance["htmlLink"] = html_link(instance["id"], calendar_id)
    return ordered(instance)


def instances(stored: StoredEvent, horizon: dt.datetime | None = None) -> list[JsonDict]:
    """The series' instances (cancelled views when the series is deleted)."""
    views = [instance_view(stored.resource, occ) for occ in occurrences(stored.resource, horizon)]
    return [cancelled_view(view) for view in views] if stored.deleted else views


def _retire_instances(state: EmulatorState, stored: StoredEvent, old: JsonDict, new: JsonDict) -> None:
    """Instances the new version of a series lacks are cancelled (reported so by sync).

    A changed instance (exception) survives a change of its series while the series still has
    an instance at its original start; otherwise it is cancelled with the rest, and comes back
    as a plain instance if a later version has that start again. One the user cancelled stays so.
    """
    old_views = {view["id"]: view for view in instances(stored)} if old.get("recurrence") else {}
    new_ids = {view["id"] for view in (instances(StoredEvent(new, 0)) if new.get("recurrence") else [])}
    for instance_id, view in old_views.items():
        if instance_id not in new_ids and instance_id not in stored.exceptions:
            stored.retired_instances[instance_id] = cancelled_view(view)
    for instance_id in new_ids:
        if stored.retired_instances.pop(instance_id, None) is not None:
            stored.exceptions.pop(instance_id, None)
    for instance_id, exception in stored.exceptions.items():
        if instance_id not in new_ids and not exception.deleted:
            cancel_stored(state, exception)
            stored.retired_instances[instance_id] = cancelled_view(exception.resource)
