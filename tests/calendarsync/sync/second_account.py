"""A second user with their own calendar account, on the same provider emulator as ``sync_env``.

``second_env(sync_env, request, user)`` adds a mailbox for ``user`` to the emulator under test,
issues its credentials and returns a ``SyncEnv`` for it: two users, two accounts, two calendars.
"""

from __future__ import annotations

import datetime as dt

import pytest

from accounts.models import User
from calendarsync.models import Provider
from tests.calendarsync.sync.conftest import GoogleCalendarControl, SyncEnv, SyncSetup
from tests.calendarsync.sync.exchange_setup import ExchangeCalendarControl
from tests.calendarsync.sync.microsoft_setup import MicrosoftCalendarControl

SECOND_PASSWORD = "second-password-1"


def _tokens(issued: dict[str, object], scopes: list[str]) -> dict[str, object]:
    expires_in = issued.get("expires_in", 3600)
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=int(str(expires_in)))
    return {
        "access_token": issued["access_token"],
        "refresh_token": issued["refresh_token"],
        "expiry": expiry.isoformat(),
        "scopes": scopes,
    }


def second_setup(first: SyncSetup, request: pytest.FixtureRequest, email: str) -> SyncSetup:
    """``first``'s provider, for another mailbox ``email`` (the same adapter factory)."""
    from django.conf import settings

    if first.provider == Provider.GOOGLE:
        running = request.getfixturevalue("google_emulator")
        running.emulator.add_user(email)
        scopes = list(settings.GOOGLE_SCOPES)
        issued = running.emulator.issue_tokens(email, scopes, settings.GOOGLE_CLIENT_ID)
        google = GoogleCalendarControl(running.emulator, email)
        return SyncSetup(
            email=email,
            calendar_id=google.calendar_id,
            credentials=_tokens(issued, scopes),
            provider_factory=first.provider_factory,
            control=google,
            sleeps=first.sleeps,
            provider=first.provider,
        )
    if first.provider == Provider.MICROSOFT:
        running = request.getfixturevalue("microsoft_emulator")
        running.emulator.add_user(email)
        scopes = list(settings.MICROSOFT_SCOPES)
        issued = running.emulator.issue_tokens(email, scopes, settings.MICROSOFT_CLIENT_ID)
        microsoft = MicrosoftCalendarControl(running.emulator, email)
        return SyncSetup(
            email=email,
            calendar_id=microsoft.calendar_id,
            credentials=_tokens(issued, scopes),
            provider_factory=first.provider_factory,
            control=microsoft,
            sleeps=first.sleeps,
            provider=first.provider,
        )
    running = request.getfixturevalue("exchange_emulator")
    running.emulator.add_user(email, SECOND_PASSWORD)
    exchange = ExchangeCalendarControl(running.emulator, email)
    return SyncSetup(
        email=email,
        calendar_id=exchange.calendar_id,
        credentials=running.credentials(email, SECOND_PASSWORD),
        provider_factory=first.provider_factory,
        control=exchange,
        sleeps=first.sleeps,
        provider=first.provider,
    )


def second_env(first: SyncEnv, request: pytest.FixtureRequest, user: User) -> SyncEnv:
    """``user``'s own account on ``first``'s provider, connected with the same default options."""
    mailbox = f"{user.email.split('@')[0]}.calendar@example.com"
    return SyncEnv(second_setup(first.setup, request, mailbox), user)
