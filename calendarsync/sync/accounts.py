"""A stored account's provider adapter, with refreshed tokens saved back encrypted (C7)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from calendarsync.crypto import Secret, UnreadableSecret
from calendarsync.models import CalendarAccount
from calendarsync.providers.base import AuthRevoked, CalendarProvider
from calendarsync.providers.registry import build_provider

CREDENTIALS_UNREADABLE = (
    "CalSync can no longer read the sign-in it stored for this calendar account (it was encrypted "
    "with a key that is no longer configured). Reconnect the account to resume syncing."
)


class CredentialsUnreadable(AuthRevoked):
    """No FIELD_ENCRYPTION_KEYS key decrypts the stored credentials (one was retired too early)."""


@transaction.atomic
def store_refreshed_tokens(*, account_id: int, credentials: Mapping[str, Any]) -> None:
    """Persist refreshed tokens, merged into what is stored (the adapter calls back after a refresh)."""
    account = CalendarAccount.objects.select_for_update().get(pk=account_id)
    if account.stopped_at is not None:
        return  # stopped meanwhile: its credentials were removed on purpose (C6)
    merged = dict(account.credentials or {})
    merged.update(credentials)
    account.credentials = Secret(merged)
    account.save(update_fields=["credentials"])


def provider_for(account: CalendarAccount) -> CalendarProvider:
    """The adapter of ``account``; ``KeyError`` for a provider we cannot sync yet.

    ``CredentialsUnreadable`` (the user reconnects, nothing is deleted) when no key decrypts them.
    """
    if isinstance(account.credentials, UnreadableSecret):
        raise CredentialsUnreadable(CREDENTIALS_UNREADABLE)
    account_id = account.pk

    def save_tokens(tokens: dict[str, Any]) -> None:
        account.credentials = Secret({**(account.credentials or {}), **tokens})
        store_refreshed_tokens(account_id=account_id, credentials=tokens)

    return build_provider(account.provider, account.credentials, save_tokens=save_tokens)
