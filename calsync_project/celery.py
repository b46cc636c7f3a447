"""The Celery application; tasks live in each app's ``tasks.py``."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, bootsteps

from calsync_project.checks import refuse_development_fallbacks

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "calsync_project.settings")


class RefuseDevelopmentFallbacks(bootsteps.Step):
    """A worker does not start while DEBUG is off and a development fallback is in use (issue #13)."""

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        refuse_development_fallbacks()
        super().__init__(parent, **kwargs)


app = Celery("calsync")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.steps["worker"].add(RefuseDevelopmentFallbacks)
app.autodiscover_tasks()
