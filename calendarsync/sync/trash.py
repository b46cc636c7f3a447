"""Activities removed because their event was deleted in the calendar (R3) go to a trash first.

``move_to_trash`` keeps a JSON copy of the activity; ``restore`` (an admin action) brings it
back. A restored activity is saved like any user edit, so the sync sends it to the calendar
again as a new event.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from activities.models import Activity, ActivityType, Deal, Organization, Person
from activities.tracking import engine_writes
from calendarsync.models import ActivityTrash, CalendarAccount

# Restored from the copy; everything else (sync bookkeeping, timestamps) starts afresh.
_COPIED_FIELDS = (
    "company_id",
    "owner_id",
    "type_id",
    "subject",
    "due_date",
    "start_at",
    "duration",
    "location",
    "note",
    "guests",
    "deal_id",
    "person_id",
    "organization_id",
    "done",
    "busy",
    "visibility",
)


def _to_json(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return value


def activity_copy(activity: Activity) -> dict[str, Any]:
    data = {name: _to_json(getattr(activity, name)) for name in _COPIED_FIELDS}
    data["participant_ids"] = sorted(p.pk for p in activity.participants.all())
    return data


def move_to_trash(activity: Activity, account: CalendarAccount, reason: str) -> ActivityTrash:
    """Copy ``activity`` into the trash and delete it (inside the caller's transaction)."""
    entry = ActivityTrash.objects.create(
        company_id=activity.company_id,
        owner_id=activity.owner_id,
        account=account,
        activity_id=activity.pk,
        subject=activity.subject,
        data=activity_copy(activity),
        reason=reason,
    )
    with engine_writes():
        activity.delete()
    return entry


@transaction.atomic
def restore(entry: ActivityTrash) -> Activity:
    """Recreate the activity from its copy; links to deleted deals/persons/types are dropped."""
    if entry.restored_at is not None and entry.restored_activity is not None:
        return entry.restored_activity
    data = dict(entry.data)
    fields: dict[str, Any] = {name: data.get(name) for name in _COPIED_FIELDS}
    fields["due_date"] = dt.date.fromisoformat(fields["due_date"])
    if fields["start_at"]:
        fields["start_at"] = dt.datetime.fromisoformat(fields["start_at"])
    if fields["duration"] is not None:
        fields["duration"] = dt.timedelta(seconds=float(fields["duration"]))
    for name, model in (("deal_id", Deal), ("person_id", Person), ("organization_id", Organization)):
        if fields[name] is not None and not model.objects.filter(pk=fields[name]).exists():
            fields[name] = None
    if not ActivityType.objects.filter(pk=fields["type_id"]).exists():
        raise ValueError("The activity's type no longer exists")
    # The old id when it is free, so links and bookmarks to it work again.
    if not Activity.objects.filter(pk=entry.activity_id).exists():
        fields["id"] = entry.activity_id
    activity = Activity.objects.create(**fields)
    participants = Person.objects.filter(pk__in=data.get("participant_ids") or [])
    activity.participants.set(participants)
    entry.restored_at = timezone.now()
    entry.restored_activity = activity
    entry.save(update_fields=["restored_at", "restored_activity"])
    return activity
