"""The activities app's own bookkeeping, and what it announces to other apps.

- Every new company starts with the six default activity types (A2).
- A CRM change of a synced field (R8) stamps ``sync_changed_at``, and the change time of each
  changed field in ``sync_field_changed_at`` (R11), and is announced with
  ``synced_fields_changed`` (``activity_ids``): the calendar sync listens, this app knows
  nothing of it. Writes made inside ``tracking.engine_writes()`` (the sync's own) are not
  announced, so nothing pulled from a calendar is pushed back.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import m2m_changed, post_init, post_save, pre_save
from django.dispatch import Signal, receiver
from django.utils import timezone

from accounts.models import Company
from activities.models import DEFAULT_ACTIVITY_TYPES, Activity, ActivityType
from activities.tracking import (
    PARTICIPANTS,
    TRACKED_FIELDS,
    changed_synced_fields,
    engine_is_writing,
    remember,
    stamp_fields,
)

# Sent after a commit-ready save with ``activity_ids``: a synced field of these activities changed.
activity_synced_fields_changed = Signal()

_CHANGED = "_calsync_changed"
# update_fields names that can carry a tracked change (``type`` for ``type_id``).
_TRACKED_NAMES = frozenset(TRACKED_FIELDS) | {"type", "owner"}


@receiver(post_save, sender=Company, dispatch_uid="activities.default_types")
def create_default_activity_types(
    sender: type[Company], instance: Company, created: bool, **kwargs: Any
) -> None:
    if not created or kwargs.get("raw"):
        return
    ActivityType.objects.bulk_create(
        [
            ActivityType(company=instance, name=name, icon=icon, color=color, is_default=True, order=index)
            for index, (name, icon, color) in enumerate(DEFAULT_ACTIVITY_TYPES)
        ],
        ignore_conflicts=True,
    )


@receiver(post_init, sender=Activity, dispatch_uid="activities.remember_synced_fields")
def remember_synced_fields(sender: type[Activity], instance: Activity, **kwargs: Any) -> None:
    remember(instance)


@receiver(pre_save, sender=Activity, dispatch_uid="activities.stamp_synced_change")
def stamp_synced_change(
    sender: type[Activity], instance: Activity, raw: bool = False, update_fields: Any = None, **kwargs: Any
) -> None:
    if raw or engine_is_writing():
        return
    if update_fields is not None and not (set(update_fields) & _TRACKED_NAMES):
        return
    changed = changed_synced_fields(instance, update_fields)
    if changed:
        instance.sync_changed_at = timezone.now()
        stamp_fields(instance, changed, instance.sync_changed_at)
        setattr(instance, _CHANGED, True)


@receiver(post_save, sender=Activity, dispatch_uid="activities.announce_synced_change")
def announce_synced_change(
    sender: type[Activity], instance: Activity, raw: bool = False, update_fields: Any = None, **kwargs: Any
) -> None:
    changed = bool(instance.__dict__.pop(_CHANGED, False))
    remember(instance, update_fields)
    if raw or not changed or engine_is_writing():
        return
    if update_fields is not None and not {"sync_changed_at", "sync_field_changed_at"} <= set(update_fields):
        Activity.objects.filter(pk=instance.pk).update(
            sync_changed_at=instance.sync_changed_at, sync_field_changed_at=instance.sync_field_changed_at
        )
    activity_synced_fields_changed.send(sender=Activity, activity_ids=[instance.pk])


@receiver(m2m_changed, sender=Activity.participants.through, dispatch_uid="activities.participants")
def participants_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: set[int] | None, **kwargs: Any
) -> None:
    if action not in ("post_add", "post_remove", "post_clear") or engine_is_writing():
        return
    activity_ids = list(pk_set or []) if reverse else [instance.pk]
    if not activity_ids:
        return
    moment = timezone.now()
    if not reverse:
        # The activity in hand holds its latest stamps (a form saves it, then its participants).
        instance.sync_changed_at = moment
        stamps = stamp_fields(instance, [PARTICIPANTS], moment)
        Activity.objects.filter(pk=instance.pk).update(sync_changed_at=moment, sync_field_changed_at=stamps)
    else:
        for activity in Activity.objects.filter(pk__in=activity_ids).only("pk", "sync_field_changed_at"):
            stamps = stamp_fields(activity, [PARTICIPANTS], moment)
            Activity.objects.filter(pk=activity.pk).update(
                sync_changed_at=moment, sync_field_changed_at=stamps
            )
    activity_synced_fields_changed.send(sender=Activity, activity_ids=activity_ids)
