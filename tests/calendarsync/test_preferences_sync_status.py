"""O9/R9: the account's sync status fragment: queued, running with progress, done, and every later state.

One fragment serves the page's account header and its own endpoint; it polls itself (htmx) only
while a sync is queued or running. Times show in the user's own zone.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from calendarsync.actions import do_start_sync
from calendarsync.models import AccountState, CalendarAccount, SyncRun
from tests.calendarsync.support import HTMX, connect_account

pytestmark = pytest.mark.django_db

PAGE = "/preferences/calendar-sync/"
NOW = dt.datetime(2025, 3, 10, 9, 0, tzinfo=dt.UTC)
POLLS = 'hx-trigger="load delay:2s"'


def status_url(account: CalendarAccount) -> str:
    return reverse("calendarsync:sync_status", args=[account.pk])


def text(html: str) -> str:
    """The fragment's words, as a reader sees them (tags dropped, whitespace collapsed)."""
    import re

    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def counts(activities: int, events: int) -> dict[str, Any]:
    return {"pushed": {"created": activities, "updated": 0, "deleted": 0}, "pulled": {"created": events}}


@pytest.fixture
def account(owner: User) -> CalendarAccount:
    account = connect_account(owner)
    do_start_sync(acting_user=owner, account=account)
    account.refresh_from_db()
    return account


def running(account: CalendarAccount, now: dt.datetime) -> None:
    """What ``runner.claim`` leaves: the account held by a worker, its request taken."""
    CalendarAccount.objects.filter(pk=account.pk).update(
        state=AccountState.SYNCING, sync_lease_until=now + dt.timedelta(minutes=10), sync_requested_at=None
    )


def finished(account: CalendarAccount, at: dt.datetime, run_counts: dict[str, Any] | None) -> None:
    """What ``runner._succeeded`` leaves: active, synced at ``at``, the run's row with the same time."""
    CalendarAccount.objects.filter(pk=account.pk).update(
        state=AccountState.ACTIVE, sync_lease_until=None, sync_requested_at=None, last_synced_at=at
    )
    if run_counts is not None:
        SyncRun.objects.create(
            account=account,
            started_at=at - dt.timedelta(seconds=3),
            finished_at=at,
            outcome=SyncRun.Outcome.OK,
            counts=run_counts,
        )


def test_o9_after_start_sync_the_page_says_the_first_sync_is_starting_and_polls(
    owner_client: Client, owner: User
) -> None:
    account = connect_account(owner)
    response = owner_client.post(reverse("calendarsync:start_sync", args=[account.pk]), follow=True)
    html = response.content.decode()
    assert "Not started" not in html
    assert "not synced yet" not in html.lower()
    fragment = html[html.index('id="sync-status"') : html.index('id="account-edit"')]
    assert "Status: Syncing… · Starting in a few seconds" in text(fragment)
    assert "The first sync starts within a few seconds." in text(fragment)
    assert f'hx-get="{status_url(account)}"' in fragment
    assert POLLS in fragment


