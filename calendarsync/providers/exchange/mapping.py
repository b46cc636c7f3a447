"""exchangelib CalendarItems <-> our dataclasses, and the change cursor (never raw items past the adapter).

CalendarItem: https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/calendaritem
All-day items: https://learn.microsoft.com/en-us/exchange/client-developer/exchange-web-services/how-to-create-all-day-events-by-using-ews-in-exchange
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import html
import json
import zlib
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.utils.html import strip_tags
from exchangelib import EWSDate, EWSDateTime, EWSTimeZone
from exchangelib.errors import UnknownTimeZone
from exchangelib.properties import Attendee as EwsAttendee
from exchangelib.properties import Body, HTMLBody, Mailbox

from calendarsync.providers.base import (
    ACCEPTED,
    DECLINED,
    NEEDS_ACTION,
    TAG,
    TENTATIVE,
    Attendee,
    CursorExpired,
    EventData,
    InvalidEvent,
    RemoteEvent,
    fields_to_write,
)
from calendarsync.providers.exchange.client import KEY_FIELD, TAG_FIELD
from calendarsync.providers.web_links import safe_web_url

SINGLE = "Single"
OCCURRENCE = "Occurrence"
EXCEPTION = "Exception"
RECURRING_MASTER = "RecurringMaster"
UTC = EWSTimeZone("UTC")

# What we read of an item (GetItem) and what we write (CreateItem, UpdateItem).
READ_FIELDS = (
    "subject",
    "body",
    "location",
    "start",
    "end",
    "is_all_day",
    "legacy_free_busy_status",
    "sensitivity",
    "required_attendees",
    "optional_attendees",
    "last_modified_time",
    "type",
    "uid",
    "_start_timezone",
    "_end_timezone",
    # Meetings: https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/organizer
    # https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/myresponsetype
    # https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/iscancelled
    "organizer",
    "my_response_type",
    "is_cancelled",
    # The Outlook on the web link (``web_url``):
    # https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/webclientreadformquerystring
    "web_client_read_form_query_string",
    TAG_FIELD,
)
WRITE_FIELDS = (
    "subject",
    "body",
    "location",
    "start",
    "end",
    "is_all_day",
    "legacy_free_busy_status",
    "sensitivity",
    "required_attendees",
    "optional_attendees",
    TAG_FIELD,
)
_RESPONSES = {"Accept": "accepted", "Decline": "declined", "Tentative": "tentative", "Organizer": "accepted"}
# MyResponseType of an invitee's copy -> base.RESPONSES (NoResponseReceived, Unknown: not answered).
_MY_RESPONSES = {"Accept": ACCEPTED, "Decline": DECLINED, "Tentative": TENTATIVE}


def _aware(value: Any, what: str) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise InvalidEvent(f"{what} is missing or has no time zone")
    return dt.datetime.fromisoformat(value.isoformat()).astimezone(dt.UTC)


def _modified(value: Any) -> dt.datetime:
    """LastModifiedTime comes to the second: report the last instant of that second.

    Exchange truncates the stamp; the change happened somewhere in that second. Taking its end
    keeps "changed after the sync started" (R2) true for a change made just after the start.
    """
    return _aware(value, "last modified time").replace(microsecond=999_999)


def _plain_date(value: Any, what: str) -> dt.date:
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise InvalidEvent(f"{what} of an all-day item is not a date")
    return dt.date(value.year, value.month, value.day)


def _description(body: Any) -> str:
    if not body:
        return ""
    if isinstance(body, HTMLBody):
        # Outlook writes HTML bodies; the CRM keeps notes as plain text.
        return html.unescape(strip_tags(str(body))).strip()
    return str(body)


def _attendees(item: Any) -> tuple[Attendee, ...]:
    found: list[Attendee] = []
    for optional, entries in ((False, item.required_attendees), (True, item.optional_attendees)):
        for entry in entries or ():
            mailbox = getattr(entry, "mailbox", None)
            email = getattr(mailbox, "email_address", None)
            if not email:
                continue  # a room or an unresolved name: nothing to sync
            found.append(
                Attendee(
                    email=str(email),
                    name=str(getattr(mailbox, "name", "") or ""),
                    response=_RESPONSES.get(str(getattr(entry, "response_type", "")), "needsAction"),
                    optional=optional,
                    raw=entry,
                )
            )
    return tuple(found)


@dataclass(frozen=True)
class MeetingRole:
    """Who organizes an item, as this mailbox (``me``) sees it, and its own answer when invited."""

    organizer: str | None
    is_organizer: bool
    my_response: str | None

    @classmethod
    def of(cls, item: Any, me: str) -> MeetingRole:
        mailbox = getattr(item, "organizer", None)
        address = str(getattr(mailbox, "email_address", None) or "").strip()
        # Exchange may name an internal organizer by an X.500 address (routing type EX): no e-mail.
        organizer = address if "@" in address else None
        response = str(getattr(item, "my_response_type", None) or "")
        # MyResponseType "Organizer" marks one's own items even when the organizer's address is an
        # alias or an X.500 one; an item without an organizer is one's own appointment.
        mine = not address or response == "Organizer" or (bool(me) and address.lower() == me.strip().lower())
        return cls(
            organizer=organizer,
            is_organizer=mine,
            my_response=None if mine else _MY_RESPONSES.get(response, NEEDS_ACTION),
        )


def owa_base_url(server_url: str) -> str | None:
    """Where Outlook on the web lives for an EWS endpoint: https://<its host>/owa/ (None without a host).

    The read-form query string is to be appended to the Outlook on the web endpoint, which on
    Exchange Server is the ``/owa/`` directory of the host serving EWS. Outlook on the web is served
    over https only, so an explicit port is kept only when EWS itself is https.
    """
    try:
        parts = urlsplit(server_url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    if ":" in host:
        host = f"[{host}]"  # IPv6
    if parts.scheme == "https" and port not in (None, 443):
        host = f"{host}:{port}"
    return f"https://{host}/owa/"


def web_url_of(query_string: object, owa_base: str | None) -> str | None:
    """The item's Outlook on the web link from its WebClientReadFormQueryString, if a safe one.

    Exchange Server answers "?ItemID=...&exvsurl=1&viewmodel=ReadMessageItem", to append to the
    Outlook on the web URL; an answer that is a whole URL already is taken as it is.
    """
    if not isinstance(query_string, str) or not query_string:
        return None
    if query_string.startswith("?"):
        return safe_web_url(owa_base + query_string) if owa_base else None
    return safe_web_url(query_string)


def parse_item(
    item: Any,
    *,
    series_ids: dict[str, str] | None = None,
    me: str = "",
    owa_base: str | None = None,
) -> RemoteEvent:
    """A CalendarItem from GetItem -> RemoteEvent; raises InvalidEvent if it cannot be understood.

    ``series_ids`` maps a series' UID to its master's id: occurrences carry the master's UID.
    ``me``: the mailbox's address, to tell its own meetings from the copies it was invited to. A
    copy the organizer cancelled (IsCancelled) comes back with ``is_cancelled`` set: for the
    engine that copy is gone. ``owa_base``: the mailbox's Outlook on the web URL
    (``owa_base_url``), to make the item's ``web_url`` of.
    """
    if not getattr(item, "id", None):
        raise InvalidEvent("item has no id")
    kind = str(item.type or SINGLE)
    instance = kind in (OCCURRENCE, EXCEPTION)
    uid = str(item.uid) if item.uid else None
    series_id = (series_ids or {}).get(uid or "") if instance else None
    times: dict[str, Any]
    if item.is_all_day:
        # exchangelib gives the dates of an all-day item with an inclusive end (the last day).
        first, last = _plain_date(item.start, "start"), _plain_date(item.end, "end")
        times = {"start_date": first, "end_date": max(last, first) + dt.timedelta(days=1)}
    else:
        times = {"start": _aware(item.start, "start"), "end": _aware(item.end, "end")}
    role = MeetingRole.of(item, me)
    event = RemoteEvent(
        external_id=str(item.id),
        etag=str(item.changekey) if item.changekey else None,
        subject=str(item.subject or ""),
        location=str(item.location or ""),
        description=_description(item.body),
        attendees=_attendees(item),
        busy=str(item.legacy_free_busy_status or "Busy") != "Free",
        private=str(item.sensitivity or "Normal") in ("Private", "Confidential"),
        # Our tag marks the items we made in this calendar; a copy of someone else's meeting is
        # never one of them, whatever properties the organizer's item carried along.
        tag=(getattr(item, TAG_FIELD, None) or None) if role.is_organizer else None,
        updated=_modified(item.last_modified_time),
        is_recurring_instance=instance,
        series_id=series_id or (uid if instance else None),
        ical_uid=uid,
        organizer=role.organizer,
        is_organizer=role.is_organizer,
        my_response=role.my_response,
        is_cancelled=bool(getattr(item, "is_cancelled", False)),
        web_url=web_url_of(getattr(item, "web_client_read_form_query_string", None), owa_base),
        **times,
    )
    event.validate()
    return event


def _zone_of(moment: dt.datetime) -> Any:
    """The item's time zone for Outlook to show it in: the event's own zone if Windows knows it."""
    try:
        return EWSTimeZone.from_timezone(moment.tzinfo)
    except (UnknownTimeZone, ValueError, TypeError, AttributeError):
        return UTC


def _ews_datetime(moment: dt.datetime) -> Any:
    utc = moment.astimezone(dt.UTC)  # Exchange keeps item times to the second
    return EWSDateTime(utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, tzinfo=UTC)


def _ews_attendee(attendee: Attendee) -> Any:
    if isinstance(attendee.raw, EwsAttendee):
        return attendee.raw  # kept as Exchange gave it: name and response stay (R11)
    mailbox = Mailbox(email_address=attendee.email, name=attendee.name or None)
    return EwsAttendee(mailbox=mailbox, response_type="Unknown")


def item_fields(
    event: EventData, *, key: str | None = None, fields: Collection[str] | None = None
) -> dict[str, Any]:
    """EventData -> CalendarItem field values we own, or only ``fields`` of them (an UpdateItem
    then sets just those; None clears a field on update)."""
    event.validate()
    wanted = fields_to_write(fields)
    values: dict[str, Any] = {}
    if "subject" in wanted:
        values["subject"] = event.subject
    if "description" in wanted:
        values["body"] = Body(event.description) if event.description else None
    if "location" in wanted:
        values["location"] = event.location or None
    if "busy" in wanted:
        values["legacy_free_busy_status"] = "Busy" if event.busy else "Free"
    if "private" in wanted:
        values["sensitivity"] = "Private" if event.private else "Normal"
    if "attendees" in wanted:
        required = [_ews_attendee(a) for a in event.attendees if not a.optional]
        optional = [_ews_attendee(a) for a in event.attendees if a.optional]
        values.update(required_attendees=required or None, optional_attendees=optional or None)
    if TAG in wanted:
        values[TAG_FIELD] = event.tag
    if "time" in wanted:
        values.update(_time_fields(event))
    if key is not None:
        values[KEY_FIELD] = key
    return values


def _time_fields(event: EventData) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if event.start is not None and event.end is not None:
        fields.update(
            is_all_day=False,
            start=_ews_datetime(event.start),
            end=_ews_datetime(event.end),
            _start_timezone=_zone_of(event.start),
            _end_timezone=_zone_of(event.end),
        )
    elif event.start_date is not None and event.end_date is not None:
        # All-day items are midnight to midnight in their time zone: UTC, so the dates stay the dates.
        fields.update(
            is_all_day=True,
            start=EWSDate.from_date(event.start_date),
            end=EWSDate.from_date(event.end_date - dt.timedelta(days=1)),
            _start_timezone=UTC,
            _end_timezone=UTC,
        )
    return fields


# --------------------------------------------------------------------------- the change cursor

CURSOR_PREFIX = "ews1."


@dataclass
class Cursor:
    """Where a change listing left off: the folder's sync state, and the occurrences we reported.

    SyncFolderItems reports a changed or deleted series by its master; the occurrences we
    reported for it (within the window) are kept here so their removals can be reported too.
    """

    sync_state: str
    series: dict[str, list[str]] = field(default_factory=dict)

    def encode(self) -> str:
        raw = json.dumps({"s": self.sync_state, "r": self.series}, separators=(",", ":")).encode()
        return CURSOR_PREFIX + base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode()

    @classmethod
    def decode(cls, text: str) -> Cursor:
        if not text.startswith(CURSOR_PREFIX):
            raise CursorExpired("not an Exchange change cursor")
        try:
            data = json.loads(zlib.decompress(base64.urlsafe_b64decode(text[len(CURSOR_PREFIX) :].encode())))
        except (binascii.Error, zlib.error, ValueError) as exc:
            raise CursorExpired("the Exchange change cursor is unreadable") from exc
        state, series = (
            data.get("s") if isinstance(data, dict) else None,
            data.get("r") if isinstance(data, dict) else None,
        )
        if not isinstance(state, str) or not state or not isinstance(series, dict):
            raise CursorExpired("the Exchange change cursor is incomplete")
        return cls(
            sync_state=state,
            series={str(k): [str(i) for i in v] for k, v in series.items() if isinstance(v, list)},
        )
