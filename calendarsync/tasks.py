"""Thin Celery tasks: ids in, call an action or the engine, record the result."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from calendarsync.models import Heartbeat


@shared_task(name="calendarsync.tasks.heartbeat")
def heartbeat(name: str = "beat") -> str:
    """Proves beat -> broker -> worker -> database works end to end."""
    now = timezone.now()
    Heartbeat.objects.update_or_create(name=name, defaults={"beat_at": now})
    return now.isoformat()
