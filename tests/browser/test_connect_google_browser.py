"""A person connects Google from Personal Preferences > Calendar Sync, through the emulator's consent page."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from accounts.models import User
from calendarsync.models import AccountState, CalendarAccount, EventLink
from calendarsync.sync import runner
from tests.browser.conftest import log_in
from tests.browser.sync_support import sync_now
from tests.conftest import make_activity

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"


def open_calendar_sync(page: Page, base_url: str, user: User) -> None:
    log_in(page, base_url, user)
    page.get_by_label("Account menu").click()
    page.get_by_role("menuitem", name="Calendar Sync").click()
    expect(page.get_by_role("heading", name="Calendar Sync")).to_be_visible()


def test_c1_c3_connect_google_and_see_account_and_calendars(
    page: Page, live_server: Any, google_emulator: Any, owner: User
) -> None:
    google_emulator.emulator.add_calendar(google_emulator.user, "team@group.calendar.test", "Team calendar")
    open_calendar_sync(page, live_server.url, owner)
    page.get_by_role("button", name="Google").click()
    expect(page.get_by_text("Sign in with Google (emulator)")).to_be_visible()
    page.get_by_role("button", name="Allow").click()
    expect(page.get_by_text(f"Connected {google_emulator.user}.")).to_be_visible()
    expect(page.locator("#account-state")).to_have_text("Not started")  # O9: nothing syncs before Start sync
    expect(page.locator("#remote-calendars")).to_contain_text("Team calendar")
    assert CalendarAccount.objects.get(user=owner).state == AccountState.ACTIVE


def test_c4_unticking_calendar_access_shows_insufficient_permissions(
    page: Page, live_server: Any, google_emulator: Any, owner: User
) -> None:
    open_calendar_sync(page, live_server.url, owner)
    page.get_by_role("button", name="Google").click()
    page.get_by_label(CALENDAR_SCOPE, exact=True).uncheck()
    page.get_by_role("button", name="Allow").click()
    expect(page.locator("#account-state")).to_have_text("Insufficient permissions")
    expect(page.locator("#state-help")).to_contain_text(
        "Ask your IT admin to allow third-party calendar apps"
    )
    assert CalendarAccount.objects.get(user=owner).state == AccountState.INSUFFICIENT_PERMISSIONS


def test_c2_choosing_imap_explains_it_is_not_supported(page: Page, live_server: Any, owner: User) -> None:
    open_calendar_sync(page, live_server.url, owner)
    page.get_by_role("link", name="Other (IMAP / POP)").click()
    expect(page.get_by_role("heading", name="IMAP and POP are not supported")).to_be_visible()


def connect_start_and_lose_access(
    page: Page, base_url: str, google_emulator: Any, owner: User
) -> CalendarAccount:
    """Connected through the consent page, started, synced once; then Google revokes the access."""
    open_calendar_sync(page, base_url, owner)
    page.get_by_role("button", name="Google").click()
    page.get_by_role("button", name="Allow").click()
    page.get_by_role("button", name="Start sync").click()
    account = CalendarAccount.objects.get(user=owner)
    make_activity(owner, subject="Pipeline review")  # synced, so the account has a link to keep
    sync_now(account)
    google_emulator.emulator.revoke_tokens(google_emulator.user)
    google_emulator.emulator.expire_access_tokens(google_emulator.user)
    sync_now(account, expect=runner.RunStatus.BLOCKED)
    page.reload()
    expect(page.locator("#account-state")).to_have_text("Needs reconnect")
    return account


def test_r10_reconnect_signs_in_to_google_again_and_the_same_account_syncs_on(
    page: Page, live_server: Any, google_emulator: Any, owner: User
) -> None:
    account = connect_start_and_lose_access(page, live_server.url, google_emulator, owner)
    links_before = EventLink.objects.filter(account=account).count()
    assert links_before == 1
    expect(page.locator("#state-help")).not_to_contain_text("coming soon")
    page.get_by_role("button", name="Reconnect").click()
    expect(page.get_by_text("Sign in with Google (emulator)")).to_be_visible()
    expect(page.get_by_label("Or sign in as")).to_have_value(google_emulator.user)  # suggested
    page.get_by_role("button", name="Allow").click()
    expect(
        page.get_by_text(f"Reconnected {google_emulator.user}. Sync carries on with your options.")
    ).to_be_visible()
    expect(page.locator("#account-state")).to_have_text("Syncing…")  # the paused sync is queued at once
    sync_now(account)
    expect(page.locator("#last-synced")).to_contain_text("just now")
    expect(page.locator("#account-state")).to_have_text("Active")
    [again] = CalendarAccount.objects.filter(user=owner)
    assert (again.pk, again.state) == (account.pk, AccountState.ACTIVE)
    assert EventLink.objects.filter(account=again).count() == links_before


def test_r10_reconnect_as_another_google_account_is_refused_with_a_clear_message(
    page: Page, live_server: Any, google_emulator: Any, owner: User
) -> None:
    account = connect_start_and_lose_access(page, live_server.url, google_emulator, owner)
    page.get_by_role("button", name="Reconnect").click()
    page.get_by_label("Or sign in as").fill("mallory@example.com")
    page.get_by_role("button", name="Allow").click()
    expect(
        page.get_by_text(
            f"You signed in as mallory@example.com, but the account connected here is {google_emulator.user}"
        )
    ).to_be_visible()
    expect(page.locator("#account-state")).to_have_text("Needs reconnect")
    [unchanged] = CalendarAccount.objects.filter(user=owner)
    assert (unchanged.pk, unchanged.email, unchanged.state) == (
        account.pk,
        google_emulator.user,
        AccountState.NEEDS_RECONNECT,
    )
