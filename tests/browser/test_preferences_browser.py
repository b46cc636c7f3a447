"""A person sets every Calendar Sync option in a real browser, starts and stops the sync (O1-O10, C2-C6)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Locator, Page, expect

from accounts.models import User
from activities.models import ActivityType
from calendarsync.actions import do_start_sync
from calendarsync.models import (
    AccountState,
    AuditEvent,
    CalendarAccount,
    ExternalVisibility,
    PrivateEvents,
    SyncPreferences,
    SyncType,
)
from tests.browser.conftest import log_in
from tests.browser.sync_support import csp_violations, serve_with_strict_csp, sync_in_background
from tests.calendarsync.support import connect_account
from tests.conftest import make_activity

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGE = "/preferences/calendar-sync/"


def open_calendar_sync(page: Page, base_url: str, user: User) -> None:
    log_in(page, base_url, user)
    page.get_by_label("Account menu").click()
    page.get_by_role("menuitem", name="Calendar Sync").click()
    expect(page.get_by_role("heading", name="Calendar Sync")).to_be_visible()


def option(page: Page, name: str) -> Locator:
    return page.locator(f"#option-{name}")


def change_and_see_saved(page: Page, name: str, change: Callable[[Locator], object]) -> None:
    """Make one change, wait for its autosave to answer, and see "Saved" beside that option (O8)."""
    with page.expect_response(lambda response: f"/options/{name}/" in response.url) as answer:
        change(option(page, name))
    assert answer.value.status == 200
    expect(option(page, name).get_by_role("status")).to_have_text("Saved")


def test_o8_every_option_autosaves_says_saved_and_persists(page: Page, live_server: Any, owner: User) -> None:
    assert owner.company is not None
    ActivityType.objects.create(company=owner.company, name="Site visit")
    account = connect_account(owner)
    open_calendar_sync(page, live_server.url, owner)
    expect(page.locator("#account-email")).to_have_text(account.email)
    expect(page.get_by_role("button", name="Start sync")).to_be_visible()
    expect(
        page.get_by_text("Changes apply to items synced from now on; items already synced keep their type.")
    ).to_be_visible()
    expect(page.get_by_role("button", name="Save")).to_have_count(0)  # JavaScript on: no Save buttons

    change_and_see_saved(
        page, "calendar", lambda o: o.get_by_label("Sync with calendar").select_option(label="Team calendar")
    )
    change_and_see_saved(
        page,
        "incoming_type",
        lambda o: o.get_by_label("Activity type for calendar events").select_option(label="Site visit"),
    )
    change_and_see_saved(page, "outgoing_types", lambda o: o.get_by_label("Task", exact=True).check())
    change_and_see_saved(page, "outgoing_types", lambda o: o.get_by_label("Call", exact=True).uncheck())
    change_and_see_saved(page, "outgoing_types", lambda o: o.get_by_label("Site visit", exact=True).check())
    change_and_see_saved(page, "external_visibility", lambda o: o.get_by_label("Visible only to you").check())
    change_and_see_saved(page, "private_events", lambda o: o.get_by_label("Visible to everyone").check())
    change_and_see_saved(page, "include_details", lambda o: o.get_by_role("checkbox").uncheck())
    send = option(page, "send_invitations").get_by_role(
        "checkbox", name=re.compile("Send calendar invitations")
    )
    expect(send).to_be_checked()  # O11: on by default
    change_and_see_saved(page, "send_invitations", lambda o: send.uncheck())

    page.reload()
    expect(option(page, "calendar").get_by_label("Sync with calendar")).to_have_value(
        str(account.calendars.get(name="Team calendar").pk)
    )
    expect(option(page, "incoming_type").locator("select option:checked")).to_have_text("Site visit")
    outgoing = option(page, "outgoing_types")
    for ticked in ("Meeting", "Task", "Site visit"):
        expect(outgoing.get_by_label(ticked, exact=True)).to_be_checked()
    for unticked in ("Call", "Deadline", "Email", "Lunch"):
        expect(outgoing.get_by_label(unticked, exact=True)).not_to_be_checked()
    expect(option(page, "external_visibility").get_by_label("Visible only to you")).to_be_checked()
    expect(option(page, "private_events").get_by_label("Visible to everyone")).to_be_checked()
    expect(option(page, "include_details").get_by_role("checkbox")).not_to_be_checked()
    expect(option(page, "send_invitations").get_by_role("checkbox")).not_to_be_checked()
    expect(page.get_by_role("status").filter(has_text="Saved")).to_have_count(
        0
    )  # a fresh page claims nothing

    preferences = SyncPreferences.objects.get(account=account)
    assert preferences.calendar is not None
    assert preferences.calendar.name == "Team calendar"
    assert preferences.incoming_type is not None
    assert preferences.incoming_type.name == "Site visit"
    assert set(preferences.outgoing_types.values_list("name", flat=True)) == {"Meeting", "Task", "Site visit"}
    assert preferences.external_visibility == ExternalVisibility.ONLY_ME
    assert preferences.private_events == PrivateEvents.EVERYONE
    assert preferences.include_details is False
    assert preferences.send_invitations is False
    assert AuditEvent.objects.filter(account=account, action="preferences_updated").count() == 9


def test_o2_switching_to_one_way_hides_the_two_way_only_options(
    page: Page, live_server: Any, owner: User
) -> None:
    connect_account(owner)
    open_calendar_sync(page, live_server.url, owner)
    for two_way_only in ("incoming_type", "external_visibility", "private_events"):
        expect(option(page, two_way_only)).to_be_visible()

    change_and_see_saved(
        page, "sync_type", lambda o: o.get_by_label("One-way sync (CRM to calendar only)").check()
    )
    for two_way_only in ("incoming_type", "external_visibility", "private_events"):
        expect(option(page, two_way_only)).to_have_count(0)
    expect(option(page, "outgoing_types")).to_be_visible()
    expect(page.locator("#one-way-note")).to_contain_text("Events created in your calendar are not imported")
    expect(page.locator("#one-way-note")).to_contain_text("are applied to their activities")
    # Focus stays on the radio the person used, so the keyboard keeps working after the swap.
    expect(option(page, "sync_type").get_by_label("One-way sync (CRM to calendar only)")).to_be_focused()

    change_and_see_saved(page, "sync_type", lambda o: o.get_by_label("Two-way sync").check())
    expect(option(page, "incoming_type")).to_be_visible()
    expect(page.locator("#one-way-note")).to_have_count(0)
    assert SyncPreferences.objects.get(account__user=owner).sync_type == SyncType.TWO_WAY


def test_o6_dont_sync_private_events_warns_to_block_the_time_by_hand(
    page: Page, live_server: Any, owner: User
) -> None:
    connect_account(owner)
    open_calendar_sync(page, live_server.url, owner)
    expect(page.locator("#private-events-warning")).to_have_count(0)
    change_and_see_saved(page, "private_events", lambda o: o.get_by_label("Don't sync").check())
    warning = page.locator("#private-events-warning")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("block that time by hand")
    expect(warning).to_contain_text("double booking")
    assert SyncPreferences.objects.get(account__user=owner).private_events == PrivateEvents.SKIP


def test_o8_options_work_from_the_keyboard(page: Page, live_server: Any, owner: User) -> None:
    connect_account(owner)
    open_calendar_sync(page, live_server.url, owner)
    checkbox = option(page, "include_details").get_by_role("checkbox")
    checkbox.focus()
    with page.expect_response(lambda response: "/options/include_details/" in response.url):
        page.keyboard.press("Space")
    expect(option(page, "include_details").get_by_role("status")).to_have_text("Saved")
    expect(checkbox).to_be_focused()
    expect(checkbox).not_to_be_checked()
    assert SyncPreferences.objects.get(account__user=owner).include_details is False


def test_o9_c6_start_then_edit_stop_sync_then_add_the_same_account_back_with_its_options(
    page: Page, live_server: Any, google_emulator: Any, owner: User
) -> None:
    first = connect_account(owner, email=google_emulator.user)
    open_calendar_sync(page, live_server.url, owner)
    expect(page.locator("#account-state")).to_have_text("Not started")

    page.get_by_role("button", name="Start sync").click()
    expect(
        page.get_by_text("Sync started. Your activities will show in your calendar within a few minutes.")
    ).to_be_visible()
    expect(page.get_by_role("button", name="Start sync")).to_have_count(0)
    expect(page.locator("#sync-running")).to_contain_text("Sync is on since")
    assert SyncPreferences.objects.get(account=first).sync_started_at is not None
    change_and_see_saved(page, "private_events", lambda o: o.get_by_label("Don't sync").check())
    change_and_see_saved(page, "include_details", lambda o: o.get_by_role("checkbox").uncheck())

    stop = page.get_by_role("link", name="Stop sync")
    expect(stop).to_be_hidden()
    page.locator("summary", has_text="Edit").click()
    stop.click()
    expect(page.get_by_role("heading", name=f"Stop sync with {first.email}?")).to_be_visible()
    page.get_by_role("button", name="Stop sync").click()
    expect(page.get_by_text("Sync stopped and")).to_be_visible()
    expect(page.get_by_role("heading", name="Add account")).to_be_visible()
    first.refresh_from_db()
    assert first.stopped_at is not None
    assert first.credentials is None

    page.get_by_role("button", name="Google").click()
    expect(page.get_by_text("Sign in with Google (emulator)")).to_be_visible()
    page.get_by_role("button", name="Allow").click()
    expect(page.get_by_text(f"Connected {google_emulator.user}.")).to_be_visible()
    expect(page.locator("#account-state")).to_have_text("Not started")
    expect(page.get_by_role("button", name="Start sync")).to_be_visible()  # review, then start again
    # The same Google account again: its options are offered as they were, not the defaults.
    expect(
        page.get_by_text("Your options from the last time you synced this account are back")
    ).to_be_visible()
    expect(option(page, "private_events").get_by_label("Don't sync")).to_be_checked()
    expect(page.locator("#private-events-warning")).to_be_visible()
    expect(option(page, "include_details").get_by_role("checkbox")).not_to_be_checked()
    second = CalendarAccount.objects.get(user=owner, stopped_at__isnull=True)
    assert second.pk != first.pk
    assert second.state == AccountState.ACTIVE
    restored = SyncPreferences.objects.get(account=second)
    assert (restored.private_events, restored.include_details) == (PrivateEvents.SKIP, False)
    assert restored.sync_started_at is None


def test_c2_choosing_imap_after_stopping_explains_it_is_not_supported(
    page: Page, live_server: Any, owner: User
) -> None:
    account = connect_account(owner)
    open_calendar_sync(page, live_server.url, owner)
    page.locator("summary", has_text="Edit").click()
    page.get_by_role("link", name="Stop sync").click()
    page.get_by_role("button", name="Stop sync").click()
    expect(page.get_by_role("heading", name="Add account")).to_be_visible()
    page.get_by_role("link", name="Other (IMAP / POP)").click()
    expect(page.get_by_role("heading", name="IMAP and POP are not supported")).to_be_visible()
    expect(page.get_by_text("IMAP and POP carry e-mail, not calendars")).to_be_visible()
    account.refresh_from_db()
    assert account.stopped_at is not None


def test_c3_c5_exchange_form_rejects_an_empty_password(page: Page, live_server: Any, owner: User) -> None:
    open_calendar_sync(page, live_server.url, owner)
    page.get_by_role("link", name="Microsoft Exchange").click()
    expect(page.get_by_role("heading", name="Connect Microsoft Exchange")).to_be_visible()
    expect(page.get_by_text("create an app password in your Microsoft account")).to_be_visible()
    page.get_by_label("E-mail address").fill("owner@contoso.test")
    page.get_by_role("button", name="Connect").click()
    expect(page.get_by_text("Enter your password (or an app password).")).to_be_visible()
    expect(page.get_by_label("E-mail address")).to_have_value("owner@contoso.test")

    page.get_by_label("Password").fill("an-app-password")
    page.get_by_label("Server URL (optional)").fill("ftp://mail.contoso.test")
    page.get_by_role("button", name="Connect").click()
    expect(page.get_by_text("Enter the server's https:// address")).to_be_visible()

    page.get_by_label("Password").fill("an-app-password")
    page.get_by_label("Server URL (optional)").fill("https://mail.contoso.test/EWS/Exchange.asmx")
    page.get_by_role("button", name="Connect").click()
    expect(
        page.get_by_text(re.compile("could not connect to an Exchange server at this address"))
    ).to_be_visible()
    assert not CalendarAccount.objects.filter(user=owner).exists()


def test_o8_a_tampered_value_is_refused_in_place_and_changes_nothing(
    page: Page, live_server: Any, owner: User, outsider: User
) -> None:
    assert outsider.company is not None
    foreign = ActivityType.objects.get(company=outsider.company, name="Call")
    account = connect_account(owner)
    open_calendar_sync(page, live_server.url, owner)
    select = option(page, "incoming_type").get_by_label("Activity type for calendar events")
    select.evaluate(
        "(select, pk) => select.add(new Option('Globex call', pk))",
        str(foreign.pk),
    )
    with page.expect_response(lambda response: "/options/incoming_type/" in response.url) as answer:
        select.select_option(str(foreign.pk))
    assert answer.value.status == 422
    alert = option(page, "incoming_type").get_by_role("alert")
    expect(alert).to_contain_text("Not saved: That is not an active activity type of your company.")
    expect(option(page, "incoming_type").locator("select option:checked")).to_have_text("Meeting")
    expect(page.locator("#save-failed")).to_be_hidden()
    preferences = SyncPreferences.objects.get(account=account)
    assert preferences.incoming_type is not None
    assert preferences.incoming_type.name == "Meeting"


def test_o8_without_javascript_the_save_button_posts_and_returns_with_a_message(
    browser: Browser, browser_env: None, live_server: Any, owner: User
) -> None:
    connect_account(owner)
    context = browser.new_context(java_script_enabled=False, timezone_id="Europe/Berlin")
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        log_in(page, live_server.url, owner)
        page.goto(f"{live_server.url}{PAGE}")
        section = option(page, "external_visibility")
        section.get_by_label("Visible only to you").check()
        section.get_by_role("button", name="Save").click()
        expect(page.get_by_text("Saved: Default visibility of external events.")).to_be_visible()
        expect(option(page, "external_visibility").get_by_label("Visible only to you")).to_be_checked()
    finally:
        context.close()
    assert SyncPreferences.objects.get(account__user=owner).external_visibility == ExternalVisibility.ONLY_ME


def test_o9_r9_the_first_sync_shows_its_progress_then_what_it_did_without_a_reload(
    page: Page, live_server: Any, google_emulator: Any, owner: User
) -> None:
    open_calendar_sync(page, live_server.url, owner)
    page.get_by_role("button", name="Google").click()
    page.get_by_role("button", name="Allow").click()
    status = page.locator("#last-synced")
    expect(page.locator("#account-state")).to_have_text("Not started")  # before Start sync (O9)
    expect(status).to_contain_text("Not synced yet")

    page.get_by_role("button", name="Start sync").click()
    expect(page.locator("#account-state")).to_have_text("Syncing…")
    expect(status).to_contain_text("Starting in a few seconds")
    account = CalendarAccount.objects.get(user=owner, stopped_at__isnull=True)
    # Made after the start, so they sync (R2): two CRM meetings, one event in the calendar.
    tomorrow = timezone.now().replace(microsecond=0) + dt.timedelta(days=1)
    for hours in (1, 3):
        make_activity(owner, subject=f"Meeting in {hours}h", start_at=tomorrow + dt.timedelta(hours=hours))
    google_emulator.emulator.user_create_event(
        google_emulator.user,
        {
            "summary": "Dentist",
            "start": {"dateTime": (tomorrow + dt.timedelta(hours=5)).isoformat()},
            "end": {"dateTime": (tomorrow + dt.timedelta(hours=6)).isoformat()},
        },
    )

    with sync_in_background(account) as release:
        # The run took the calendar's event in and holds before sending the CRM's: the page,
        # never reloaded, shows how far it got.
        expect(page.locator("#account-state")).to_have_text("Syncing…")
        expect(status).to_contain_text("0 activities sent, 1 event received so far")
        release.set()
        expect(status).to_contain_text("Synced 2 activities, 1 event · just now")
    expect(page.locator("#account-state")).to_have_text("Active")
    expect(page.locator("#state-help")).to_contain_text("Sync is on since")

    # Done: the fragment no longer asks for itself.
    polls: list[str] = []
    page.on("request", lambda request: polls.append(request.url) if "/status/" in request.url else None)
    page.wait_for_timeout(4_500)
    assert polls == []
    page.reload()
    expect(status).to_contain_text("Synced 2 activities, 1 event · just now")  # no JavaScript needed


def test_r9_without_javascript_the_page_shows_the_current_sync_state(
    browser: Browser, browser_env: None, live_server: Any, owner: User
) -> None:
    account = connect_account(owner)
    do_start_sync(acting_user=owner, account=account)
    CalendarAccount.objects.filter(pk=account.pk).update(
        sync_requested_at=None, last_synced_at=timezone.now() - dt.timedelta(minutes=2, seconds=5)
    )
    context = browser.new_context(java_script_enabled=False, timezone_id="Europe/Berlin")
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        log_in(page, live_server.url, owner)
        page.goto(f"{live_server.url}{PAGE}")
        expect(page.locator("#account-state")).to_have_text("Active")
        expect(page.locator("#last-synced")).to_contain_text("Last synced 2 minutes ago")
    finally:
        context.close()


def test_the_page_works_under_the_coming_content_security_policy(
    page: Page, live_server: Any, owner: User, outsider: User
) -> None:
    assert outsider.company is not None
    foreign = ActivityType.objects.get(company=outsider.company, name="Call")
    connect_account(owner)
    serve_with_strict_csp(page, live_server.url)
    open_calendar_sync(page, live_server.url, owner)
    change_and_see_saved(page, "external_visibility", lambda o: o.get_by_label("Visible only to you").check())

    # The refused value comes back as 422 and is swapped in with its message: static/js/prefs.js
    # does that now (an inline hx-on handler would be refused under this policy).
    select = option(page, "incoming_type").get_by_label("Activity type for calendar events")
    select.evaluate("(select, pk) => select.add(new Option('Globex call', pk))", str(foreign.pk))
    with page.expect_response(lambda response: "/options/incoming_type/" in response.url) as answer:
        select.select_option(str(foreign.pk))
    assert answer.value.status == 422
    expect(option(page, "incoming_type").get_by_role("alert")).to_contain_text("Not saved:")
    expect(page.locator("#save-failed")).to_be_hidden()

    page.get_by_role("button", name="Start sync").click()
    with page.expect_response(lambda response: "/status/" in response.url):
        expect(page.locator("#account-state")).to_have_text("Syncing…")
    assert csp_violations(page) == []
