"""A person connects Microsoft Exchange from Personal Preferences > Calendar Sync, against the EWS emulator (C3, C5)."""

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
from tests.calendarsync.conftest_exchange import (
    EXCHANGE_APP_PASSWORD,
    EXCHANGE_TWO_FACTOR_PASSWORD,
    EXCHANGE_TWO_FACTOR_USER,
)
from tests.conftest import make_activity

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
    # The notice sits above the form: it points down to the Password field.
    expect(page.locator("#app-password-help")).to_contain_text("paste it into the Password field below.")
    expect(page.get_by_label("E-mail address")).to_have_value(EXCHANGE_TWO_FACTOR_USER)
    expect(page.get_by_label("Server URL (optional)")).to_have_value(exchange_emulator.server_url)
    expect(page.get_by_label("Password")).to_have_value("")
    assert not CalendarAccount.objects.filter(user=owner).exists()

    # The app password works.
    page.get_by_label("Password").fill(EXCHANGE_APP_PASSWORD)
    page.get_by_role("button", name="Connect").click()
    expect(page.get_by_text(f"Connected {EXCHANGE_TWO_FACTOR_USER}.")).to_be_visible()
    expect(page.locator("#account-state")).to_have_text("Not started")
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
        "could not connect to an Exchange server at this address"
    )

    page.get_by_label("Password").fill(exchange_emulator.password)
    page.get_by_label("Server URL (optional)").fill(exchange_emulator.server_url)
    page.get_by_role("button", name="Connect").click()
    expect(page.locator("#account-state")).to_have_text("Not started")


def connect_start_and_change_the_password(
    page: Page, base_url: str, exchange_emulator: Any, owner: User
) -> CalendarAccount:
    """Connected through the form, started, synced once; then the mailbox's password changes."""
    open_calendar_sync(page, base_url, owner)
    page.get_by_role("link", name="Microsoft Exchange").click()
    page.get_by_label("E-mail address").fill(exchange_emulator.user)
    page.get_by_label("Password").fill(exchange_emulator.password)
    page.get_by_label("Server URL (optional)").fill(exchange_emulator.server_url)
    page.get_by_role("button", name="Connect").click()
    page.get_by_role("button", name="Start sync").click()
    account = CalendarAccount.objects.get(user=owner)
    make_activity(owner, subject="Pipeline review")  # synced, so the account has a link to keep
    sync_now(account)
    exchange_emulator.emulator.revoke(exchange_emulator.user, "a-new-password-2")
    sync_now(account, expect=runner.RunStatus.BLOCKED)
    page.reload()
    expect(page.locator("#account-state")).to_have_text("Needs reconnect")
    return account


def test_r10_reconnect_opens_the_password_form_and_the_same_account_syncs_on(
    page: Page, live_server: Any, exchange_emulator: Any, owner: User
) -> None:
    account = connect_start_and_change_the_password(page, live_server.url, exchange_emulator, owner)
    assert EventLink.objects.filter(account=account).count() == 1
    page.get_by_role("button", name="Reconnect").click()
    expect(page.get_by_role("heading", name="Reconnect Microsoft Exchange")).to_be_visible()
    expect(page.get_by_label("E-mail address")).to_have_value(exchange_emulator.user)
    expect(page.get_by_label("Server URL (optional)")).to_have_value(exchange_emulator.server_url)
    expect(page.get_by_label("Password")).to_have_value("")
    page.get_by_label("Password").fill("a-new-password-2")
    page.get_by_role("button", name="Reconnect").click()
    expect(
        page.get_by_text(f"Reconnected {exchange_emulator.user}. Sync carries on with your options.")
    ).to_be_visible()
    expect(page.locator("#account-state")).to_have_text("Syncing…")
    sync_now(account)
    expect(page.locator("#last-synced")).to_contain_text("just now")
    [again] = CalendarAccount.objects.filter(user=owner)
    assert (again.pk, again.state) == (account.pk, AccountState.ACTIVE)
    assert EventLink.objects.filter(account=again).count() == 1
    assert "a-new-password-2" not in page.content()


def test_r10_reconnect_as_another_mailbox_is_refused_on_the_form(
    page: Page, live_server: Any, exchange_emulator: Any, owner: User
) -> None:
    account = connect_start_and_change_the_password(page, live_server.url, exchange_emulator, owner)
    page.get_by_role("button", name="Reconnect").click()
    page.get_by_label("E-mail address").fill("mallory@example.com")
    page.get_by_label("Password").fill("mallory-password-1")
    page.get_by_role("button", name="Reconnect").click()
    expect(page.locator("#id_email_error")).to_contain_text(
        f"You signed in as mallory@example.com, but the account connected here is {exchange_emulator.user}"
    )
    account.refresh_from_db()
    assert (account.email, account.state) == (exchange_emulator.user, AccountState.NEEDS_RECONNECT)


@pytest.fixture
def ms_page(browser: Browser, browser_env: None) -> Iterator[Page]:
    """The Microsoft sign-in emulator serves https with its own certificate."""
    context = browser.new_context(timezone_id="Europe/Berlin", ignore_https_errors=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def test_16_an_exchange_online_mailbox_is_sent_to_the_microsoft_365_connect(
    ms_page: Page, live_server: Any, microsoft_emulator: Any, owner: User
) -> None:
    page = ms_page
    open_calendar_sync(page, live_server.url, owner)
    expect(page.locator("#connect-account")).to_contain_text(
        "Exchange Online and Microsoft 365 mailboxes connect through Microsoft 365."
    )
    page.get_by_role("link", name="Microsoft Exchange Server (on-premises)").click()
    page.get_by_label("E-mail address").fill("pat@contoso.com")
    page.get_by_label("Password").fill("secret")
    page.get_by_label("Server URL (optional)").fill("https://outlook.office365.com/EWS/Exchange.asmx")
    page.get_by_role("button", name="Connect", exact=True).click()
    expect(page.locator("#exchange-online-help")).to_contain_text("This mailbox is in Exchange Online")
    assert not CalendarAccount.objects.filter(user=owner).exists()

    page.get_by_role("button", name="Connect with Microsoft 365").click()
    expect(page.get_by_text("Sign in with Microsoft (emulator)")).to_be_visible()
    assert page.url.startswith(microsoft_emulator.identity_url)


def test_16_an_on_premises_server_connects_over_ntlm_chosen_under_advanced(
    page: Page, live_server: Any, exchange_emulator: Any, owner: User
) -> None:
    exchange_emulator.emulator.set_auth_methods(["ntlm", "basic"])
    open_calendar_sync(page, live_server.url, owner)
    page.get_by_role("link", name="Microsoft Exchange Server (on-premises)").click()
    page.get_by_label("E-mail address").fill(exchange_emulator.user)
    page.get_by_label("Password").fill(exchange_emulator.password)
    page.get_by_label("Server URL (optional)").fill(exchange_emulator.server_url)
    page.locator("#exchange-advanced summary").click()
    page.get_by_label("Sign-in method").select_option("ntlm")
    page.get_by_role("button", name="Connect", exact=True).click()
    expect(page.get_by_text(f"Connected {exchange_emulator.user}.")).to_be_visible()
    account = CalendarAccount.objects.get(user=owner)
    assert dict(account.credentials or {})["auth_type"] == "ntlm"
    assert exchange_emulator.emulator.auth_counts().get("ntlm-signed-in", 0) > 0
    assert exchange_emulator.emulator.auth_counts().get("basic-signed-in", 0) == 0
