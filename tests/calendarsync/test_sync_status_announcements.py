"""R9: screen readers hear the sync status when its phase or counts change, not at every 2-second poll.

Found in review: ``#sync-status-region`` was a polite live region around the fragment that replaces
itself while a sync runs, so the whole status was read out every 2 seconds. Now the region is not
live; a separate announcer outside it gets the fragment's ``data-announce`` from ``prefs.js`` when
that text changes. ``data-announce`` holds the phase and the counts, never a clock ("2 minutes ago").
"""

from __future__ import annotations

import datetime as dt
import html as html_lib
import re
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from accounts.models import User
from calendarsync.actions import do_start_sync
from calendarsync.models import AccountState, CalendarAccount, SyncRun
from tests.calendarsync.support import HTMX, connect_account

pytestmark = pytest.mark.django_db

PAGE = "/preferences/calendar-sync/"
NOW = dt.datetime(2025, 3, 10, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def account(owner: User) -> CalendarAccount:
    account = connect_account(owner)
    do_start_sync(acting_user=owner, account=account)
    account.refresh_from_db()
    return account


def status_url(account: CalendarAccount) -> str:
    return reverse("calendarsync:sync_status", args=[account.pk])


def announcement(html: str) -> str:
    found = re.search(r'id="sync-status"[^>]*?data-announce="([^"]*)"', html, flags=re.S)
    assert found is not None
    return html_lib.unescape(found.group(1))


def counts(activities: int, events: int) -> dict[str, Any]:
    return {"pushed": {"created": activities}, "pulled": {"created": events}}


def run(account: CalendarAccount, activities: int, events: int) -> None:
    CalendarAccount.objects.filter(pk=account.pk).update(
        state=AccountState.SYNCING, sync_lease_until=NOW + dt.timedelta(minutes=10), sync_requested_at=None
    )
    SyncRun.objects.update_or_create(
        account=account,
        outcome=SyncRun.Outcome.RUNNING,
        defaults={"started_at": NOW - dt.timedelta(seconds=5), "counts": counts(activities, events)},
    )


def test_r9_the_polled_fragment_is_not_a_live_region_and_the_announcer_is_outside_it(
    owner_client: Client, account: CalendarAccount
) -> None:
    html = owner_client.get(PAGE).content.decode()
    region = re.search(r'<div id="sync-status-region"[^>]*>', html)
    assert region is not None
    assert "aria-live" not in region.group(0)
    assert (
        '<p id="sync-status-announcer" class="sr-only" role="status" aria-live="polite" aria-atomic="true"></p>'
        in html
    )
    # The announcer comes after the region has closed: the polled fragment never replaces it.
    fragment_end = html.index('id="sync-status-announcer"')
    assert html.index('id="sync-status"') < fragment_end
    assert "aria-live" not in html[html.index('id="sync-status-region"') : fragment_end]


def test_r9_a_poll_that_changes_nothing_announces_the_same_words(
    owner_client: Client, account: CalendarAccount
) -> None:
    with time_machine.travel(NOW, tick=False):
        run(account, 3, 1)
        first = owner_client.get(status_url(account), headers=HTMX).content.decode()
    with time_machine.travel(NOW + dt.timedelta(seconds=2), tick=False):
        second = owner_client.get(status_url(account), headers=HTMX).content.decode()
    assert announcement(first) == announcement(second)
    assert announcement(first) == "Sync status: Syncing…, 3 activities sent, 1 event received so far."


def test_r9_new_counts_and_a_new_phase_change_the_announcement(
    owner_client: Client, account: CalendarAccount
) -> None:
    said = []
    with time_machine.travel(NOW, tick=False):
        CalendarAccount.objects.filter(pk=account.pk).update(sync_requested_at=NOW)
        said.append(announcement(owner_client.get(status_url(account)).content.decode()))
        run(account, 0, 0)
        said.append(announcement(owner_client.get(status_url(account)).content.decode()))
        run(account, 2, 0)
        said.append(announcement(owner_client.get(status_url(account)).content.decode()))
        CalendarAccount.objects.filter(pk=account.pk).update(
            state=AccountState.ACTIVE, sync_lease_until=None, last_synced_at=NOW - dt.timedelta(seconds=1)
        )
        SyncRun.objects.filter(account=account).update(
            outcome=SyncRun.Outcome.OK, finished_at=NOW - dt.timedelta(seconds=1), counts=counts(2, 1)
        )
        said.append(announcement(owner_client.get(status_url(account)).content.decode()))
    assert said == [
        "Sync status: Syncing…, starting in a few seconds.",
        "Sync status: Syncing…, 0 activities sent, 0 events received so far.",
        "Sync status: Syncing…, 2 activities sent, 0 events received so far.",
        "Sync status: Active, synced 2 activities, 1 event.",
    ]


def test_r9_the_announcement_never_holds_a_clock(owner_client: Client, account: CalendarAccount) -> None:
    CalendarAccount.objects.filter(pk=account.pk).update(
        sync_requested_at=None, last_synced_at=NOW - dt.timedelta(minutes=5)
    )
    with time_machine.travel(NOW, tick=False):
        five = announcement(owner_client.get(status_url(account)).content.decode())
    with time_machine.travel(NOW + dt.timedelta(minutes=3), tick=False):
        eight = announcement(owner_client.get(status_url(account)).content.decode())
    assert five == eight == "Sync status: Active."
