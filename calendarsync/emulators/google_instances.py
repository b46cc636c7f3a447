"""Instances of recurring events in the emulated Google Calendar: reading, changing, cancelling, listing.

An instance's id is `<seriesId>_<original start>` (UTC `YYYYMMDDTHHMMSSZ`, or `YYYYMMDD` for
all-day series). Changing one (PATCH or PUT on that id) or cancelling it (DELETE, or status
"cancelled") makes it an exception: an event of its own with `recurringEventId` and
`originalStartTime`, its own etag, and its own place in the change sequence, so an incremental
sync lists it (a cancelled one as `status: "cancelled"`). Event resource, `status` and
`originalStartTime`: https://developers.google.com/calendar/api/v3/reference/events; changing
instances: https://developers.google.com/calendar/api/guides/recurringevents; listing them:
https://developers.google.com/calendar/api/v3/reference/events/instances.

Callers hold `EmulatorState.lock`. Errors are raised as `ApiError` with Google's reasons.
"""

from __future__ import annotations

import copy
import datetime as dt
import secrets
from dataclasses import dataclass

from calendarsync.emulators.google_events import (
    INSTANCE_ID_PATTERN,
    SERVER_FIELDS,
    as_instant,
    cancel_stored,
    cancelled_view,
    check_if_match,
    clean_body,
    delete_event,
    html_link,
    instance_view,
    merge_patch,
    occurrences,
    ordered,
    render,
    stamp,
    timing_of,
    update_event,
)
from calendarsync.emulators.google_http import ApiError, JsonDict, Request, format_timestamp, not_found
from calendarsync.emulators.google_state import Calendar, EmulatorState, PageCursor, StoredEvent, now

# Fields an instance takes from its series and keeps: a client cannot change them.
INSTANCE_FIELDS = ("recurringEventId", "originalStartTime")
DEFAULT_MAX_RESULTS = 250
MAX_MAX_RESULTS = 2500


@dataclass(frozen=True)
class InstanceRef:
    """One instance of a live series: as the series makes it, and its exception if it has one."""

    series: StoredEvent
    instance_id: str
    current: JsonDict  # the exception's resource, else the instance as the series makes it
    exception: StoredEvent | None


def find_instance(calendar: Calendar, event_id: str) -> InstanceRef | None:
    """The instance an id names, if it is an instance id of a live recurring event."""
    match = INSTANCE_ID_PATTERN.fullmatch(event_id)
    series = calendar.events.get(match["series"]) if match else None
    if match is None or series is None or series.deleted or not series.recurring:
        return None
    exception = series.exceptions.get(event_id)
    if exception is not None:
        return InstanceRef(series, event_id, exception.resource, exception)
    day = dt.datetime.strptime(match["stamp"][:8], "%Y%m%d").replace(tzinfo=dt.UTC)
    for occurrence in occurrences(series.resource, horizon=day + dt.timedelta(days=2)):
        view = instance_view(series.resource, occurrence)
        if view["id"] == event_id:
            return InstanceRef(series, event_id, view, None)
    return None


# -- reading -----------------------------------------------------------------------------------


def get_event(calendar: Calendar, event_id: str) -> JsonDict:
    """events.get: an event, or an instance (its exception if it has one); 404 if deleted."""
    stored = calendar.events.get(event_id)
    if stored is not None:
        if stored.deleted:
            raise not_found()
        return render(stored)
    ref = find_instance(calendar, event_id)
    if ref is None or (ref.exception is not None and ref.exception.deleted):
        raise not_found()
    return copy.deepcopy(ref.current)


def series_views(stored: StoredEvent, horizon: dt.datetime | None) -> list[tuple[JsonDict, bool]]:
    """Every instance of a series up to `horizon` as listed: (resource, cancelled).

    Changed instances show as their exception; exceptions moved from beyond the horizon come too.
    """
    found: list[tuple[JsonDict, bool]] = []
    seen: set[str] = set()
    for occurrence in occurrences(stored.resource, horizon):
        view = instance_view(stored.resource, occurrence)
        exception = stored.exceptions.get(view["id"])
        if exception is not None:
            found.append((copy.deepcopy(exception.resource), stored.deleted or exception.deleted))
        else:
            found.append((view, stored.deleted))
        seen.add(view["id"])
    for instance_id, exception in stored.exceptions.items():
        if instance_id not in seen:
            found.append((copy.deepcopy(exception.resource), stored.deleted or exception.deleted))
    return found


