"""D2 and Sync now in a real browser: from the Calendar Sync page to the sync log and its search,
and Sync now pressed from the keyboard swaps the progress fragment in and says so."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.models import User
from calendarsync.actions import do_start_sync
from calendarsync.models import CalendarAccount, SyncRun, SyncRunEntry
from calendarsync.sync.reasons import Reason
from tests.browser.conftest import log_in
from tests.calendarsync.support import connect_account

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGE = "/preferences/calendar-sync/"


def started_account(owner: User) -> CalendarAccount:
    """Started and synced a few minutes ago, nothing queued: the page shows "Active"."""
    account = connect_account(owner)
    do_start_sync(acting_user=owner, account=account)
    now = timezone.now()
    CalendarAccount.objects.filter(pk=account.pk).update(
        sync_requested_at=None, last_synced_at=now - dt.timedelta(minutes=5)
    )
    run = SyncRun.objects.create(
        account=account,
        started_at=now - dt.timedelta(minutes=5),
        finished_at=now - dt.timedelta(minutes=5) + dt.timedelta(seconds=3),
        outcome=SyncRun.Outcome.OK,
        counts={"pulled": {"created": 1, "skipped": 1}, "pushed": {}},
    )
    SyncRunEntry.objects.bulk_create(
        [
            SyncRunEntry(
                run=run, direction="in", action="skipped", code=Reason.PRIVATE_EVENT.value, title="Doctor"
            ),
            SyncRunEntry(
                run=run, direction="in", action="created", code=Reason.IMPORTED.value, title="Team lunch"
            ),
        ]
    )
    return account


def test_d2_from_the_page_to_the_log_a_search_and_sync_now_from_the_keyboard(
    page: Page, live_server: Any, owner: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[int] = []  # the live server runs in this process: no Celery broker needed
    monkeypatch.setattr("calendarsync.tasks._send_requested", queued.append)
    account = started_account(owner)
    queued.clear()
    log_in(page, live_server.url, owner)
    page.goto(f"{live_server.url}{PAGE}")

    # The sync log, from the account's section; its search keeps the matching line only.
    page.click("#sync-log-link")
    expect(page.get_by_role("heading", name="Sync log")).to_be_visible()
    expect(page.locator("#sync-log-runs")).to_contain_text(
        "Doctor: private event, your setting is Don't sync"
    )
    expect(page.locator("#sync-log-runs")).to_contain_text("Team lunch")
    page.fill("#sync-log-q", "doc")
    page.press("#sync-log-q", "Enter")
    expect(page.locator("#sync-log-summary")).to_have_text("1 run with items matching “doc”")
    expect(page.locator("#sync-log-runs mark")).to_have_text("Doc")
    expect(page.locator("#sync-log-runs")).not_to_contain_text("Team lunch")
    expect(page.locator("#sync-log-announcer")).to_have_text("1 run with items matching “doc”.")
    assert page.url.endswith("?q=doc")

    # Back on the page: Sync now from the keyboard; the status polls and the announcer says it.
    page.click(".back-link a")
    expect(page.locator("#account-state")).to_have_text("Active")
    page.focus("#sync-now")
    expect(page.locator("#sync-now")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#account-state")).to_have_text("Syncing…")
    expect(page.locator("#last-synced")).to_contain_text("Starting in a few seconds")
    expect(page.locator("#sync-status")).to_have_attribute("hx-trigger", "load delay:2s")
    expect(page.locator("#sync-status-announcer")).to_have_text(
        "Sync status: Syncing…, starting in a few seconds."
    )
    expect(page.locator("#sync-now")).to_be_focused()

    # Pressed again at once: refused, said beside the button and by the announcer; nothing else moves.
    page.keyboard.press("Space")
    expect(page.locator("#sync-now-message")).to_contain_text(
        "Sync requested a moment ago; you can ask again in"
    )
    expect(page.locator("#sync-status-announcer")).to_contain_text("Sync requested a moment ago")
    expect(page.locator("#sync-now")).to_be_focused()
    expect(page.locator("#account-state")).to_have_text("Syncing…")
    assert queued == [account.pk]
