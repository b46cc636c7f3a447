"""Helpers shared by the preferences tests (no tests here): a connected account without OAuth."""

from __future__ import annotations

from collections.abc import Sequence

from accounts.models import User
from calendarsync.actions import do_connect_account
from calendarsync.models import AccountState, CalendarAccount, Provider
from calendarsync.providers.base import RemoteCalendarInfo

HTMX = {"HX-Request": "true"}

DEFAULT_CALENDARS = (
    RemoteCalendarInfo(
        external_id="primary@example.com", name="My calendar", is_primary=True, can_write=True
    ),
    RemoteCalendarInfo(external_id="team@group.test", name="Team calendar", is_primary=False, can_write=True),
    RemoteCalendarInfo(external_id="holidays@group.test", name="Holidays", is_primary=False, can_write=False),
)


def connect_account(
    user: User,
    *,
    email: str | None = None,
    provider: Provider = Provider.GOOGLE,
    calendars: Sequence[RemoteCalendarInfo] = DEFAULT_CALENDARS,
    state: AccountState = AccountState.ACTIVE,
) -> CalendarAccount:
    """What the connect flow leaves behind, with fake credentials (the tests here are not about OAuth)."""
    return do_connect_account(
        acting_user=user,
        provider=provider,
        email=email or f"{user.email.split('@')[0]}@example.com",
        credentials={"access_token": "fake-access", "refresh_token": "fake-refresh"},
        calendars=calendars,
        state=state,
    )
