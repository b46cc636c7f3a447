"""Credential encryption at rest (C7): MultiFernet over FIELD_ENCRYPTION_KEYS.

The first key encrypts; every key decrypts, so keys rotate by prepending a new one
and running ``manage.py rotate_credentials``.

Credentials no key decrypts (a key retired before the rotation ran) load as an empty
``UnreadableSecret``, never as an error: a page that happens to load the account still works,
the sync finds nothing to sign in with and asks the user to reconnect, and the ciphertext is
written back unchanged should the row be saved (the old key may yet be restored).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

logger = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt_text(plain: str) -> str:
    return fernet().encrypt(plain.encode()).decode()


def decrypt_text(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValidationError("Stored credentials cannot be decrypted with FIELD_ENCRYPTION_KEYS") from exc


def rotate_text(token: str) -> str:
    return fernet().rotate(token.encode()).decode()


class Secret(dict[str, Any]):
    """A credentials dict whose repr never shows its values (logs, error pages)."""

    def __repr__(self) -> str:
        return f"<Secret keys={sorted(self)}>"

    __str__ = __repr__


class UnreadableSecret(Secret):
    """Stored credentials that no key of FIELD_ENCRYPTION_KEYS decrypts: empty, the ciphertext kept."""

    def __init__(self, ciphertext: str = "") -> None:
        super().__init__()
        self.ciphertext = ciphertext

    def __repr__(self) -> str:
        return "<UnreadableSecret>"

    __str__ = __repr__


class EncryptedJSONField(models.Field[Mapping[str, Any] | None, Secret | None]):
    """Stores a JSON object encrypted in a text column; the Python value is a ``Secret`` dict."""

    def get_internal_type(self) -> str:
        return "TextField"

    description = "Encrypted JSON object"

    def from_db_value(self, value: str | None, expression: object, connection: object) -> Secret | None:
        if value is None or value == "":
            return None
        try:
            return Secret(json.loads(decrypt_text(value)))
        except ValidationError:
            logger.error("Stored credentials cannot be decrypted with any key of FIELD_ENCRYPTION_KEYS")
            return UnreadableSecret(value)

    def to_python(self, value: Any) -> Secret | None:
        if value is None or isinstance(value, Secret):
            return value
        if isinstance(value, dict):
            return Secret(value)
        return Secret(json.loads(decrypt_text(str(value))))

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, UnreadableSecret):
            return value.ciphertext
        return encrypt_text(json.dumps(dict(value), sort_keys=True))

    def value_to_string(self, obj: models.Model) -> str:
        # Serialisation (dumpdata) keeps the ciphertext, never the plain value.
        value = self.value_from_object(obj)
        return self.get_prep_value(value) or ""