def test_o9_r9_while_a_run_works_the_fragment_shows_its_counts_so_far_and_polls(
    owner_client: Client, account: CalendarAccount
) -> None:
    with time_machine.travel(NOW, tick=False):
        running(account, NOW)
        SyncRun.objects.create(
            account=account, started_at=NOW, outcome=SyncRun.Outcome.RUNNING, counts=counts(3, 1)
        )
        response = owner_client.get(status_url(account), headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Status: Syncing… · 3 activities sent, 1 event received so far" in text(html)
    assert POLLS in html
    assert "<html" not in html  # the fragment alone


def test_o9_a_run_that_has_not_changed_anything_yet_shows_zero_counts(
    owner_client: Client, account: CalendarAccount
) -> None:
    with time_machine.travel(NOW, tick=False):
        running(account, NOW)
        html = owner_client.get(status_url(account), headers=HTMX).content.decode()
    assert "0 activities sent, 0 events received so far" in text(html)
    assert POLLS in html


def test_o9_when_the_run_is_done_the_fragment_says_what_it_did_just_now_and_stops_polling(
    owner_client: Client, account: CalendarAccount
) -> None:
    finished(account, NOW - dt.timedelta(seconds=5), counts(4, 2))
    with time_machine.travel(NOW, tick=False):
        html = owner_client.get(status_url(account), headers=HTMX).content.decode()
    assert "Status: Active · Synced 4 activities, 2 events · just now" in text(html)
    assert POLLS not in html
    assert "hx-get" not in html


def test_o9_counts_are_pluralised(owner_client: Client, account: CalendarAccount) -> None:
    finished(account, NOW - dt.timedelta(seconds=5), counts(1, 1))
    with time_machine.travel(NOW, tick=False):
        html = owner_client.get(status_url(account)).content.decode()
    assert "Synced 1 activity, 1 event · just now" in text(html)


def test_r9_a_run_that_changed_nothing_reports_zero(owner_client: Client, account: CalendarAccount) -> None:
    finished(account, NOW - dt.timedelta(seconds=5), None)  # idle runs leave no SyncRun row
    with time_machine.travel(NOW, tick=False):
        html = owner_client.get(status_url(account)).content.decode()
    assert "Synced 0 activities, 0 events · just now" in text(html)


def test_r9_later_the_header_says_how_long_ago_in_the_users_zone(
    owner_client: Client, account: CalendarAccount
) -> None:
    finished(account, NOW - dt.timedelta(minutes=2, seconds=10), counts(4, 2))
    with time_machine.travel(NOW, tick=False):
        page = owner_client.get(PAGE).content.decode()
        fragment = owner_client.get(status_url(account), headers=HTMX).content.decode()
    for html in (page, fragment):
        assert "Status: Active · Last synced 2 minutes ago" in text(html)
        assert ">2\xa0minutes ago</time>" in html  # kept on one line
        # The exact time, in the owner's zone (Europe/Berlin), for a hover or a screen reader.
        assert 'datetime="2025-03-10T09:57:50+01:00" title="Mar 10, 2025 09:57 CET"' in html
        assert POLLS not in html


def test_r9_a_request_no_worker_took_stops_polling_after_a_while(
    owner_client: Client, account: CalendarAccount
) -> None:
    CalendarAccount.objects.filter(pk=account.pk).update(sync_requested_at=NOW - dt.timedelta(minutes=3))
    with time_machine.travel(NOW, tick=False):
        html = owner_client.get(status_url(account)).content.decode()
    assert "Status: Active · Not synced yet" in text(html)
    assert POLLS not in html


def test_r9_a_lease_that_ran_out_is_not_shown_as_running(
    owner_client: Client, account: CalendarAccount
) -> None:
    running(account, NOW - dt.timedelta(hours=1))
    finished_at = NOW - dt.timedelta(hours=2)
    CalendarAccount.objects.filter(pk=account.pk).update(last_synced_at=finished_at)
    with time_machine.travel(NOW, tick=False):
        html = owner_client.get(status_url(account)).content.decode()
    assert "Syncing" not in html
    assert "Last synced 2 hours ago" in text(html)
    assert POLLS not in html


@pytest.mark.parametrize(
    ("state", "badge"),
    [
        (AccountState.NEEDS_RECONNECT, "Needs reconnect"),
        (AccountState.INSUFFICIENT_PERMISSIONS, "Insufficient permissions"),
        (AccountState.ERROR, "Error"),
    ],
)
def test_r9_problem_states_show_in_the_fragment_without_polling(
    owner_client: Client, account: CalendarAccount, state: AccountState, badge: str
) -> None:
    CalendarAccount.objects.filter(pk=account.pk).update(state=state)
    html = owner_client.get(status_url(account), headers=HTMX).content.decode()
    assert f'id="account-state">{badge}</span>' in html
    assert 'role="alert" id="state-help"' in html
    assert POLLS not in html


def test_o9_not_started_says_so_in_the_fragment(owner_client: Client, owner: User) -> None:
    account = connect_account(owner)
    html = owner_client.get(status_url(account), headers=HTMX).content.decode()
    assert "Status: Not started · Not synced yet" in text(html)
    assert POLLS not in html


def test_r9_the_fragment_costs_a_constant_handful_of_queries(
    owner_client: Client, account: CalendarAccount, django_assert_max_num_queries: Any
) -> None:
    running(account, timezone.now())
    with django_assert_max_num_queries(5):  # session, user, account, preferences, the running run
        owner_client.get(status_url(account), headers=HTMX)


def test_c7_the_fragment_never_shows_credentials(owner_client: Client, account: CalendarAccount) -> None:
    html = owner_client.get(status_url(account)).content.decode()
    assert "fake-access" not in html
    assert "fake-refresh" not in html


@pytest.mark.parametrize("intruder", ["colleague", "outsider"])
def test_someone_elses_status_is_a_404(
    request: pytest.FixtureRequest, account: CalendarAccount, intruder: str
) -> None:
    client: Client = request.getfixturevalue(f"{intruder}_client")
    assert client.get(status_url(account), headers=HTMX).status_code == 404
    assert client.get(status_url(account)).status_code == 404


def test_status_needs_login_and_get(owner_client: Client, account: CalendarAccount) -> None:
    response = Client().get(status_url(account))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    assert owner_client.post(status_url(account)).status_code == 405


def test_a_stopped_accounts_status_is_a_404(owner_client: Client, account: CalendarAccount) -> None:
    owner_client.post(reverse("calendarsync:stop_sync", args=[account.pk]))
    assert owner_client.get(status_url(account), headers=HTMX).status_code == 404
