"""R9: each account state renders with its help text; times show in the user's own zone (C4, C5)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

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


def test_r9_active_before_start_says_to_review_and_start(owner_client: Client, owner: User) -> None:
    html = page_with_state(owner_client, connect_account(owner), AccountState.ACTIVE)
    assert '<span class="badge state-active" id="account-state">Active</span>' in html
    assert "Review the options below, then start the sync." in state_help(html)


def test_r9_active_after_start_says_sync_is_on_in_the_users_zone(owner_client: Client, owner: User) -> None:
    account = connect_account(owner)
    preferences = do_start_sync(acting_user=owner, account=account)
    preferences.sync_started_at = dt.datetime(2025, 7, 1, 6, 30, tzinfo=dt.UTC)
    preferences.save()
    help_text = state_help(page_with_state(owner_client, account, AccountState.ACTIVE))
    assert "Sync is on since" in help_text
    assert "Jul 1, 2025 08:30 CEST" in help_text  # owner lives in Europe/Berlin


def test_r9_syncing(owner_client: Client, owner: User) -> None:
    html = page_with_state(owner_client, connect_account(owner), AccountState.SYNCING)
    assert ">Syncing</span>" in html
    assert "Syncing now." in state_help(html)


def test_r9_c4_insufficient_permissions_tells_to_ask_it_admin(owner_client: Client, owner: User) -> None:
    html = page_with_state(owner_client, connect_account(owner), AccountState.INSUFFICIENT_PERMISSIONS)
    help_text = state_help(html)
    assert ">Insufficient permissions</span>" in html
    assert "Ask your IT admin to allow\n      third-party calendar apps" in help_text
    assert "Nothing was deleted." in help_text
    assert ">Reconnect</button>" in help_text


def test_r9_needs_reconnect_google_offers_reconnect(owner_client: Client, owner: User) -> None:
    html = page_with_state(owner_client, connect_account(owner), AccountState.NEEDS_RECONNECT)
    help_text = state_help(html)
    assert ">Needs reconnect</span>" in html
    assert "revoked or\n      expired" in help_text
    assert "nothing was deleted" in help_text
    assert ">Reconnect</button>" in help_text


def test_r9_c5_exchange_needs_reconnect_advises_an_app_password(owner_client: Client, owner: User) -> None:
    account = connect_account(owner, provider=Provider.EXCHANGE)
    help_text = state_help(page_with_state(owner_client, account, AccountState.NEEDS_RECONNECT))
    assert "create an app password in your Microsoft account" in help_text
    assert "instead of your normal password" in help_text
    assert "/connect/exchange/" in help_text


def test_r9_error_shows_its_reason(owner_client: Client, owner: User) -> None:
    html = page_with_state(
        owner_client, connect_account(owner), AccountState.ERROR, "Google answered 500 three times."
    )
    help_text = state_help(html)
    assert ">Error</span>" in html
    assert "Sync error." in help_text
    assert "Google answered 500 three times." in help_text


def test_r9_error_without_reason_says_calsync_retries(owner_client: Client, owner: User) -> None:
    help_text = state_help(page_with_state(owner_client, connect_account(owner), AccountState.ERROR))
    assert "CalSync will try again shortly" in help_text


def test_r9_last_good_sync_time_is_in_the_users_time_zone(
    owner_client: Client, owner: User, colleague_client: Client, colleague: User
) -> None:
    synced = dt.datetime(2025, 1, 15, 12, 0, tzinfo=dt.UTC)
    for user in (owner, colleague):
        CalendarAccount.objects.filter(pk=connect_account(user).pk).update(last_synced_at=synced)
    assert 'last synced <time datetime="2025-01-15T13:00:00+01:00">Jan 15, 2025 13:00 CET</time>' in (
        owner_client.get(PAGE).content.decode()
    )
    assert "Jan 15, 2025 07:00 EST" in colleague_client.get(PAGE).content.decode()  # America/New_York


def test_r9_never_synced_says_so(owner_client: Client, owner: User) -> None:
    connect_account(owner)
    assert "not synced yet" in owner_client.get(PAGE).content.decode()


def test_c7_the_page_never_shows_credentials(owner_client: Client, owner: User) -> None:
    connect_account(owner)
    html = owner_client.get(PAGE).content.decode()
    assert "fake-refresh" not in html
    assert "fake-access" not in html
