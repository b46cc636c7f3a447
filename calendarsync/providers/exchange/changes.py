"""Change listings over EWS: SyncFolderItems for what changed, a CalendarView for the occurrences.

SyncFolderItems reports single items and series masters; a series' occurrences exist only in a
CalendarView. So a listing expands the series that changed within the window, and the cursor
remembers which occurrences it reported for each series (``mapping.Cursor``), to report those
that a later change or deletion of the series removed (R7).
https://learn.microsoft.com/en-us/exchange/client-developer/exchange-web-services/how-to-synchronize-items-by-using-ews-in-exchange
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping

from calendarsync.providers.base import (
    AuthRevoked,
    Change,
    ChangePage,
    InsufficientPermissions,
    InvalidEvent,
    NotFound,
    TransientError,
)
from calendarsync.providers.exchange.errors import Operation, map_exchange_error
from calendarsync.providers.exchange.mapping import (
    EXCEPTION,
    OCCURRENCE,
    RECURRING_MASTER,
    Cursor,
    parse_item,
)
from calendarsync.providers.exchange.services import EwsCalls
from calendarsync.providers.redaction import redact

logger = logging.getLogger(__name__)


def full_listing(calls: EwsCalls, calendar_id: str, start: dt.datetime, end: dt.datetime) -> ChangePage:
    """Every event and occurrence of the window, and a cursor for what changes after."""
    # The sync state first: whatever changes while the view is read comes again next time.
    everything, state = calls.sync(calendar_id, None)
    masters = {str(item.uid): str(item.id) for _, item in everything if item.type == RECURRING_MASTER}
    in_view = calls.view(calendar_id, start, end)
    changes, series = read_changes(calls, [str(item.id) for item in in_view], masters)
    return ChangePage(changes=tuple(changes), cursor=Cursor(state, series).encode(), full_listing=True)


def incremental_listing(
    calls: EwsCalls, calendar_id: str, previous: Cursor, start: dt.datetime, end: dt.datetime
) -> ChangePage:
    """What changed since ``previous``: one SyncFolderItems when nothing did."""
    raw_changes, state = calls.sync(calendar_id, previous.sync_state)
    series = {master: list(ids) for master, ids in previous.series.items()}
    deleted: dict[str, None] = {}
    to_read: dict[str, None] = {}
    changed_masters: dict[str, str] = {}  # UID -> master id
    for change_type, item in raw_changes:
        item_id = str(item.id)
        if change_type == "delete":
            # A deleted series takes the occurrences we reported with it.
            deleted.update(dict.fromkeys(series.pop(item_id, []) or [item_id]))
            continue
        if change_type not in ("create", "update"):
            continue  # read-flag changes do not concern calendars
        if item.type == RECURRING_MASTER:
            changed_masters[str(item.uid)] = item_id
            if change_type == "update" and item_id not in series:
                # It may have been a single event before it became a series.
                deleted[item_id] = None
        else:
            # A series that lost its recurrence: its occurrences are gone.
            deleted.update(dict.fromkeys(series.pop(item_id, [])))
            to_read[item_id] = None
    if changed_masters:
        occurrences: dict[str, list[str]] = {master: [] for master in changed_masters.values()}
        for item in calls.view(calendar_id, start, end):
            master = changed_masters.get(str(item.uid)) if item.type in (OCCURRENCE, EXCEPTION) else None
            if master is not None:
                occurrences[master].append(str(item.id))
                to_read[str(item.id)] = None
        for master, now_listed in occurrences.items():
            deleted.update(dict.fromkeys(set(series.get(master, [])) - set(now_listed)))
    changes, read_series = read_changes(calls, list(to_read), changed_masters)
    for master in changed_masters.values():
        series.pop(master, None)
    series.update(read_series)
    live = {change.external_id for change in changes}
    tombstones = [
        Change(external_id=item_id, event=None, deleted=True) for item_id in deleted if item_id not in live
    ]
    return ChangePage(changes=(*changes, *tombstones), cursor=Cursor(state, series).encode())


def read_changes(
    calls: EwsCalls, item_ids: list[str], masters: Mapping[str, str]
) -> tuple[list[Change], dict[str, list[str]]]:
    """GetItem for the ids -> one upserted Change each (skipped ones say why), and series -> occurrences.

    A meeting copy its organizer cancelled (IsCancelled) is a deletion, its event attached.
    """
    changes: list[Change] = []
    series: dict[str, list[str]] = {}
    for item_id, result in zip(item_ids, calls.get_items(item_ids), strict=True):
        if isinstance(result, Exception):
            error = map_exchange_error(result, Operation.READ)
            if isinstance(error, NotFound):
                continue  # gone between the listing and the read: it comes as a deletion next time
            if isinstance(error, AuthRevoked | InsufficientPermissions | TransientError):
                raise error
            changes.append(Change(external_id=item_id, event=None, error=error.message, code=error.code))
            continue
        try:
            event = parse_item(result, series_ids=dict(masters), me=calls.email, owa_base=calls.owa_base)
        except InvalidEvent as exc:
            logger.warning("Skipping an unreadable Exchange item %s: %s", item_id, redact(exc.message))
            changes.append(Change(external_id=item_id, event=None, error=exc.message))
            continue
        if event.is_cancelled:
            changes.append(Change(external_id=event.external_id, event=event, deleted=True))
            continue
        if event.is_recurring_instance and event.series_id:
            series.setdefault(event.series_id, []).append(event.external_id)
        changes.append(Change(external_id=event.external_id, event=event))
    return changes, series
