"""CRM edits that matter to the calendar schedule a push (R8); CRM deletions delete the event (R3).

Connected in ``CalendarsyncConfig.ready()``. The activities app announces synced-field changes
with ``activity_synced_fields_changed`` (it knows nothing of this app); the sync engine's own
writes run inside ``activities.tracking.engine_writes()`` and are never announced.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Case, Exists, OuterRef, Q, Value, When
from django.db.models.signals import post_save, pre_delete
from django.dispatch import receiver
from django.utils import timezone

from activities.models import Activity, Deal, Organization, Person
from activities.signals import activity_synced_fields_changed
from activities.tracking import engine_is_writing
from calendarsync.models import CalendarAccount, EventLink, LinkOrigin, LinkRole, LinkState, SyncPreferences
from calendarsync.sync.save_status import status_at_save
from calendarsync.tasks import request_sync

# What status_at_save reads: the activity's time, its owner's time zone, its type's name.
_STATUS_FIELDS = ("due_date", "start_at", "duration", "owner__time_zone", "type__name", "type__is_active")


def _selected_types() -> Any:
    return SyncPreferences.outgoing_types.through.objects.filter(syncpreferences__account_id=OuterRef("pk"))


def _syncing_account_of(owner_id: int, activity_id: int, type_id: int) -> dict[str, Any] | None:
    """The owner's account with a started sync, if any, and whether this activity would sync."""
    return (
        CalendarAccount.objects.filter(
            user_id=owner_id,
            stopped_at__isnull=True,
            preferences__sync_started_at__isnull=False,
            preferences__sync_stopped_at__isnull=True,
        )
        .annotate(
            type_selected=Exists(_selected_types().filter(activitytype_id=type_id)),
            linked=Exists(
                EventLink.objects.filter(
                    account_id=OuterRef("pk"), activity_id=activity_id, state=LinkState.ACTIVE
                )
            ),
        )
        .values("pk", "type_selected", "linked")
        .first()
    )


def _changed_for_sync(activity_ids: list[int]) -> None:
    """Give the activities the sync status known now (R2, R9) and queue their owners' syncs (R8).

    "Now" is an aware instant; an all-day item's day is judged in its owner's time zone, the
    one the sync works in, never the server's or the editing user's.
    """
    now = timezone.now()
    activities = (
        Activity.objects.filter(pk__in=activity_ids)
        .select_related("owner", "type", "calendar_account")
        .only(*_STATUS_FIELDS, "calendar_account__user_id")
    )
    requested: set[int] = set()
    for activity in activities:
        for account_id in _follow_owner(activity):
            if account_id not in requested:
                requested.add(account_id)
                request_sync(account_id)
        account = _syncing_account_of(activity.owner_id, activity.pk, activity.type_id)
        if account is None:
            if (
                activity.calendar_account is not None
                and activity.calendar_account.user_id != activity.owner_id
            ):
                # R13: given to a user without sync: no longer part of anyone's sync.
                Activity.objects.filter(pk=activity.pk).update(
                    sync_status=None, sync_error="", sync_code="", calendar_account=None
                )
            continue
        status, code, reason = status_at_save(
            activity,
            now=now,
            tz=activity.owner.tzinfo,
            type_selected=account["type_selected"],
            linked=account["linked"],
        )
        Activity.objects.filter(pk=activity.pk).update(
            sync_status=status,
            sync_error=reason,
            sync_code=code,
            sync_status_at=now,
            calendar_account_id=account["pk"],
        )
        if account["pk"] not in requested:
            requested.add(account["pk"])
            request_sync(account["pk"])


def _follow_owner(activity: Activity) -> list[int]:
    """R13: the activity's links follow its owner; returns the accounts whose sync must act on it.

    A link with another user's calendar ends: its event is deleted by that account's next sync
    (an occurrence of a series is only detached, R14), whose pull no longer applies anything to
    the activity. The ended link keeps no activity (like a CRM deletion's): given back later, the
    activity gets a link and an event of its own, and the old event still goes.
    """
    # A colleague's copy of a shared meeting is not the owner's to follow (M1).
    links = list(
        EventLink.objects.filter(activity_id=activity.pk, state=LinkState.ACTIVE, role=LinkRole.OWN)
        .exclude(account__user_id=activity.owner_id)
        .values("pk", "is_recurring_instance", "account_id", "account__stopped_at")
    )
    if not links:
        return []
    for recurring, state in ((True, LinkState.DETACHED), (False, LinkState.DELETE_PENDING)):
        pks = [link["pk"] for link in links if link["is_recurring_instance"] == recurring]
        if pks:
            EventLink.objects.filter(pk__in=pks).update(state=state, activity=None)
    return [
        link["account_id"]
        for link in links
        if link["account__stopped_at"] is None and not link["is_recurring_instance"]
    ]


@receiver(activity_synced_fields_changed, sender=Activity, dispatch_uid="calendarsync.schedule_push")
def schedule_push(sender: type[Activity], activity_ids: list[int], **kwargs: Any) -> None:
    _changed_for_sync(activity_ids)


@receiver(pre_delete, sender=Activity, dispatch_uid="calendarsync.delete_event_with_activity")
def delete_event_with_activity(sender: type[Activity], instance: Activity, **kwargs: Any) -> None:
    """R3: the next sync deletes the event. R6: an event of a deselected type is left in place."""
    if engine_is_writing():
        return
    type_selected = Exists(
        SyncPreferences.outgoing_types.through.objects.filter(
            syncpreferences__account_id=OuterRef("account_id"), activitytype_id=instance.type_id
        )
    )
    # A colleague's copy of a shared meeting is theirs: only the link goes (M2); the organizer's
    # deletion cancels the meeting for every guest, mailed if the owner wants it (O11).
    EventLink.objects.filter(activity_id=instance.pk, role=LinkRole.ATTENDEE).delete()
    marked = EventLink.objects.filter(activity_id=instance.pk, state=LinkState.ACTIVE).update(
        notify_guests=True,
        state=Case(
            When(
                Q(origin=LinkOrigin.CRM, is_recurring_instance=False) & ~type_selected,
                then=Value(LinkState.DETACHED),
            ),
            default=Value(LinkState.DELETE_PENDING),
        ),
    )
    if marked:
        for account_id in CalendarAccount.objects.filter(
            event_links__activity_id=instance.pk, stopped_at__isnull=True
        ).values_list("pk", flat=True):
            request_sync(account_id)


@receiver(post_save, sender=Deal, dispatch_uid="calendarsync.deal_details_changed")
@receiver(post_save, sender=Person, dispatch_uid="calendarsync.person_details_changed")
@receiver(post_save, sender=Organization, dispatch_uid="calendarsync.organization_details_changed")
def linked_item_changed(sender: type[Any], instance: Any, created: bool, **kwargs: Any) -> None:
    """O7: the details block of the events of activities linked to this deal, person or
    organization may change (a new name, or the item made owner-only): the next push rewrites
    their descriptions (only where the block really changed, so nothing else is written)."""
    if created or engine_is_writing():
        return
    field = {Deal: "deal", Person: "person", Organization: "organization"}[sender]
    ids = list(
        Activity.objects.filter(
            **{field: instance},
            event_links__state=LinkState.ACTIVE,
            event_links__role=LinkRole.OWN,
        )
        .values_list("pk", flat=True)
        .distinct()
    )
    if ids:
        Activity.objects.filter(pk__in=ids).update(sync_changed_at=timezone.now())
        _changed_for_sync(ids)
