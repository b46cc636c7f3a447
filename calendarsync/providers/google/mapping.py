"""Google Calendar Event resources <-> our dataclasses (never raw JSON past the adapter).

Event resource: https://developers.google.com/calendar/api/v3/reference/events
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from calendarsync.providers.base import (
    NEEDS_ACTION,
    RESPONSES,
    TAG,
    Attendee,
    EventData,
    InvalidEvent,
    RemoteCalendarInfo,
    RemoteEvent,
    fields_to_write,
)
from calendarsync.providers.web_links import safe_web_url

# Our private tag: the CRM activity id of an event this CRM created.
TAG_PROPERTY = "calsync_activity_id"
EVENT_ID_PREFIX = "cs"
WRITABLE_ROLES = frozenset({"owner", "writer"})
# conferenceData.createRequest.conferenceSolutionKey.type of Google Meet.
MEET_SOLUTION = "hangoutsMeet"


def event_id_for_key(idempotency_key: str) -> str:
    """A Google event id derived from our key: base32hex (a-v, 0-9), same key -> same id."""
    digest = hashlib.sha256(idempotency_key.encode()).digest()
    return EVENT_ID_PREFIX + base64.b32hexencode(digest).decode().rstrip("=").lower()


def video_request_id(seed: str) -> str:
    """A conference create ``requestId`` derived from ``seed``: asking again with the same seed
    names the same request, which Google ignores (no second conference)."""
    return "calsync-" + hashlib.sha256(seed.encode()).hexdigest()[:32]


def conference_request(request_id: str) -> dict[str, Any]:
    """``conferenceData`` asking Google for a Meet conference (sent with conferenceDataVersion=1).

    https://developers.google.com/calendar/api/v3/reference/events (conferenceData.createRequest)
    """
    return {"createRequest": {"requestId": request_id, "conferenceSolutionKey": {"type": MEET_SOLUTION}}}


def rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("Google needs aware datetimes")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_rfc3339(raw: object, what: str) -> datetime:
    if not isinstance(raw, str):
        raise InvalidEvent(f"{what} is missing")
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise InvalidEvent(f"{what} is not a timestamp: {raw[:40]!r}") from exc
    if parsed.tzinfo is None:
        raise InvalidEvent(f"{what} has no time zone")
    return parsed.astimezone(UTC)


def _parse_when(raw: object, what: str) -> datetime | date:
    """An EventDateTime: ``date`` (all-day) or ``dateTime`` (+ ``timeZone``) -> date or aware UTC."""
    if not isinstance(raw, Mapping):
        raise InvalidEvent(f"{what} is missing")
    has_date, has_datetime = raw.get("date") is not None, raw.get("dateTime") is not None
    if has_date == has_datetime:
        raise InvalidEvent(f"{what} needs exactly one of date and dateTime")
    if has_date:
        try:
            return date.fromisoformat(str(raw["date"]))
        except ValueError as exc:
            raise InvalidEvent(f"{what}.date is not a date") from exc
    try:
        moment = datetime.fromisoformat(str(raw["dateTime"]))
    except ValueError as exc:
        raise InvalidEvent(f"{what}.dateTime is not a timestamp") from exc
    if moment.tzinfo is None:
        # A dateTime without offset is local time in the given timeZone (DST-aware).
        zone_name = raw.get("timeZone")
        if not isinstance(zone_name, str):
            raise InvalidEvent(f"{what}.dateTime has neither an offset nor a timeZone")
        try:
            moment = moment.replace(tzinfo=ZoneInfo(zone_name))
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidEvent(f"{what}.timeZone is unknown: {zone_name[:60]!r}") from exc
    return moment.astimezone(UTC)


def _parse_attendees(raw: object) -> tuple[Attendee, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidEvent("attendees is not a list")
    attendees = []
    for entry in raw:
        if not isinstance(entry, Mapping):
            raise InvalidEvent("an attendee is not an object")
        email = entry.get("email")
        if not isinstance(email, str) or not email:
            continue  # Google may hide an attendee's address; nothing to sync for them
        attendees.append(
            Attendee(
                email=email,
                name=str(entry.get("displayName") or ""),
                response=_response(entry.get("responseStatus")),
                optional=bool(entry.get("optional", False)),
                raw=dict(entry),
            )
        )
    return tuple(attendees)


def _response(raw: object) -> str:
    """Google's responseStatus values are the provider-neutral ones; anything else: no answer."""
    return raw if isinstance(raw, str) and raw in RESPONSES else NEEDS_ACTION


