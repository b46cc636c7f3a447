"""Which activity fields the calendar sync watches (R8), and whether they changed since loading.

``activities.signals`` remembers these values when an activity is loaded (``post_init``),
compares them on save, stamps ``sync_changed_at`` and, per changed field, ``sync_field_changed_at``
(R11: a conflict goes to the later edit of that field), and announces the change with
``synced_fields_changed``; the calendar sync listens. The sync engine writes activities inside
``engine_writes()``, so what it pulled from the calendar is never seen as a CRM change and
pushed back (no echo).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from activities.models import Activity

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
    # R13: a new owner ends the link with the old owner's calendar and is due for the new one's.
    "owner_id",
    # M4: asking for a video call is sent to the calendar.
    "video_call",
)
# The m2m field watched through m2m_changed; its change time is kept under this name.
PARTICIPANTS = "participants"
_ORIGINAL = "_calsync_original"
_ATTNAMES = {"type": "type_id", "owner": "owner_id"}
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


def changed_synced_fields(activity: Activity, saved_fields: Iterable[str] | None = None) -> list[str]:
    """The watched fields changed since loading, of ``saved_fields`` if given (all loaded ones of a
    new activity, or of one not loaded through the ORM)."""
    current = tracked_values(activity)
    original: dict[str, Any] | None = getattr(activity, _ORIGINAL, None)
    if activity._state.adding or activity.pk is None or original is None:
        changed = list(current)
    else:
        changed = [name for name, value in original.items() if name in current and current[name] != value]
    if saved_fields is not None:
        saved = {_ATTNAMES.get(name, name) for name in saved_fields}
        changed = [name for name in changed if name in saved]
    return changed


def stamp_fields(activity: Activity, names: Iterable[str], moment: dt.datetime) -> dict[str, str]:
    """Record ``moment`` as the last CRM change of each of ``names`` (in memory; returns the stamps)."""
    stamps = dict(activity.sync_field_changed_at) if isinstance(activity.sync_field_changed_at, dict) else {}
    stamps.update(dict.fromkeys(names, moment.isoformat()))
    activity.sync_field_changed_at = stamps
    return stamps


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
