"""How the emulated Outlook calendar shows events: Graph's JSON, calendar views and occurrences.

Event resource: https://learn.microsoft.com/en-us/graph/api/resources/event
Callers hold `MicrosoftState.lock`.
"""

from __future__ import annotations

import copy
import datetime as dt
import html
import re
from dataclasses import dataclass
from urllib.parse import quote

from calendarsync.emulators.google_http import JsonDict
from calendarsync.emulators.google_rrule import Occurrence
from calendarsync.emulators.microsoft_events import (
    format_local,
    instant,
    occurrence_id,
    occurrences_of,
    timing,
    zone,
)
from calendarsync.emulators.microsoft_meetings import online_meeting, organizer_of, response_status
from calendarsync.emulators.microsoft_occurrences import occurrence_span, occurrence_view
from calendarsync.emulators.microsoft_state import Calendar, StoredEvent, Window, format_graph_timestamp


@dataclass(frozen=True)
class RenderOptions:
    """What the request's Prefer header and $expand asked for."""

    time_zone: str = "UTC"
    text_body: bool = False
    # None: no singleValueExtendedProperties; otherwise the (lower-case) ids to include ("*": all).
    extended: frozenset[str] | None = None


def _html_of(text: str) -> str:
    lines = "<br>\r\n".join(html.escape(line) for line in text.split("\n"))
    return f'<html>\r\n<head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\r\n</head>\r\n<body>\r\n<div>{lines}</div>\r\n</body>\r\n</html>\r\n'


def text_of(markup: str) -> str:
    markup = re.sub(r"(?is)<(head|style|script)\b.*?</\1>", "", markup)
    markup = re.sub(r"(?i)<br\s*/?>\s*", "\n", markup)
    markup = re.sub(r"(?i)</(p|div)>\s*", "\n", markup)
    return html.unescape(re.sub(r"<[^>]+>", "", markup)).replace("\r", "").strip("\n")


def _render_body(body: JsonDict, text: bool) -> JsonDict:
    if text:
        content = body["content"] if body["contentType"] == "text" else text_of(body["content"])
        return {"contentType": "text", "content": content}
    content = (
        body["content"]
        if body["contentType"] == "html"
        else (_html_of(body["content"]) if body["content"] else "")
    )
    return {"contentType": "html", "content": content}


def _render_when(value: dt.date, options: RenderOptions) -> JsonDict:
    if isinstance(value, dt.datetime):
        local = value.astimezone(zone(options.time_zone))
        return {"dateTime": format_local(local.replace(tzinfo=None)), "timeZone": options.time_zone}
    # All-day events float: midnight of their dates in whatever zone the caller reads in.
    return {"dateTime": format_local(dt.datetime.combine(value, dt.time(0))), "timeZone": options.time_zone}


def web_link(item_id: str) -> str:
    """The event's Outlook on the web link, as Graph gives it in ``webLink`` (the id URL-encoded).

    https://learn.microsoft.com/en-us/graph/api/resources/event (webLink)
    """
    return (
        f"https://outlook.office365.com/owa/?itemid={quote(item_id, safe='')}&exvsurl=1&path=/calendar/item"
    )


def render(
    stored: StoredEvent,
    calendar: Calendar,
    options: RenderOptions,
    occurrence: Occurrence | None = None,
) -> JsonDict:
    """The event (or one occurrence of its series, an exception if changed on its own) as Graph returns it."""
    if occurrence is not None:
        fields, extended, changed = occurrence_view(stored, occurrence)
        span = occurrence_span(stored, occurrence)
        kind, item_id = ("exception" if changed else "occurrence"), occurrence_id(stored.id, occurrence)
    else:
        fields, extended, span = stored.fields, stored.extended, timing(stored.fields)
        kind, item_id = ("seriesMaster" if stored.recurring else "singleInstance"), stored.id
    text = _render_body(fields["body"], options.text_body)
    preview = (text["content"] if text["contentType"] == "text" else text_of(text["content"]))[:255]
    resource: JsonDict = {
        "@odata.etag": stored.etag,
        "id": item_id,
        "createdDateTime": format_graph_timestamp(stored.created),
        "lastModifiedDateTime": format_graph_timestamp(stored.modified),
        "changeKey": stored.change_key,
        "categories": list(fields["categories"]),
        "transactionId": stored.transaction_id,
        "originalStartTimeZone": fields["start"]["timeZone"],
        "originalEndTimeZone": fields["end"]["timeZone"],
        "iCalUId": stored.ical_uid,
        "reminderMinutesBeforeStart": fields["reminderMinutesBeforeStart"],
        "isReminderOn": fields["isReminderOn"],
        "hasAttachments": False,
        "subject": fields["subject"],
        "bodyPreview": preview,
        "importance": fields["importance"],
        "sensitivity": fields["sensitivity"],
        "isAllDay": fields["isAllDay"],
        "isCancelled": stored.cancelled,
        "isOrganizer": not stored.is_copy,
        "responseRequested": True,
        "seriesMasterId": stored.id if occurrence is not None else None,
        "showAs": fields["showAs"],
        "type": kind,
        "webLink": web_link(item_id),
        "isOnlineMeeting": bool(fields.get("isOnlineMeeting")),
        "onlineMeetingProvider": fields.get("onlineMeetingProvider") or "unknown",
        "onlineMeeting": online_meeting(stored),
        "onlineMeetingUrl": None,
        "allowNewTimeProposals": True,
        "isDraft": False,
        "responseStatus": response_status(stored),
        "body": text,
        "start": _render_when(span.start, options),
        "end": _render_when(span.end, options),
        "location": copy.deepcopy(fields["location"]),
        "locations": [copy.deepcopy(fields["location"])] if fields["location"]["displayName"] else [],
        "recurrence": copy.deepcopy(fields["recurrence"]) if occurrence is None else None,
        "attendees": copy.deepcopy(fields["attendees"]),
        "organizer": organizer_of(calendar, stored),
    }
    if occurrence is not None:
        start = occurrence.start
        resource["originalStart"] = format_graph_timestamp(
            start if isinstance(start, dt.datetime) else dt.datetime.combine(start, dt.time(0), tzinfo=dt.UTC)
        )
    if options.extended is not None:
        wanted = options.extended
        props = [
            {"id": prop_id, "value": value}
            for prop_id, value in extended.items()
            if "*" in wanted or prop_id.lower() in wanted
        ]
        if props:
            resource["singleValueExtendedProperties"] = props
    return resource


def overlaps(start: dt.date, end: dt.date, window: Window) -> bool:
    begin, finish = instant(start), instant(end)
    if finish == begin:
        return window.start <= begin < window.end
    return begin < window.end and finish > window.start


def views_in_window(
    stored: StoredEvent, calendar: Calendar, window: Window, options: RenderOptions
) -> list[JsonDict]:
    """What a calendarView of ``window`` shows of the event: itself, or its occurrences."""
    if stored.deleted:
        return []
    if not stored.recurring:
        span = timing(stored.fields)
        return [render(stored, calendar, options)] if overlaps(span.start, span.end, window) else []
    views = []
    # A day's margin: an exception may have moved into the window from just past its end.
    for occurrence in occurrences_of(stored.fields, window.end + dt.timedelta(days=1)):
        if occurrence_id(stored.id, occurrence) in stored.cancelled_occurrences:
            continue
        span = occurrence_span(stored, occurrence)
        if overlaps(span.start, span.end, window):
            views.append(render(stored, calendar, options, occurrence))
    return views