def exception_view(series: StoredEvent, exception: StoredEvent) -> JsonDict:
    """An exception as list and sync show it (cancelled with its series)."""
    if series.deleted or exception.deleted:
        return cancelled_view(exception.resource)
    return copy.deepcopy(exception.resource)


# -- changing and cancelling -------------------------------------------------------------------


def _exception_base(calendar: Calendar, ref: InstanceRef) -> JsonDict:
    """The resource an instance starts from when it becomes an exception."""
    if ref.exception is not None:
        return copy.deepcopy(ref.exception.resource)
    base = copy.deepcopy(ref.current)
    base["htmlLink"] = html_link(ref.instance_id, calendar.id)
    return base


def _store_exception(state: EmulatorState, ref: InstanceRef, resource: JsonDict) -> StoredEvent:
    seq = stamp(state, resource)
    if ref.exception is not None:
        ref.exception.resource = ordered(resource)
        ref.exception.changed_seq = seq
        return ref.exception
    exception = StoredEvent(resource=ordered(resource), changed_seq=seq)
    ref.series.exceptions[ref.instance_id] = exception
    return exception


def update_instance(
    state: EmulatorState,
    calendar: Calendar,
    ref: InstanceRef,
    body: JsonDict,
    *,
    patch: bool,
    if_match: str | None = None,
    lenient: bool = False,
) -> StoredEvent:
    """PATCH or PUT on an instance id: the instance becomes (or stays) an exception."""
    if ref.exception is not None and ref.exception.deleted:
        raise not_found()
    current = ref.current
    check_if_match(current, if_match)
    if body.get("recurrence"):
        # Recurrence belongs to the recurring event; its instances never carry one.
        raise ApiError(400, "invalid", "Invalid recurrence rule.")
    kept = (*SERVER_FIELDS, *INSTANCE_FIELDS)
    if patch:
        writable = {key: value for key, value in current.items() if key not in kept}
        body = merge_patch(writable, {key: value for key, value in body.items() if key not in kept})
    else:
        body = {key: value for key, value in body.items() if key not in kept}
    fields = clean_body(body, calendar, lenient=lenient)
    if fields.get("status") == "cancelled":
        return cancel_instance(state, calendar, ref)
    resource = _exception_base(calendar, ref)
    for key in [key for key in resource if key not in kept]:
        del resource[key]
    resource.update(fields)
    resource.setdefault("status", "confirmed")
    resource.setdefault("reminders", {"useDefault": True})
    timing_changed = any(current.get(key) != resource.get(key) for key in ("start", "end"))
    resource["sequence"] = max(
        int(fields.get("sequence", 0)), int(current.get("sequence", 0)) + int(timing_changed)
    )
    return _store_exception(state, ref, resource)


def cancel_instance(
    state: EmulatorState, calendar: Calendar, ref: InstanceRef, if_match: str | None = None
) -> StoredEvent:
    """DELETE on an instance id: a cancelled exception (410 when it already is one)."""
    if ref.exception is not None and ref.exception.deleted:
        raise ApiError(410, "deleted", "Resource has been deleted")
    check_if_match(ref.current, if_match)
    if ref.exception is not None:
        cancel_stored(state, ref.exception)
        return ref.exception
    resource = _exception_base(calendar, ref)
    resource["status"] = "cancelled"
    return _store_exception(state, ref, resource)


# -- events.patch / events.update / events.delete / events.get for any id ----------------------


def update_any(
    state: EmulatorState,
    calendar: Calendar,
    event_id: str,
    body: JsonDict,
    *,
    patch: bool,
    if_match: str | None = None,
    lenient: bool = False,
) -> StoredEvent:
    """Change an event, or one instance of a recurring event."""
    if event_id not in calendar.events:
        ref = find_instance(calendar, event_id)
        if ref is not None:
            return update_instance(
                state, calendar, ref, body, patch=patch, if_match=if_match, lenient=lenient
            )
    return update_event(state, calendar, event_id, body, patch=patch, if_match=if_match, lenient=lenient)


