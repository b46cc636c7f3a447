"""Every new company starts with the six default activity types (A2)."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts.models import Company
from activities.models import DEFAULT_ACTIVITY_TYPES, ActivityType


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