def _organizer(raw: Mapping[str, Any], calendar_id: str | None) -> tuple[str | None, bool]:
    """The organizer's address, and whether this calendar organizes the event.

    Google marks the organizer ``self`` in the organizer's own calendar; an event without an
    organizer is this calendar's own.
    """
    organizer = raw.get("organizer")
    if not isinstance(organizer, Mapping):
        return None, True
    email = organizer.get("email")
    address = email if isinstance(email, str) and email else None
    mine = organizer.get("self") is True or (
        address is not None and calendar_id is not None and address.lower() == calendar_id.lower()
    )
    return address, mine


def _my_response(raw: Mapping[str, Any]) -> str | None:
    """This calendar owner's answer: the attendee entry Google marks ``self``."""
    for entry in raw.get("attendees") or ():
        if isinstance(entry, Mapping) and entry.get("self") is True:
            return _response(entry.get("responseStatus"))
    return None


def _conference(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    data = raw.get("conferenceData")
    return data if isinstance(data, Mapping) else {}


def _join_url(raw: Mapping[str, Any]) -> str | None:
    """``hangoutLink`` (Meet), else the conference's video entry point."""
    link = raw.get("hangoutLink")
    if isinstance(link, str) and link:
        return link
    for entry in _conference(raw).get("entryPoints") or ():
        if isinstance(entry, Mapping) and entry.get("entryPointType") == "video":
            uri = entry.get("uri")
            if isinstance(uri, str) and uri:
                return uri
    return None


def _video_call_pending(raw: Mapping[str, Any]) -> bool:
    create = _conference(raw).get("createRequest")
    status = create.get("status") if isinstance(create, Mapping) else None
    return isinstance(status, Mapping) and status.get("statusCode") == "pending"


def _meeting_fields(raw: Mapping[str, Any], calendar_id: str | None) -> dict[str, Any]:
    organizer, mine = _organizer(raw, calendar_id)
    return {
        "organizer": organizer,
        "is_organizer": mine,
        "my_response": None if mine else _my_response(raw),
        "join_url": _join_url(raw),
        "video_call_pending": _video_call_pending(raw),
    }


def _text(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidEvent(f"{key} is not text")
    return value


def _private_tag(raw: Mapping[str, Any]) -> str | None:
    props = raw.get("extendedProperties")
    private = props.get("private") if isinstance(props, Mapping) else None
    tag = private.get(TAG_PROPERTY) if isinstance(private, Mapping) else None
    return tag if isinstance(tag, str) and tag else None


def parse_event(raw: object, calendar_id: str | None = None) -> RemoteEvent:
    """A Google Event resource -> RemoteEvent; raises InvalidEvent if it cannot be understood.

    ``calendar_id``: the calendar the event was read from (tells the organizer's own copy).
    """
    if not isinstance(raw, Mapping):
        raise InvalidEvent("event is not an object")
    event_id = raw.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise InvalidEvent("event has no id")
    series_id = raw.get("recurringEventId")
    common: dict[str, Any] = {
        "external_id": event_id,
        "etag": raw.get("etag") if isinstance(raw.get("etag"), str) else None,
        "is_recurring_instance": isinstance(series_id, str) and bool(series_id),
        "series_id": series_id if isinstance(series_id, str) and series_id else None,
        "ical_uid": raw.get("iCalUID") if isinstance(raw.get("iCalUID"), str) else None,
        "tag": _private_tag(raw),
        # htmlLink: "An absolute link to this event in the Google Calendar Web UI".
        "web_url": safe_web_url(raw.get("htmlLink")),
    }
    if raw.get("status") == "cancelled":
        # Deleted events come back as tombstones that may carry little more than the id.
        updated = None
        with contextlib.suppress(InvalidEvent):
            updated = _parse_rfc3339(raw.get("updated"), "updated")
        return RemoteEvent(
            subject=str(raw.get("summary") or ""), is_cancelled=True, updated=updated, **common
        )

    start = _parse_when(raw.get("start"), "start")
    end = _parse_when(raw.get("end"), "end")
    times: dict[str, Any]
    if isinstance(start, datetime) and isinstance(end, datetime):
        times = {"start": start, "end": end}
    elif not isinstance(start, datetime) and not isinstance(end, datetime):
        times = {"start_date": start, "end_date": end}
    else:
        raise InvalidEvent("start and end mix a date with a dateTime")
    event = RemoteEvent(
        subject=_text(raw, "summary"),
        location=_text(raw, "location"),
        description=_text(raw, "description"),
        attendees=_parse_attendees(raw.get("attendees")),
        busy=raw.get("transparency") != "transparent",
        private=raw.get("visibility") in ("private", "confidential"),
        updated=_parse_rfc3339(raw.get("updated"), "updated"),
        **times,
        **common,
        **_meeting_fields(raw, calendar_id),
    )
    event.validate()
    return event


def _when_body(moment: datetime | date, *, clear_other: bool) -> dict[str, Any]:
    if isinstance(moment, datetime):
        body: dict[str, Any] = {"dateTime": moment.isoformat()}
        if isinstance(moment.tzinfo, ZoneInfo):
            body["timeZone"] = moment.tzinfo.key  # shown to the user in their own zone
        elif clear_other:
            body["timeZone"] = None
        if clear_other:
            body["date"] = None
        return body
    body = {"date": moment.isoformat()}
    if clear_other:
        body.update({"dateTime": None, "timeZone": None})
    return body


def _attendee_body(attendee: Attendee) -> dict[str, Any]:
    if isinstance(attendee.raw, Mapping):
        # Kept as Google gave it: answer, comment, organizer and self flags stay (R11).
        return dict(attendee.raw)
    return {
        "email": attendee.email,
        **({"displayName": attendee.name} if attendee.name else {}),
        "optional": attendee.optional,
    }


def event_body(
    event: EventData, *, for_patch: bool = False, fields: Collection[str] | None = None
) -> dict[str, Any]:
    """EventData -> Google Event resource fields we own, or only ``fields`` of them (a PATCH
    sends only what changed, and clears the other time form when it sends the time)."""
    event.validate()
    wanted = fields_to_write(fields)
    if event.start is not None and event.end is not None:
        start: datetime | date = event.start
        end: datetime | date = event.end
    elif event.start_date is not None and event.end_date is not None:
        start, end = event.start_date, event.end_date
    else:  # unreachable after validate(); keeps the types honest
        raise InvalidEvent("an event needs a start and an end")
    body: dict[str, Any] = {}
    if "subject" in wanted:
        body["summary"] = event.subject
    if "location" in wanted:
        body["location"] = event.location
    if "description" in wanted:
        body["description"] = event.description
    if "time" in wanted:
        body["start"] = _when_body(start, clear_other=for_patch)
        body["end"] = _when_body(end, clear_other=for_patch)
    if "attendees" in wanted:
        body["attendees"] = [_attendee_body(a) for a in event.attendees]
    if "private" in wanted:
        body["visibility"] = "private" if event.private else "default"
    if "busy" in wanted:
        body["transparency"] = "opaque" if event.busy else "transparent"
    if TAG in wanted and event.tag is not None:
        body["extendedProperties"] = {"private": {TAG_PROPERTY: event.tag}}
    return body


def parse_calendar(raw: object) -> RemoteCalendarInfo:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str):
        raise InvalidEvent("calendar list entry has no id")
    return RemoteCalendarInfo(
        external_id=raw["id"],
        name=str(raw.get("summaryOverride") or raw.get("summary") or raw["id"]),
        is_primary=bool(raw.get("primary", False)),
        can_write=raw.get("accessRole") in WRITABLE_ROLES,
    )
