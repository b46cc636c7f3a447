"""The project's own app: registers the deploy checks of calsync_project.checks."""

from __future__ import annotations

from django.apps import AppConfig
from django.core import checks

from calsync_project.checks import check_development_fallbacks


class CalSyncProjectConfig(AppConfig):
    name = "calsync_project"
    verbose_name = "CalSync project"

    def ready(self) -> None:
        checks.register(check_development_fallbacks, checks.Tags.security, deploy=True)