def delete_any(state: EmulatorState, calendar: Calendar, event_id: str, if_match: str | None = None) -> None:
    """Delete an event (a whole series), or cancel one instance of a recurring event."""
    if event_id not in calendar.events:
        ref = find_instance(calendar, event_id)
        if ref is not None:
            cancel_instance(state, calendar, ref, if_match)
            return
    delete_event(state, calendar, event_id, if_match)


# -- events.instances --------------------------------------------------------------------------


def _time_arg(req: Request, name: str) -> dt.datetime | None:
    value = req.arg(name)
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ApiError(400, "badRequest", "Bad Request") from None
    if moment.tzinfo is None:
        raise ApiError(400, "badRequest", "Bad Request")
    return moment


def _span(view: JsonDict) -> tuple[dt.datetime, dt.datetime]:
    if "start" in view and "end" in view:
        timing = timing_of(view)
        return as_instant(timing.start), as_instant(timing.end)
    original = timing_of({"start": view["originalStartTime"], "end": view["originalStartTime"]})
    return as_instant(original.start), as_instant(original.start)


def list_instances(state: EmulatorState, calendar: Calendar, event_id: str, req: Request) -> JsonDict:
    """events.instances: the instances of a recurring event, by start, paged.

    `timeMin` is an inclusive bound for an instance's end, `timeMax` an exclusive one for its
    start; cancelled instances come only with showDeleted=true; `originalStart` picks one.
    An event that does not recur has no instances here (an assumption: Google does not say).
    """
    stored = calendar.events.get(event_id)
    if stored is None or stored.deleted:
        raise not_found()
    try:
        max_results = int(req.arg("maxResults") or DEFAULT_MAX_RESULTS)
    except ValueError:
        raise ApiError(400, "invalid", "Invalid value for: maxResults") from None
    if max_results < 1:
        raise ApiError(400, "invalid", "Invalid value for: maxResults")
    max_results = min(max_results, MAX_MAX_RESULTS)
    page_token = req.arg("pageToken")
    if page_token:
        cursor = state.page_cursors.get(page_token)
        if cursor is None or (cursor.email, cursor.calendar_id) != (calendar.owner, calendar.id):
            raise ApiError(400, "invalid", "Invalid page token value.")
        items, offset = cursor.items, cursor.offset
    else:
        items, offset = _instance_items(stored, req), 0
    end = offset + max_results
    response: JsonDict = {
        "kind": "calendar#events",
        "etag": state.etag(state.seq),
        "summary": calendar.summary,
        "description": "",
        "updated": format_timestamp(now()),
        "timeZone": calendar.time_zone,
        "accessRole": "owner",
        "defaultReminders": [],
    }
    if end < len(items):
        token = secrets.token_urlsafe(18)
        state.page_cursors[token] = PageCursor(calendar.owner, calendar.id, items, end, state.seq)
        response["nextPageToken"] = token
    response["items"] = items[offset:end]
    return response


def _is_original_start(original_start: JsonDict, wanted: str) -> bool:
    """Whether an instance's originalStartTime is the `originalStart` asked for (date or RFC 3339)."""
    if "date" in original_start:
        return bool(original_start["date"] == wanted.strip()[:10])
    try:
        moment = dt.datetime.fromisoformat(wanted.strip())
    except ValueError:
        raise ApiError(400, "badRequest", "Bad Request") from None
    if moment.tzinfo is None:
        raise ApiError(400, "badRequest", "Bad Request")
    return _span({"originalStartTime": original_start})[0] == moment


def _instance_items(stored: StoredEvent, req: Request) -> list[JsonDict]:
    if not stored.recurring:
        return []
    time_min, time_max = _time_arg(req, "timeMin"), _time_arg(req, "timeMax")
    if time_min and time_max and time_max < time_min:
        raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.")
    original = req.arg("originalStart") or None
    show_deleted = (req.arg("showDeleted") or "").lower() == "true"
    rows: list[tuple[dt.datetime, str, JsonDict]] = []
    for view, cancelled in series_views(stored, time_max):
        if cancelled and not show_deleted:
            continue
        start, finish = _span(view)
        if time_max is not None and start >= time_max:
            continue
        if time_min is not None and finish < time_min:
            continue
        if original is not None and not _is_original_start(view["originalStartTime"], original):
            continue
        rows.append((start, view["id"], cancelled_view(view) if cancelled else view))
    rows.sort(key=lambda row: (row[0], row[1]))
    return [view for _, _, view in rows]
