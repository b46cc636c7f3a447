"""D1 in a real browser: an activity says why it did not sync, and says so again once it did (issue #14)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from accounts.models import User
from calendarsync.models import CalendarAccount
from tests.browser.conftest import log_in
from tests.browser.sync_support import sync_now
from tests.conftest import make_activity

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_d1_created_before_start_then_synced_once_its_location_is_edited(
    page: Page, live_server: Any, google_emulator: Any, owner: User
) -> None:
    activity = make_activity(owner, subject="Pitch to Globex")  # before any sync exists
    log_in(page, live_server.url, owner)
    page.goto(f"{live_server.url}/preferences/calendar-sync/")
    page.get_by_role("button", name="Google").click()
    page.get_by_role("button", name="Allow").click()
    page.get_by_role("button", name="Start sync").click()
    expect(page.locator("#account-state")).not_to_have_text("Not started")
    account = CalendarAccount.objects.get(user=owner, stopped_at__isnull=True)
    sync_now(account)

    # The list: the "Why?" popover, opened from the keyboard.
    page.goto(f"{live_server.url}/activities/?when=all&status=all")
    why = page.get_by_role("button", name="Why? The sync status of Pitch to Globex")
    why.focus()
    page.keyboard.press("Enter")
    popover = page.get_by_role("dialog", name="Sync status of Pitch to Globex")
    expect(popover).to_contain_text("Not sent: created before you started the sync on")
    expect(popover).to_contain_text("Change its time, place, participants or description to send it.")
    page.keyboard.press("Escape")
    expect(popover).to_be_hidden()

    # The activity page says the same, and its "Edit" leads to the change that sends it.
    page.goto(f"{live_server.url}/activities/{activity.pk}/")
    explanation = page.locator(f"#sync-why-{activity.pk}")
    expect(explanation).to_contain_text("Not sent: created before you started the sync on")
    explanation.get_by_role("link", name="Edit").click()
    page.get_by_label("Location").fill("Globex HQ, Springfield")
    page.get_by_role("button", name="Save activity").click()
    page.wait_for_url(f"{live_server.url}/activities/**")
    page.goto(f"{live_server.url}/activities/{activity.pk}/")
    expect(page.locator(f"#sync-why-{activity.pk}")).to_contain_text("Waiting: goes out with the next sync")

    sync_now(account)
    page.reload()
    explanation = page.locator(f"#sync-why-{activity.pk}")
    expect(explanation).to_contain_text(f"Synced with {account.email} at")
    link = explanation.get_by_role("link", name="Open in Google Calendar")
    expect(link).to_have_attribute("href", account.event_links.get(activity=activity).web_url)
    assert (link.get_attribute("href") or "").startswith("https://")
