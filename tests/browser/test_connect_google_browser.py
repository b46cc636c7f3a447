"""A person connects Google from Personal Preferences > Calendar Sync, through the emulator's consent page."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from accounts.models import User
from calendarsync.models import AccountState, CalendarAccount
from tests.browser.conftest import log_in

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
    expect(page.locator("#account-state")).to_have_text("Active")
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
