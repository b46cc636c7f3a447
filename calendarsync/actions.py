"""Every state change of a calendar account goes through a ``do_*`` function here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from calendarsync.crypto import Secret
from calendarsync.models import AccountState, CalendarAccount, Provider, RemoteCalendar
from calendarsync.providers.base import RemoteCalendarInfo

INSUFFICIENT_PERMISSIONS_HELP = (
    "CalSync was not allowed to use your calendar. Ask your IT admin to allow third-party "
    "calendar apps, then connect again and tick calendar access."
)


class AnotherAccountConnected(Exception):
    """C6: one account per user; stop syncing the current one before adding another."""

    def __init__(self, account: CalendarAccount) -> None:
        super().__init__(f"{account.email} is already connected")
        self.account = account


@transaction.atomic
def do_connect_account(
    *,
    acting_user: User,
    provider: Provider,
    email: str,
    credentials: Mapping[str, Any],
    calendars: Sequence[RemoteCalendarInfo],
    state: AccountState = AccountState.ACTIVE,
    state_detail: str = "",
) -> CalendarAccount:
    """Connect (or reconnect) ``acting_user``'s calendar account and store its calendars.

    Reconnecting the same provider account refreshes its credentials and state and keeps
    everything else; a different account while one is connected is refused (C6).
    """
    account = (
        CalendarAccount.objects.select_for_update().filter(user=acting_user, stopped_at__isnull=True).first()
    )
    if account is not None and (account.provider != provider or account.email.lower() != email.lower()):
        raise AnotherAccountConnected(account)
    if account is None:
        account = CalendarAccount(user=acting_user, provider=provider, email=email.lower())
    account.credentials = Secret(credentials)
    account.state = state
    account.state_detail = state_detail
    account.save()
    _store_calendars(account, calendars)
    return account


def _store_calendars(account: CalendarAccount, calendars: Sequence[RemoteCalendarInfo]) -> None:
    keep = [calendar.external_id for calendar in calendars]
    RemoteCalendar.objects.filter(account=account).exclude(external_id__in=keep).delete()
    for calendar in calendars:
        RemoteCalendar.objects.update_or_create(
            account=account,
            external_id=calendar.external_id,
            defaults={
                "name": calendar.name,
                "is_primary": calendar.is_primary,
                "can_write": calendar.can_write,
            },
        )


@transaction.atomic
def do_update_credentials(*, account_id: int, credentials: Mapping[str, Any]) -> None:
    """Persist refreshed tokens (the provider adapter calls this after a refresh)."""
    account = CalendarAccount.objects.select_for_update().get(pk=account_id)
    merged = dict(account.credentials or {})
    merged.update(credentials)
    account.credentials = Secret(merged)
    account.save(update_fields=["credentials"])


@transaction.atomic
def do_stop_sync(*, acting_user: User, account: CalendarAccount) -> None:
    """Disconnect: credentials are removed, activities and their links are kept (C6)."""
    account.credentials = None
    account.stopped_at = timezone.now()
    account.save(update_fields=["credentials", "stopped_at"])
