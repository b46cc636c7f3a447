"""The activities app's own bookkeeping, and what it announces to other apps.

- Every new company starts with the six default activity types (A2).
- A CRM change of a synced field (R8) stamps ``sync_changed_at`` and is announced with
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
from activities.tracking import TRACKED_FIELDS, engine_is_writing, remember, synced_fields_changed

# Sent after a commit-ready save with ``activity_ids``: a synced field of these activities changed.
activity_synced_fields_changed = Signal()

_CHANGED = "_calsync_changed"
# update_fields names that can carry a tracked change (``type`` for ``type_id``).
_TRACKED_NAMES = frozenset(TRACKED_FIELDS) | {"type"}


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
    if synced_fields_changed(instance):
        instance.sync_changed_at = timezone.now()
        setattr(instance, _CHANGED, True)


@receiver(post_save, sender=Activity, dispatch_uid="activities.announce_synced_change")
def announce_synced_change(
    sender: type[Activity], instance: Activity, raw: bool = False, update_fields: Any = None, **kwargs: Any
) -> None:
    changed = bool(instance.__dict__.pop(_CHANGED, False))
    remember(instance, update_fields)
    if raw or not changed or engine_is_writing():
        return
    if update_fields is not None and "sync_changed_at" not in update_fields:
        Activity.objects.filter(pk=instance.pk).update(sync_changed_at=instance.sync_changed_at)
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
    Activity.objects.filter(pk__in=activity_ids).update(sync_changed_at=timezone.now())
    activity_synced_fields_changed.send(sender=Activity, activity_ids=activity_ids)
