"""Gunicorn's configuration, read from the working directory: the server refuses to start with
DEBUG off and a development fallback in use (issue #13), naming the variable."""

import os
from typing import Any

import django

from calsync_project.checks import refuse_development_fallbacks


def on_starting(server: Any) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "calsync_project.settings")
    django.setup()
    refuse_development_fallbacks()
