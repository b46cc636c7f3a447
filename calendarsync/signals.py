"""CRM edits that matter to the calendar schedule a push (R8); CRM deletions delete the event (R3).

Connected in ``CalendarsyncConfig.ready()``. The sync engine's own writes run inside
``tracking.engine_writes()`` and are ignored here, so nothing it pulled is pushed back.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Case, Exists, OuterRef, Q, Value, When
from django.db.models.signals import m2m_changed, post_init, post_save, pre_delete, pre_save
from django.dispatch import receiver
from django.utils import timezone

from activities.models import Activity
from calendarsync.models import CalendarAccount, EventLink, LinkOrigin, LinkState, SyncPreferences
from calendarsync.tracking import (
    TRACKED_FIELDS,
    engine_is_writing,
    remember,
    status_at_save,
    synced_fields_changed,
)

_CHANGED = "_calsync_changed"
# What status_at_save reads: the activity's time, its owner's time zone, its type's name.
_STATUS_FIELDS = ("due_date", "start_at", "duration", "owner__time_zone", "type__name", "type__is_active")
# update_fields names that can carry a tracked change (``type`` for ``type_id``).
_TRACKED_NAMES = frozenset(TRACKED_FIELDS) | {"type"}


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
    from calendarsync.tasks import request_sync

    now = timezone.now()
    activities = (
        Activity.objects.filter(pk__in=activity_ids).select_related("owner", "type").only(*_STATUS_FIELDS)
    )
    requested: set[int] = set()
    for activity in activities:
        account = _syncing_account_of(activity.owner_id, activity.pk, activity.type_id)
        if account is None:
            continue
        status, reason = status_at_save(
            activity,
            now=now,
            tz=activity.owner.tzinfo,
            type_selected=account["type_selected"],
            linked=account["linked"],
        )
        Activity.objects.filter(pk=activity.pk).update(
            sync_status=status, sync_error=reason, calendar_account_id=account["pk"]
        )
        if account["pk"] not in requested:
            requested.add(account["pk"])
            request_sync(account["pk"])


@receiver(post_init, sender=Activity, dispatch_uid="calendarsync.remember_synced_fields")
def remember_synced_fields(sender: type[Activity], instance: Activity, **kwargs: Any) -> None:
    remember(instance)


@receiver(pre_save, sender=Activity, dispatch_uid="calendarsync.stamp_synced_change")
def stamp_synced_change(
    sender: type[Activity], instance: Activity, raw: bool = False, update_fields: Any = None, **kwargs: Any
) -> None:
    if raw or engine_is_writing():
        return
    if update_fields is not None and not (set(update_fields) & _TRACKED_NAMES):
        return
    if synced_fields_changed(instance):
        instance.sync_changed_at = timezone.now()
        setattr(instance, _CHANGED, True)


@receiver(post_save, sender=Activity, dispatch_uid="calendarsync.schedule_push")
def schedule_push(
    sender: type[Activity], instance: Activity, raw: bool = False, update_fields: Any = None, **kwargs: Any
) -> None:
    changed = bool(instance.__dict__.pop(_CHANGED, False))
    remember(instance, update_fields)
    if raw or not changed or engine_is_writing():
        return
    if update_fields is not None and "sync_changed_at" not in update_fields:
        Activity.objects.filter(pk=instance.pk).update(sync_changed_at=instance.sync_changed_at)
    _changed_for_sync([instance.pk])


@receiver(m2m_changed, sender=Activity.participants.through, dispatch_uid="calendarsync.participants")
def participants_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: set[int] | None, **kwargs: Any
) -> None:
    if action not in ("post_add", "post_remove", "post_clear") or engine_is_writing():
        return
    activity_ids = list(pk_set or []) if reverse else [instance.pk]
    if not activity_ids:
        return
    Activity.objects.filter(pk__in=activity_ids).update(sync_changed_at=timezone.now())
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
    marked = EventLink.objects.filter(activity_id=instance.pk, state=LinkState.ACTIVE).update(
        state=Case(
            When(
                Q(origin=LinkOrigin.CRM, is_recurring_instance=False) & ~type_selected,
                then=Value(LinkState.DETACHED),
            ),
            default=Value(LinkState.DELETE_PENDING),
        )
    )
    if marked:
        from calendarsync.tasks import request_sync

        for account_id in CalendarAccount.objects.filter(
            event_links__activity_id=instance.pk, stopped_at__isnull=True
        ).values_list("pk", flat=True):
            request_sync(account_id)
