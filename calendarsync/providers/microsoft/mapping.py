"""Microsoft Graph event resources <-> our dataclasses (never raw JSON past the adapter).

Event resource: https://learn.microsoft.com/en-us/graph/api/resources/event
DateTimeTimeZone: https://learn.microsoft.com/en-us/graph/api/resources/datetimetimezone
"""

from __future__ import annotations

import base64
import html
import re
import uuid
from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from calendarsync.providers.base import (
    ACCEPTED,
    DECLINED,
    NEEDS_ACTION,
    TAG,
    TENTATIVE,
    VIDEO_CALL,
    Attendee,
    EventData,
    InvalidEvent,
    RemoteCalendarInfo,
    RemoteEvent,
    fields_to_write,
)
from calendarsync.providers.base import same_content as base_same_content
from calendarsync.providers.web_links import safe_web_url

# Our tag on events this CRM created (the activity), as a named single-value extended property.
# https://learn.microsoft.com/en-us/graph/api/resources/extended-properties-overview
TAG_PROPERTY_ID = "String {c32b2878-66be-47e8-959e-c5c19f266353} Name calsync_activity_id"
# transactionId values are derived from our idempotency keys in this namespace.
_TRANSACTION_NAMESPACE = uuid.UUID("4d1f2f4e-8a63-4f0e-9b8e-3c2f6f5a7d10")
# A transactionId that also carries our tag: "calsync1.<tag, base64url>.<uuid of the key>".
_TRANSACTION_PREFIX = "calsync1."
# Windows zone names Outlook may report, mapped to IANA; Graph answers in UTC unless asked otherwise.
WINDOWS_ZONES = {
    "UTC": "UTC",
    "GMT Standard Time": "Europe/London",
    "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris",
    "Central Europe Standard Time": "Europe/Budapest",
    "Central European Standard Time": "Europe/Warsaw",
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver",
    "Pacific Standard Time": "America/Los_Angeles",
    "Tokyo Standard Time": "Asia/Tokyo",
}
RECURRING_TYPES = frozenset({"occurrence", "exception"})
PRIVATE_SENSITIVITIES = frozenset({"private", "confidential"})
# Graph's responseType -> ours; "none" and "notResponded" (no answer yet) are NEEDS_ACTION.
# https://learn.microsoft.com/en-us/graph/api/resources/responsestatus
_RESPONSES = {
    "accepted": ACCEPTED,
    "organizer": ACCEPTED,
    "declined": DECLINED,
    "tentativelyAccepted": TENTATIVE,
}
# A video call is a Teams meeting ("teamsForBusiness", the provider Microsoft 365 calendars allow).
# https://learn.microsoft.com/en-us/graph/outlook-calendar-online-meetings
TEAMS_PROVIDER = "teamsForBusiness"


def transaction_id_for(idempotency_key: str, tag: str | None) -> str:
    """The transactionId of a create: the same key gives the same id (a retried POST makes no copy).

    It carries our tag as well: delta answers hold no extended properties (``$expand`` is refused
    there) but do hold the transactionId, which Graph keeps unchanged for the event's life. So
    the engine sees its own events in a listing without one more request per event.
    """
    key_id = str(uuid.uuid5(_TRANSACTION_NAMESPACE, idempotency_key))
    if tag is None:
        return key_id
    encoded = base64.urlsafe_b64encode(tag.encode()).decode().rstrip("=")
    return f"{_TRANSACTION_PREFIX}{encoded}.{key_id}"


def _tag_in_transaction_id(raw: object) -> str | None:
    if not isinstance(raw, str) or not raw.startswith(_TRANSACTION_PREFIX):
        return None
    encoded, _, _key_id = raw[len(_TRANSACTION_PREFIX) :].partition(".")
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode() or None
    except (ValueError, UnicodeDecodeError):
        return None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(WINDOWS_ZONES.get(name, name))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidEvent(f"unknown time zone {name[:60]!r}") from exc


