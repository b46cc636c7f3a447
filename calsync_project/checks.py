"""Production refuses the repository's development fallbacks (issue #13, finding 2).

``settings.py`` falls back to a published ``SECRET_KEY`` and Fernet key so that `make run` works on a
fresh clone, and `make run` sets ``OAUTHLIB_INSECURE_TRANSPORT`` for the plain-HTTP emulators. With
``DEBUG`` off none of them may be in use: ``manage.py check --deploy`` reports each as an error
(``check_development_fallbacks``), and the web application and the Celery worker refuse to start
(``refuse_development_fallbacks``), each message naming the variable to set.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

INSECURE_TRANSPORT_VARIABLE = "OAUTHLIB_INSECURE_TRANSPORT"
NEW_FERNET_KEY_COMMAND = (
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)
RANDOM_STRING_COMMAND = "python -c 'import secrets; print(secrets.token_urlsafe(50))'"


def _dev_secret_key() -> checks.Error | None:
    if settings.SECRET_KEY != settings.DEV_SECRET_KEY:
        return None
    return checks.Error(
        "SECRET_KEY is the repository's published development key, and DEBUG is off.",
        hint=f"Set SECRET_KEY to a long random value, e.g. from: {RANDOM_STRING_COMMAND}",
        id="calsync.E001",
    )


def _dev_fernet_key() -> checks.Error | None:
    if settings.DEV_FERNET_KEY not in settings.FIELD_ENCRYPTION_KEYS:
        return None
    return checks.Error(
        "FIELD_ENCRYPTION_KEYS holds the repository's published development Fernet key, and DEBUG is "
        "off: stored calendar credentials would be readable by anyone.",
        hint=f"Set FIELD_ENCRYPTION_KEYS to a key of your own, e.g. from: {NEW_FERNET_KEY_COMMAND}",
        id="calsync.E002",
    )


def _insecure_transport() -> checks.Error | None:
    # oauthlib allows plain HTTP whenever the variable is non-empty, whatever its value ("0" too).
    if not os.environ.get(INSECURE_TRANSPORT_VARIABLE):
        return None
    return checks.Error(
        f"{INSECURE_TRANSPORT_VARIABLE} is set, and DEBUG is off: OAuth codes and tokens could travel "
        "over plain HTTP.",
        hint=f"Unset {INSECURE_TRANSPORT_VARIABLE}; it is for the local emulators only.",
        id="calsync.E003",
    )


def development_fallbacks_in_use() -> list[checks.Error]:
    """Every development fallback in use while DEBUG is off (none while DEBUG is on)."""
    if settings.DEBUG:
        return []
    found = (_dev_secret_key(), _dev_fernet_key(), _insecure_transport())
    return [error for error in found if error is not None]


def check_development_fallbacks(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """The system check behind ``manage.py check --deploy`` (registered in ``CalSyncProjectConfig``)."""
    return list(development_fallbacks_in_use())


def refuse_development_fallbacks() -> None:
    """Start-up of the web application and the worker: stop, naming every fallback still in use."""
    errors = development_fallbacks_in_use()
    if errors:
        reasons = "".join(f"\n- {error.msg} {error.hint}" for error in errors)
        raise ImproperlyConfigured(f"CalSync refuses to start with development settings:{reasons}")
