"""Which activity fields the calendar sync watches (R8), whether they changed since loading, and
the sync status a CRM save gives an activity before any sync run (R2, R9).

``calendarsync.signals`` remembers these values when an activity is loaded (``post_init``) and
compares them on save: only a change to one of them schedules a push. The sync engine itself
writes activities inside ``engine_writes()``, so what it pulled from the calendar is never seen
as a CRM change and pushed back (no echo).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any

from activities.models import Activity, SyncStatus
from calendarsync.mapping import activity_time, is_past

# The reasons the push gives for the same decisions (calendarsync.push), so the badge says the
# same thing before and after the next run.
PAST_REASON = "In the past: not synced"

# R8: subject, type, due date or time, duration, location, description (note), guests; the
# participants are watched through m2m_changed. Busy/free and visibility go to the event too.
TRACKED_FIELDS = (
    "subject",
    "type_id",
    "due_date",
    "start_at",
    "duration",
    "location",
    "note",
    "guests",
    "busy",
    "visibility",
)
_ORIGINAL = "_calsync_original"
_ATTNAMES = {"type": "type_id"}
_engine_writing: ContextVar[bool] = ContextVar("calsync_engine_writing", default=False)


def tracked_values(activity: Activity) -> dict[str, Any]:
    """The watched values that are loaded (deferred fields are left out, never fetched)."""
    loaded = activity.__dict__
    values = {name: loaded[name] for name in TRACKED_FIELDS if name in loaded}
    if isinstance(values.get("guests"), list):
        values["guests"] = list(values["guests"])
    return values


def remember(activity: Activity, saved_fields: Iterable[str] | None = None) -> None:
    """Take the current values as the baseline (after a save: only of the fields it saved)."""
    current = tracked_values(activity)
    if saved_fields is not None:
        names = {_ATTNAMES.get(name, name) for name in saved_fields}
        original: dict[str, Any] = dict(getattr(activity, _ORIGINAL, None) or {})
        original.update({name: value for name, value in current.items() if name in names})
        current = original
    setattr(activity, _ORIGINAL, current)


def synced_fields_changed(activity: Activity) -> bool:
    """Has a watched field changed since the activity was loaded (always True for a new one)?"""
    if activity._state.adding or activity.pk is None:
        return True
    original: dict[str, Any] | None = getattr(activity, _ORIGINAL, None)
    if original is None:
        return True  # not loaded through the ORM: assume it changed
    current = tracked_values(activity)
    return any(name in current and current[name] != value for name, value in original.items())


@contextlib.contextmanager
def engine_writes() -> Iterator[None]:
    """Saves and deletes made inside are the sync engine's own: the signals leave them alone."""
    token = _engine_writing.set(True)
    try:
        yield
    finally:
        _engine_writing.reset(token)


def engine_is_writing() -> bool:
    return _engine_writing.get()


def type_not_sent_reason(activity: Activity) -> str:
    return f"Activity type {activity.type} is not sent to the calendar"


def status_at_save(
    activity: Activity, *, now: dt.datetime, tz: dt.tzinfo, type_selected: bool, linked: bool
) -> tuple[SyncStatus, str]:
    """What a CRM save makes of the sync status of ``activity`` (owned by a user whose sync runs).

    Known at once: an unlinked item that has already ended is not synced (R2, judged like the
    engine does, by the owner's ``tz``), nor one of a type not sent to the calendar (O3). A linked
    item stays pending whatever changed: the next run mirrors or settles it and says so (R6, R15).
    """
    if linked:
        return SyncStatus.PENDING, ""
    if is_past({"time": activity_time(activity)}, now, tz):
        return SyncStatus.SKIPPED, PAST_REASON
    if not type_selected:
        return SyncStatus.SKIPPED, type_not_sent_reason(activity)
    return SyncStatus.PENDING, ""