def graph_when(moment: datetime) -> dict[str, str]:
    """An aware datetime as a DateTimeTimeZone: local wall time in its IANA zone, else in UTC."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidEvent("Graph needs aware datetimes")
    if isinstance(moment.tzinfo, ZoneInfo):
        zone_name = moment.tzinfo.key  # shown to the user in their own zone
    else:
        moment, zone_name = moment.astimezone(UTC), "UTC"
    return {"dateTime": moment.replace(tzinfo=None).isoformat(timespec="seconds"), "timeZone": zone_name}


def _all_day_when(day: date) -> dict[str, str]:
    # All-day events are midnight to midnight; Graph wants them in one zone, and they float anyway.
    return {"dateTime": datetime.combine(day, time(0)).isoformat(timespec="seconds"), "timeZone": "UTC"}


# What of an attendee Graph takes back in a PATCH, as it gave it (name, type, response).
_ATTENDEE_KEYS = ("emailAddress", "type", "status")


def _attendee_body(attendee: Attendee) -> dict[str, Any]:
    if isinstance(attendee.raw, Mapping):
        # Kept as Graph gave it: display name, type and response stay (R11).
        return {key: attendee.raw[key] for key in _ATTENDEE_KEYS if key in attendee.raw}
    return {
        "emailAddress": {"address": attendee.email, **({"name": attendee.name} if attendee.name else {})},
        "type": "optional" if attendee.optional else "required",
    }


def event_body(event: EventData, fields: Collection[str] | None = None) -> dict[str, Any]:
    """EventData -> the Graph event properties we own, or only ``fields`` of them (a PATCH sends
    only what changed: https://learn.microsoft.com/en-us/graph/api/event-update)."""
    event.validate()
    wanted = fields_to_write(fields)
    body: dict[str, Any] = {}
    if "subject" in wanted:
        body["subject"] = event.subject
    if "description" in wanted:
        body["body"] = {"contentType": "text", "content": event.description}
    if "location" in wanted:
        body["location"] = {"displayName": event.location}
    if "attendees" in wanted:
        body["attendees"] = [_attendee_body(a) for a in event.attendees]
    if "private" in wanted:
        body["sensitivity"] = "private" if event.private else "normal"
    if "busy" in wanted:
        body["showAs"] = "busy" if event.busy else "free"
    if "time" in wanted:
        if event.start is not None and event.end is not None:
            body.update(isAllDay=False, start=graph_when(event.start), end=graph_when(event.end))
        elif event.start_date is not None and event.end_date is not None:
            body.update(
                isAllDay=True, start=_all_day_when(event.start_date), end=_all_day_when(event.end_date)
            )
    if TAG in wanted and event.tag is not None:
        body["singleValueExtendedProperties"] = [{"id": TAG_PROPERTY_ID, "value": event.tag}]
    if VIDEO_CALL in wanted and event.video_call:
        # Once set, Graph keeps the meeting online whatever later writes say: never sent as false.
        body.update(isOnlineMeeting=True, onlineMeetingProvider=TEAMS_PROVIDER)
    return body


def _parse_instant(raw: object, what: str) -> datetime:
    if not isinstance(raw, str):
        raise InvalidEvent(f"{what} is missing")
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise InvalidEvent(f"{what} is not a timestamp: {raw[:40]!r}") from exc
    return (parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _local(raw: object, what: str) -> datetime:
    """A DateTimeTimeZone -> aware datetime (dateTime is wall time in timeZone, DST-aware)."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("dateTime"), str):
        raise InvalidEvent(f"{what} is missing")
    try:
        moment = datetime.fromisoformat(raw["dateTime"])
    except ValueError as exc:
        raise InvalidEvent(f"{what}.dateTime is not a timestamp") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_zone(str(raw.get("timeZone") or "UTC")))
    return moment


def _text(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidEvent(f"{key} is not text")
    return value


def plain_text(markup: str) -> str:
    """Text of an HTML body (we ask Graph for text; this is the fallback if HTML comes anyway)."""
    markup = re.sub(r"(?is)<(head|style|script)\b.*?</\1>", "", markup)
    markup = re.sub(r"(?i)<br\s*/?>", "\n", markup)
    markup = re.sub(r"(?i)</(p|div)>", "\n", markup)
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def _description(raw: Mapping[str, Any]) -> str:
    body = raw.get("body")
    if not isinstance(body, Mapping):
        return ""
    content = body.get("content")
    if not isinstance(content, str):
        return ""
    if str(body.get("contentType") or "").lower() == "html":
        content = plain_text(content).strip()
    # Outlook ends text bodies with line breaks of its own; they are not the user's.
    return content.replace("\r\n", "\n").rstrip("\n")


def _attendees(raw: object) -> tuple[Attendee, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidEvent("attendees is not a list")
    attendees = []
    for entry in raw:
        address = entry.get("emailAddress") if isinstance(entry, Mapping) else None
        if not isinstance(address, Mapping):
            continue
        email = address.get("address")
        if not isinstance(email, str) or "@" not in email:
            continue  # rooms and groups without an address: nothing to sync for them
        status = entry.get("status")
        response = status.get("response") if isinstance(status, Mapping) else None
        name = address.get("name")
        attendees.append(
            Attendee(
                email=email,
                # Outlook repeats the address as the name when it knows no name.
                name=str(name) if isinstance(name, str) and name != email else "",
                response=_RESPONSES.get(str(response), NEEDS_ACTION),
                optional=entry.get("type") == "optional",
                raw=dict(entry),
            )
        )
    return tuple(attendees)


def tag_of(raw: Mapping[str, Any]) -> str | None:
    """Our tag: the extended property when it was expanded, else what the transactionId carries."""
    for prop in raw.get("singleValueExtendedProperties") or ():
        if (
            isinstance(prop, Mapping)
            and str(prop.get("id", "")).lower() == TAG_PROPERTY_ID.lower()
            and isinstance(prop.get("value"), str)
            and prop["value"]
        ):
            return str(prop["value"])
    return _tag_in_transaction_id(raw.get("transactionId"))


def _address(raw: object) -> str | None:
    """The address of a recipient resource ({"emailAddress": {"address": ...}})."""
    address = raw.get("emailAddress") if isinstance(raw, Mapping) else None
    email = address.get("address") if isinstance(address, Mapping) else None
    return email if isinstance(email, str) and "@" in email else None


def _meeting(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Who organizes the event, this mailbox's own answer when invited, and the Teams link.

    https://learn.microsoft.com/en-us/graph/api/resources/event (isOrganizer, organizer,
    responseStatus, onlineMeeting); an event without isOrganizer is the mailbox's own.
    """
    is_organizer = raw.get("isOrganizer") is not False
    status = raw.get("responseStatus")
    response = status.get("response") if isinstance(status, Mapping) else None
    online = raw.get("onlineMeeting")
    join_url = online.get("joinUrl") if isinstance(online, Mapping) else None
    return {
        "organizer": _address(raw.get("organizer")),
        "is_organizer": is_organizer,
        "my_response": None if is_organizer else _RESPONSES.get(str(response), NEEDS_ACTION),
        "join_url": join_url if isinstance(join_url, str) and join_url else None,
        # Graph makes the Teams meeting with the write that asks for it: nothing is pending.
        "video_call_pending": False,
    }


def parse_event(raw: object, *, tag: str | None = None) -> RemoteEvent:
    """A Graph event -> RemoteEvent; raises InvalidEvent if it cannot be understood.

    ``tag`` is our tag when it was read separately (delta answers carry no extended properties).
    """
    if not isinstance(raw, Mapping):
        raise InvalidEvent("event is not an object")
    event_id = raw.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise InvalidEvent("event has no id")
    series_id = raw.get("seriesMasterId")
    etag = raw.get("@odata.etag")
    common: dict[str, Any] = {
        "external_id": event_id,
        "etag": etag if isinstance(etag, str) else None,
        "is_recurring_instance": raw.get("type") in RECURRING_TYPES,
        "series_id": series_id if isinstance(series_id, str) and series_id else None,
        "ical_uid": raw.get("iCalUId") if isinstance(raw.get("iCalUId"), str) else None,
        "tag": tag if tag is not None else tag_of(raw),
        "updated": _parse_instant(raw.get("lastModifiedDateTime"), "lastModifiedDateTime"),
        "is_cancelled": bool(raw.get("isCancelled", False)),
        # webLink: "The URL to open the event in Outlook on the web".
        "web_url": safe_web_url(raw.get("webLink")),
        **_meeting(raw),
    }
    start, end = _local(raw.get("start"), "start"), _local(raw.get("end"), "end")
    times: dict[str, Any]
    if raw.get("isAllDay"):
        # Midnight to midnight in whatever zone Graph answered in: the dates are what count.
        times = {"start_date": start.date(), "end_date": end.date()}
    else:
        times = {"start": start.astimezone(UTC), "end": end.astimezone(UTC)}
    location = raw.get("location")
    event = RemoteEvent(
        subject=_text(raw, "subject"),
        location=str(location.get("displayName") or "") if isinstance(location, Mapping) else "",
        description=_description(raw),
        attendees=_attendees(raw.get("attendees")),
        busy=raw.get("showAs") != "free",
        private=raw.get("sensitivity") in PRIVATE_SENSITIVITIES,
        **times,
        **common,
    )
    event.validate()
    return event


def parse_calendar(raw: object) -> RemoteCalendarInfo:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str):
        raise InvalidEvent("calendar has no id")
    return RemoteCalendarInfo(
        external_id=raw["id"],
        name=str(raw.get("name") or raw["id"]),
        is_primary=bool(raw.get("isDefaultCalendar", False)),
        can_write=bool(raw.get("canEdit", False)),
    )


def same_content(remote: RemoteEvent, wanted: EventData, fields: Collection[str] | None = None) -> bool:
    """Does the event already hold what we meant to write? Graph stores text bodies with plain
    newlines and no trailing newline; a video call asked for is there once it has a join link."""
    if VIDEO_CALL in fields_to_write(fields) and wanted.video_call and remote.join_url is None:
        return False
    return base_same_content(
        remote, wanted, fields, description=lambda text: text.replace("\r\n", "\n").rstrip("\n")
    )
