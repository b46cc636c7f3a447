"""events.list of the emulated Google Calendar: filters, instance expansion, pages and sync tokens.

A full listing snapshots its result at the first page; the pages hand it out and the last page
carries a sync token for the change sequence at the snapshot, so anything changed while the
client was paging shows up in its next incremental sync.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from calendarsync.emulators.google_events import as_instant, cancelled_view, render, timing_of
from calendarsync.emulators.google_http import ApiError, JsonDict, Request, format_timestamp, parse_timestamp
from calendarsync.emulators.google_instances import exception_view, series_views
from calendarsync.emulators.google_state import Calendar, EmulatorState, PageCursor, now

DEFAULT_MAX_RESULTS = 250
MAX_MAX_RESULTS = 2500
SYNC_INCOMPATIBLE = (
    "timeMin",
    "timeMax",
    "q",
    "orderBy",
    "updatedMin",
    "iCalUID",
    "privateExtendedProperty",
    "sharedExtendedProperty",
)


@dataclass(frozen=True)
class ListQuery:
    max_results: int
    single_events: bool
    show_deleted: bool
    time_min: dt.datetime | None
    time_max: dt.datetime | None
    updated_min: dt.datetime | None
    text: str | None
    private: tuple[tuple[str, str], ...]
    shared: tuple[tuple[str, str], ...]
    ical_uid: str | None
    order_by: str | None


def _flag(req: Request, name: str) -> bool:
    return (req.arg(name) or "").lower() == "true"


def _timestamp_arg(req: Request, name: str) -> dt.datetime | None:
    value = req.arg(name)
    if not value:
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        raise ApiError(400, "badRequest", "Bad Request") from None


def _property_filters(req: Request, name: str) -> tuple[tuple[str, str], ...]:
    filters = []
    for item in req.args(name):
        key, sep, value = item.partition("=")
        if not sep:
            raise ApiError(400, "invalid", f"Invalid value for: {name}")
        filters.append((key, value))
    return tuple(filters)


def parse_query(req: Request) -> ListQuery:
    try:
        max_results = int(req.arg("maxResults") or DEFAULT_MAX_RESULTS)
    except ValueError:
        raise ApiError(400, "invalid", "Invalid value for: maxResults") from None
    if max_results < 1:
        raise ApiError(400, "invalid", "Invalid value for: maxResults")
    query = ListQuery(
        max_results=min(max_results, MAX_MAX_RESULTS),
        single_events=_flag(req, "singleEvents"),
        show_deleted=_flag(req, "showDeleted"),
        time_min=_timestamp_arg(req, "timeMin"),
        time_max=_timestamp_arg(req, "timeMax"),
        updated_min=_timestamp_arg(req, "updatedMin"),
        text=req.arg("q") or None,
        private=_property_filters(req, "privateExtendedProperty"),
        shared=_property_filters(req, "sharedExtendedProperty"),
        ical_uid=req.arg("iCalUID") or None,
        order_by=req.arg("orderBy") or None,
    )
    if query.order_by not in (None, "startTime", "updated"):
        raise ApiError(400, "invalid", "Invalid value for: orderBy")
    if query.order_by == "startTime" and not query.single_events:
        raise ApiError(400, "badRequest", "The requested ordering is not available for the particular query.")
    if query.time_min and query.time_max and query.time_max < query.time_min:
        raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.")
    return query


def _matches(resource: JsonDict, query: ListQuery) -> bool:
    properties = resource.get("extendedProperties", {})
    for scope, wanted in (("private", query.private), ("shared", query.shared)):
        if any(properties.get(scope, {}).get(key) != value for key, value in wanted):
            return False
    if query.ical_uid and resource.get("iCalUID") != query.ical_uid:
        return False
    if query.text:
        haystack = " ".join(
            [str(resource.get(key, "")) for key in ("summary", "description", "location")]
            + [f"{a.get('email', '')} {a.get('displayName', '')}" for a in resource.get("attendees", [])]
        ).lower()
        if not all(word in haystack for word in query.text.lower().split()):
            return False
    return True


def _span(view: JsonDict) -> tuple[dt.datetime, dt.datetime]:
    if "start" in view and "end" in view:
        timing = timing_of(view)
        return as_instant(timing.start), as_instant(timing.end)
    original = as_instant(
        timing_of({"start": view["originalStartTime"], "end": view["originalStartTime"]}).start
    )
    return original, original


def _overlaps(view: JsonDict, query: ListQuery) -> bool:
    # Google: timeMin bounds an event's end, timeMax its start, both exclusive.
    start, end = _span(view)
    if query.time_max is not None and start >= query.time_max:
        return False
    return not (query.time_min is not None and end <= query.time_min and start < query.time_min)


def _full_listing(calendar: Calendar, query: ListQuery) -> list[JsonDict]:
    include_deleted = query.show_deleted or query.updated_min is not None
    rows: list[tuple[Any, JsonDict]] = []

    def add(view: JsonDict, sort_source: JsonDict, deleted: bool) -> None:
        if query.order_by == "updated":
            key: Any = (view.get("updated", ""), view["id"])
        else:
            key = (_span(sort_source)[0], view["id"])
        rows.append((key, cancelled_view(view) if deleted else view))

    def wanted(resource: JsonDict) -> bool:
        if query.updated_min is not None and parse_timestamp(resource["updated"]) < query.updated_min:
            return False
        return _matches(resource, query)

    for stored in calendar.events.values():
        resource = stored.resource
        if stored.deleted and not include_deleted:
            continue
        if stored.recurring:
            views = series_views(stored, query.time_max)
            if query.single_events:
                # Both flags true: cancelled instances too; singleEvents alone: live instances only.
                for view, cancelled in views:
                    if (include_deleted or not cancelled) and wanted(view) and _overlaps(view, query):
                        add(view, view, cancelled)
            else:
                if wanted(resource) and any(_overlaps(view, query) for view, _ in views):
                    add(render(stored), resource, False)
                # The series' changed instances come as events of their own; cancelled ones even
                # without showDeleted (the parameter's description), unless the series is deleted.
                for exception in stored.exceptions.values():
                    if exception.deleted and stored.deleted and not include_deleted:
                        continue
                    if wanted(exception.resource) and _overlaps(exception.resource, query):
                        add(exception_view(stored, exception), exception.resource, False)
        elif wanted(resource) and _overlaps(resource, query):
            add(render(stored), resource, False)
        if query.single_events and include_deleted:
            for instance_id, retired in stored.retired_instances.items():
                # A retired exception is listed once, as the cancelled exception it now is.
                if instance_id not in stored.exceptions and _overlaps(retired, query):
                    add(retired, retired, True)
    rows.sort(key=lambda row: row[0])
    return [view for _, view in rows]


def _changes_since(calendar: Calendar, seq: int, query: ListQuery) -> list[JsonDict]:
    """Everything changed after `seq`, in change order, each id once (in its latest place)."""
    entries: list[tuple[int, JsonDict]] = []
    for stored in calendar.events.values():
        if stored.changed_seq > seq:
            if query.single_events and stored.recurring:
                for view, cancelled in series_views(stored, None):
                    entries.append((stored.changed_seq, cancelled_view(view) if cancelled else view))
            else:
                entries.append((stored.changed_seq, render(stored)))
            if query.single_events:
                # Instances an earlier version had (also when a series became a single event).
                entries.extend((stored.changed_seq, view) for view in stored.retired_instances.values())
        for exception in stored.exceptions.values():
            if exception.changed_seq > seq:
                entries.append((exception.changed_seq, exception_view(stored, exception)))
    entries.sort(key=lambda entry: entry[0])
    latest = {view["id"]: index for index, (_, view) in enumerate(entries)}
    return [view for index, (_, view) in enumerate(entries) if latest[view["id"]] == index]


def list_events(state: EmulatorState, calendar: Calendar, req: Request) -> JsonDict:
    query = parse_query(req)
    page_token = req.arg("pageToken")
    sync_token = req.arg("syncToken")
    if page_token:
        cursor = state.page_cursors.get(page_token)
        if cursor is None or (cursor.email, cursor.calendar_id) != (calendar.owner, calendar.id):
            raise ApiError(400, "invalid", "Invalid page token value.")
        items, offset, snapshot = cursor.items, cursor.offset, cursor.snapshot_seq
    elif sync_token:
        refused = [name for name in SYNC_INCOMPATIBLE if req.args(name)]
        if refused:
            raise ApiError(
                400, "invalid", f"The parameter {refused[0]} cannot be used together with syncToken."
            )
        record = state.sync_token(sync_token, calendar.owner, calendar.id)
        items, offset, snapshot = _changes_since(calendar, record.seq, query), 0, state.seq
    else:
        items, offset, snapshot = _full_listing(calendar, query), 0, state.seq

    end = offset + query.max_results
    response: JsonDict = {
        "kind": "calendar#events",
        "etag": state.etag(snapshot),
        "summary": calendar.summary,
        "description": "",
        "updated": format_timestamp(now()),
        "timeZone": calendar.time_zone,
        "accessRole": "owner",
        "defaultReminders": [],
    }
    if end < len(items):
        token = secrets.token_urlsafe(18)
        state.page_cursors[token] = PageCursor(calendar.owner, calendar.id, items, end, snapshot)
        response["nextPageToken"] = token
    else:
        response["nextSyncToken"] = state.new_sync_token(calendar.owner, calendar.id, snapshot)
    response["items"] = items[offset:end]
    return response
