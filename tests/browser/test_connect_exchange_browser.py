"""A person connects Microsoft Exchange from Personal Preferences > Calendar Sync, against the EWS emulator (C3, C5)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from accounts.models import User
from calendarsync.models import AccountState, CalendarAccount, Provider
from tests.browser.conftest import log_in
from tests.calendarsync.conftest_exchange import (
    EXCHANGE_APP_PASSWORD,
    EXCHANGE_TWO_FACTOR_PASSWORD,
    EXCHANGE_TWO_FACTOR_USER,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def open_calendar_sync(page: Page, base_url: str, user: User) -> None:
    log_in(page, base_url, user)
    page.get_by_label("Account menu").click()
    page.get_by_role("menuitem", name="Calendar Sync").click()
    expect(page.get_by_role("heading", name="Calendar Sync")).to_be_visible()


def test_c3_c5_a_two_factor_account_connects_with_its_app_password(
    page: Page, live_server: Any, exchange_emulator: Any, owner: User
) -> None:
    exchange_emulator.emulator.add_user(
        EXCHANGE_TWO_FACTOR_USER,
        EXCHANGE_TWO_FACTOR_PASSWORD,
        two_factor=True,
        app_password=EXCHANGE_APP_PASSWORD,
    )
    open_calendar_sync(page, live_server.url, owner)
    page.get_by_role("link", name="Microsoft Exchange").click()
    expect(page.get_by_role("heading", name="Connect Microsoft Exchange")).to_be_visible()

    # The normal password: Exchange wants the second factor, so the page asks for an app password.
    page.get_by_label("E-mail address").fill(EXCHANGE_TWO_FACTOR_USER)
    page.get_by_label("Password").fill(EXCHANGE_TWO_FACTOR_PASSWORD)
    page.get_by_label("Server URL (optional)").fill(exchange_emulator.server_url)
    page.get_by_role("button", name="Connect").click()
    expect(page.locator("#id_password_error")).to_contain_text(
        "Create an app password in your Microsoft account and paste it into Password instead."
    )
    expect(page.locator("#app-password-help")).to_contain_text("App passwords")
    expect(page.get_by_label("E-mail address")).to_have_value(EXCHANGE_TWO_FACTOR_USER)
    expect(page.get_by_label("Server URL (optional)")).to_have_value(exchange_emulator.server_url)
    expect(page.get_by_label("Password")).to_have_value("")
    assert not CalendarAccount.objects.filter(user=owner).exists()

    # The app password works.
    page.get_by_label("Password").fill(EXCHANGE_APP_PASSWORD)
    page.get_by_role("button", name="Connect").click()
    expect(page.get_by_text(f"Connected {EXCHANGE_TWO_FACTOR_USER}.")).to_be_visible()
    expect(page.locator("#account-state")).to_have_text("Active")
    expect(page.get_by_text(EXCHANGE_TWO_FACTOR_USER).first).to_be_visible()
    expect(page.locator("#remote-calendars")).to_contain_text("Calendar")
    account = CalendarAccount.objects.get(user=owner)
    assert (account.provider, account.state) == (Provider.EXCHANGE, AccountState.ACTIVE)
    assert EXCHANGE_APP_PASSWORD not in page.content()


def test_c3_a_wrong_password_and_an_unreachable_server_say_so(
    page: Page, live_server: Any, exchange_emulator: Any, owner: User
) -> None:
    open_calendar_sync(page, live_server.url, owner)
    page.get_by_role("link", name="Microsoft Exchange").click()
    page.get_by_label("E-mail address").fill(exchange_emulator.user)
    page.get_by_label("Password").fill("not-my-password")
    page.get_by_label("Server URL (optional)").fill(exchange_emulator.server_url)
    page.get_by_role("button", name="Connect").click()
    expect(page.locator("#id_password_error")).to_contain_text(
        "did not accept this e-mail address and password"
    )

    page.get_by_label("Password").fill(exchange_emulator.password)
    page.get_by_label("Server URL (optional)").fill(exchange_emulator.url + "/owa/")
    page.get_by_role("button", name="Connect").click()
    expect(page.locator("#id_server_url_error")).to_contain_text(
        "There is no Exchange server at this address"
    )

    page.get_by_label("Password").fill(exchange_emulator.password)
    page.get_by_label("Server URL (optional)").fill(exchange_emulator.server_url)
    page.get_by_role("button", name="Connect").click()
    expect(page.locator("#account-state")).to_have_text("Active")
