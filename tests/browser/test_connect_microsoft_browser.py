"""A person connects Microsoft 365 from Personal Preferences > Calendar Sync, through the emulator's consent page.

The sign-in page is served over HTTPS with the emulator's test CA (as msal demands for the identity
platform); this browser context accepts that certificate, as a browser trusting the CA would.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from accounts.models import User
from calendarsync.models import AccountState, CalendarAccount, EventLink, Provider
from calendarsync.sync import runner
from tests.browser.conftest import log_in
from tests.browser.sync_support import sync_now
from tests.calendarsync.conftest_microsoft import RunningMicrosoftEmulator
from tests.conftest import make_activity

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CALENDAR_SCOPE = "Calendars.ReadWrite"


@pytest.fixture
def ms_page(browser: Browser, browser_env: None) -> Iterator[Page]:
    context = browser.new_context(timezone_id="Europe/Berlin", ignore_https_errors=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def open_calendar_sync(page: Page, base_url: str, user: User) -> None:
    log_in(page, base_url, user)
    page.get_by_label("Account menu").click()
    page.get_by_role("menuitem", name="Calendar Sync").click()
    expect(page.get_by_role("heading", name="Calendar Sync")).to_be_visible()


def test_c1_c3_connect_microsoft_365_and_see_account_and_calendars(
    ms_page: Page, live_server: Any, microsoft_emulator: RunningMicrosoftEmulator, owner: User
) -> None:
    microsoft_emulator.emulator.add_calendar(microsoft_emulator.user, None, "Team calendar")
    open_calendar_sync(ms_page, live_server.url, owner)
    ms_page.get_by_role("button", name="Microsoft 365").click()
    expect(ms_page.get_by_text("Sign in with Microsoft (emulator)")).to_be_visible()
    assert ms_page.url.startswith(microsoft_emulator.identity_url)  # the sign-in page is the HTTPS one
    expect(ms_page.get_by_label(CALENDAR_SCOPE, exact=True)).to_be_checked()
    ms_page.get_by_role("button", name="Allow").click()
    expect(ms_page.get_by_text(f"Connected {microsoft_emulator.user}.")).to_be_visible()
    expect(ms_page.locator("#account-state")).to_have_text("Not started")  # O9: nothing syncs yet
    expect(ms_page.locator("#remote-calendars")).to_contain_text("Team calendar")
    account = CalendarAccount.objects.get(user=owner)
    assert (account.provider, account.state) == (Provider.MICROSOFT, AccountState.ACTIVE)


def test_c4_unticking_calendar_access_shows_insufficient_permissions(
    ms_page: Page, live_server: Any, microsoft_emulator: RunningMicrosoftEmulator, owner: User
) -> None:
    open_calendar_sync(ms_page, live_server.url, owner)
    ms_page.get_by_role("button", name="Microsoft 365").click()
    ms_page.get_by_label(CALENDAR_SCOPE, exact=True).uncheck()
    ms_page.get_by_role("button", name="Allow").click()
    expect(ms_page.locator("#account-state")).to_have_text("Insufficient permissions")
    expect(ms_page.locator("#state-help")).to_contain_text(
        "Ask your IT admin to allow third-party calendar apps"
    )
    assert CalendarAccount.objects.get(user=owner).state == AccountState.INSUFFICIENT_PERMISSIONS


def test_c3_denying_consent_connects_nothing(
    ms_page: Page, live_server: Any, microsoft_emulator: RunningMicrosoftEmulator, owner: User
) -> None:
    open_calendar_sync(ms_page, live_server.url, owner)
    ms_page.get_by_role("button", name="Microsoft 365").click()
    ms_page.get_by_role("button", name="Deny").click()
    expect(ms_page.get_by_text("You declined access to your Microsoft 365 calendar")).to_be_visible()
    assert not CalendarAccount.objects.filter(user=owner).exists()


def connect_start_and_lose_access(
    page: Page, base_url: str, microsoft_emulator: RunningMicrosoftEmulator, owner: User
) -> CalendarAccount:
    """Connected through the sign-in page, started, synced once; then the sessions are revoked."""
    open_calendar_sync(page, base_url, owner)
    page.get_by_role("button", name="Microsoft 365").click()
    page.get_by_role("button", name="Allow").click()
    page.get_by_role("button", name="Start sync").click()
    account = CalendarAccount.objects.get(user=owner)
    make_activity(owner, subject="Pipeline review")  # synced, so the account has a link to keep
    sync_now(account)
    microsoft_emulator.emulator.revoke_tokens(microsoft_emulator.user)
    sync_now(account, expect=runner.RunStatus.BLOCKED)
    page.reload()
    expect(page.locator("#account-state")).to_have_text("Needs reconnect")
    return account


def test_r10_reconnect_signs_in_to_microsoft_again_and_the_same_account_syncs_on(
    ms_page: Page, live_server: Any, microsoft_emulator: RunningMicrosoftEmulator, owner: User
) -> None:
    account = connect_start_and_lose_access(ms_page, live_server.url, microsoft_emulator, owner)
    assert EventLink.objects.filter(account=account).count() == 1
    expect(ms_page.locator("#state-help")).not_to_contain_text("coming soon")
    ms_page.get_by_role("button", name="Reconnect").click()
    expect(ms_page.get_by_text("Sign in with Microsoft (emulator)")).to_be_visible()
    expect(ms_page.get_by_label("Or sign in as")).to_have_value(microsoft_emulator.user)
    ms_page.get_by_role("button", name="Allow").click()
    expect(
        ms_page.get_by_text(f"Reconnected {microsoft_emulator.user}. Sync carries on with your options.")
    ).to_be_visible()
    expect(ms_page.locator("#account-state")).to_have_text("Syncing…")
    sync_now(account)
    expect(ms_page.locator("#last-synced")).to_contain_text("just now")
    [again] = CalendarAccount.objects.filter(user=owner)
    assert (again.pk, again.state) == (account.pk, AccountState.ACTIVE)
    assert EventLink.objects.filter(account=again).count() == 1


def test_r10_reconnect_as_another_microsoft_account_is_refused_with_a_clear_message(
    ms_page: Page, live_server: Any, microsoft_emulator: RunningMicrosoftEmulator, owner: User
) -> None:
    account = connect_start_and_lose_access(ms_page, live_server.url, microsoft_emulator, owner)
    ms_page.get_by_role("button", name="Reconnect").click()
    ms_page.get_by_label("Or sign in as").fill("mallory@contoso.test")
    ms_page.get_by_role("button", name="Allow").click()
    expect(
        ms_page.get_by_text(
            f"You signed in as mallory@contoso.test, but the account connected here is {microsoft_emulator.user}"
        )
    ).to_be_visible()
    expect(ms_page.locator("#account-state")).to_have_text("Needs reconnect")
    [unchanged] = CalendarAccount.objects.filter(user=owner)
    assert (unchanged.pk, unchanged.state) == (account.pk, AccountState.NEEDS_RECONNECT)
