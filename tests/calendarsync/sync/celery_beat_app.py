"""The project's Celery app with the sync beat entry on a one-second schedule (worker test only).

Production runs the same task every minute from ``CELERY_BEAT_SCHEDULE`` in settings.
"""

from __future__ import annotations

from calsync_project.celery import app

app.conf.beat_schedule = {
    "enqueue-due-syncs": {"task": "calendarsync.tasks.enqueue_due_syncs", "schedule": 1.0},
}

__all__ = ["app"]
