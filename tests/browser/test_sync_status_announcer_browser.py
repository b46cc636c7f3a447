"""R9 in a real browser: while the status polls every 2 seconds, screen readers hear only changes.

The announcer (``#sync-status-announcer``, a polite live region outside the polled fragment) gets
new words from ``static/js/prefs.js`` only when the fragment's phase or counts changed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.models import User
from calendarsync.actions import do_start_sync
from calendarsync.models import AccountState, CalendarAccount, SyncRun
from tests.browser.conftest import log_in
from tests.calendarsync.support import connect_account

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGE = "/preferences/calendar-sync/"
# Records the announcer's words at every change.
WATCH_ANNOUNCER = """() => {
  window.__announced = [];
  const announcer = document.getElementById("sync-status-announcer");
  new MutationObserver(() => window.__announced.push(announcer.textContent))
    .observe(announcer, {childList: true, characterData: true, subtree: true});
}"""


def counts(activities: int, events: int) -> dict[str, Any]:
    return {"pushed": {"created": activities}, "pulled": {"created": events}}


def test_r9_polls_that_change_nothing_are_not_announced(page: Page, live_server: Any, owner: User) -> None:
    account = connect_account(owner)
    do_start_sync(acting_user=owner, account=account)
    now = timezone.now()
    CalendarAccount.objects.filter(pk=account.pk).update(
        state=AccountState.SYNCING, sync_lease_until=now + dt.timedelta(minutes=10), sync_requested_at=None
    )
    run = SyncRun.objects.create(
        account=account, started_at=now, outcome=SyncRun.Outcome.RUNNING, counts=counts(0, 0)
    )
    polls: list[str] = []
    page.on("response", lambda response: polls.append(response.url) if "/status/" in response.url else None)

    log_in(page, live_server.url, owner)
    page.goto(f"{live_server.url}{PAGE}")
    status = page.locator("#last-synced")
    expect(status).to_contain_text("0 activities sent, 0 events received so far")
    page.evaluate(WATCH_ANNOUNCER)
    # The only live regions near the status: the announcer, outside the polled fragment.
    assert page.locator("#sync-status-region[aria-live]").count() == 0
    assert page.locator("#sync-status [aria-live]").count() == 0
    expect(page.locator("#sync-status-announcer")).to_have_attribute("aria-live", "polite")

    # Two polls with nothing new: nothing is said.
    page.wait_for_timeout(4_500)
    assert len(polls) >= 2
    assert page.evaluate("window.__announced") == []
    expect(page.locator("#sync-status-announcer")).to_have_text("")

    # New counts: said once, however many polls follow.
    run.counts = counts(3, 1)
    run.save(update_fields=["counts"])
    expect(status).to_contain_text("3 activities sent, 1 event received so far")
    expect(page.locator("#sync-status-announcer")).to_have_text(
        "Sync status: Syncing…, 3 activities sent, 1 event received so far."
    )
    seen = len(polls)
    page.wait_for_timeout(4_500)
    assert len(polls) >= seen + 2
    assert page.evaluate("window.__announced") == [
        "Sync status: Syncing…, 3 activities sent, 1 event received so far."
    ]

    # Done: the new phase and what the run did are said, and polling stops.
    finished = timezone.now()
    CalendarAccount.objects.filter(pk=account.pk).update(
        state=AccountState.ACTIVE, sync_lease_until=None, last_synced_at=finished
    )
    run.outcome, run.finished_at, run.counts = SyncRun.Outcome.OK, finished, counts(4, 2)
    run.save(update_fields=["outcome", "finished_at", "counts"])
    expect(status).to_contain_text("Synced 4 activities, 2 events · just now")
    expect(page.locator("#sync-status-announcer")).to_have_text(
        "Sync status: Active, synced 4 activities, 2 events."
    )
    assert page.evaluate("window.__announced") == [
        "Sync status: Syncing…, 3 activities sent, 1 event received so far.",
        "Sync status: Active, synced 4 activities, 2 events.",
    ]
