"""The sync status a CRM save gives an activity before any sync run (R2, R9).

The reasons are the push's own (``push.py`` uses the same texts), so the badge says the same
thing before and after the next run.
"""

from __future__ import annotations

import datetime as dt

from activities.models import Activity, SyncStatus
from calendarsync.sync.mapping import activity_time, is_past
from calendarsync.sync.reasons import Reason

PAST_REASON = "In the past: not synced"


def type_not_sent_reason(activity: Activity) -> str:
    return f"Activity type {activity.type} is not sent to the calendar"


def status_at_save(
    activity: Activity, *, now: dt.datetime, tz: dt.tzinfo, type_selected: bool, linked: bool
) -> tuple[SyncStatus, Reason, str]:
    """What a CRM save makes of the sync status of ``activity`` (owned by a user whose sync runs).

    Known at once: an unlinked item that has already ended is not synced (R2, judged like the
    engine does, by the owner's ``tz``), nor one of a type not sent to the calendar (O3). A linked
    item stays pending whatever changed: the next run mirrors or settles it and says so (R6, R15).
    """
    if linked:
        return SyncStatus.PENDING, Reason.PENDING, ""
    if is_past({"time": activity_time(activity)}, now, tz):
        return SyncStatus.SKIPPED, Reason.PAST, PAST_REASON
    if not type_selected:
        return SyncStatus.SKIPPED, Reason.TYPE_NOT_SENT, type_not_sent_reason(activity)
    return SyncStatus.PENDING, Reason.PENDING, ""
