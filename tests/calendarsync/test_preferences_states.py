"""R9: each account state renders with its help text; times show in the user's own zone (C4, C5, O9)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from calendarsync.actions import do_start_sync
from calendarsync.models import AccountState, CalendarAccount, Provider
from tests.calendarsync.support import connect_account

pytestmark = pytest.mark.django_db

PAGE = "/preferences/calendar-sync/"


def page_with_state(client: Client, account: CalendarAccount, state: AccountState, detail: str = "") -> str:
    CalendarAccount.objects.filter(pk=account.pk).update(state=state, state_detail=detail)
    html = client.get(PAGE).content.decode()
    assert f'data-state="{state}"' in html
    return html


def state_help(html: str) -> str:
    start = html.index('id="state-help"')
    return html[start : html.index('id="account-edit"', start)]


def badge(html: str) -> str:
    start = html.index('id="account-state">') + len('id="account-state">')
    return html[start : html.index("</span>", start)]


def started(owner: User, account: CalendarAccount) -> CalendarAccount:
    do_start_sync(acting_user=owner, account=account)
    # No worker picked the requested first sync up: the page is not waiting for one.
    CalendarAccount.objects.filter(pk=account.pk).update(sync_requested_at=None)
    return account


def test_o9_r9_before_start_the_badge_says_not_started(owner_client: Client, owner: User) -> None:
    html = page_with_state(owner_client, connect_account(owner), AccountState.ACTIVE)
    assert '<span class="badge state-not_started" id="account-state">Not started</span>' in html
    assert ">Active</span>" not in html
    assert "Review the options below, then start the sync." in state_help(html)


def test_r9_active_after_start_says_sync_is_on_in_the_users_zone(owner_client: Client, owner: User) -> None:
    account = started(owner, connect_account(owner))
    account.preferences.sync_started_at = dt.datetime(2025, 7, 1, 6, 30, tzinfo=dt.UTC)
    account.preferences.save()
    html = page_with_state(owner_client, account, AccountState.ACTIVE)
    assert badge(html) == "Active"
    help_text = state_help(html)
    assert "Sync is on since" in help_text
    assert "Jul 1, 2025 08:30 CEST" in help_text  # owner lives in Europe/Berlin


def test_r9_syncing_while_a_worker_holds_the_account(owner_client: Client, owner: User) -> None:
    account = started(owner, connect_account(owner))
    CalendarAccount.objects.filter(pk=account.pk).update(
        sync_lease_until=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    )
    html = page_with_state(owner_client, account, AccountState.SYNCING)
    assert badge(html) == "Syncing…"
    assert "Syncing now." in state_help(html)


def test_r9_c4_insufficient_permissions_tells_to_ask_it_admin(owner_client: Client, owner: User) -> None:
    html = page_with_state(owner_client, connect_account(owner), AccountState.INSUFFICIENT_PERMISSIONS)
    help_text = state_help(html)
    assert badge(html) == "Insufficient permissions"
    assert "Ask your IT admin to allow\n      third-party calendar apps" in help_text
    assert "Nothing was deleted." in help_text
    assert ">Reconnect</button>" in help_text


@pytest.mark.parametrize("provider", [Provider.GOOGLE, Provider.MICROSOFT, Provider.EXCHANGE])
def test_r9_r10_needs_reconnect_offers_the_same_reconnect_button_for_every_provider(
    owner_client: Client, owner: User, provider: Provider
) -> None:
    account = connect_account(owner, provider=provider)
    help_text = state_help(page_with_state(owner_client, account, AccountState.NEEDS_RECONNECT))
    assert "nothing was deleted" in help_text
    assert f'action="{reverse("calendarsync:reconnect", args=[account.pk])}"' in help_text
    assert ">Reconnect</button>" in help_text
    assert "coming soon" not in help_text
    assert "stop the sync and add the account again" not in help_text


def test_r9_oauth_needs_reconnect_says_the_access_was_revoked(owner_client: Client, owner: User) -> None:
    html = page_with_state(owner_client, connect_account(owner), AccountState.NEEDS_RECONNECT)
    assert badge(html) == "Needs reconnect"
    assert "revoked or\n      expired" in state_help(html)


def test_r9_c5_exchange_needs_reconnect_advises_an_app_password(owner_client: Client, owner: User) -> None:
    account = connect_account(owner, provider=Provider.EXCHANGE)
    help_text = state_help(page_with_state(owner_client, account, AccountState.NEEDS_RECONNECT))
    assert "create an app\n      password in your Microsoft account" in help_text
    assert "instead of your normal password" in help_text
    # The page has no password field: the advice points at the reconnect form, not "here".
    assert "paste it here" not in help_text


def test_r9_error_shows_its_reason(owner_client: Client, owner: User) -> None:
    account = started(owner, connect_account(owner))
    html = page_with_state(owner_client, account, AccountState.ERROR, "Google answered 500 three times.")
    help_text = state_help(html)
    assert badge(html) == "Error"
    assert "Sync error." in help_text
    assert "Google answered 500 three times." in help_text


def test_r9_error_without_reason_says_calsync_retries(owner_client: Client, owner: User) -> None:
    account = started(owner, connect_account(owner))
    help_text = state_help(page_with_state(owner_client, account, AccountState.ERROR))
    assert "CalSync will try again shortly" in help_text


def test_r9_last_good_sync_time_is_in_the_users_time_zone(
    owner_client: Client, owner: User, colleague_client: Client, colleague: User
) -> None:
    synced = dt.datetime(2025, 1, 15, 12, 0, tzinfo=dt.UTC)
    for user in (owner, colleague):
        account = started(user, connect_account(user))
        CalendarAccount.objects.filter(pk=account.pk).update(last_synced_at=synced)
    owner_html = owner_client.get(PAGE).content.decode()
    assert '<time datetime="2025-01-15T13:00:00+01:00" title="Jan 15, 2025 13:00 CET">' in owner_html
    assert "Last synced" in owner_html
    assert 'title="Jan 15, 2025 07:00 EST"' in colleague_client.get(PAGE).content.decode()  # New York


def test_r9_never_synced_says_so(owner_client: Client, owner: User) -> None:
    connect_account(owner)
    assert "Not synced yet" in owner_client.get(PAGE).content.decode()


def test_c7_the_page_never_shows_credentials(owner_client: Client, owner: User) -> None:
    connect_account(owner)
    html = owner_client.get(PAGE).content.decode()
    assert "fake-refresh" not in html
    assert "fake-access" not in html
