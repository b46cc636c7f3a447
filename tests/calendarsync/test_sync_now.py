"""Sync now on the Calendar Sync page: queues the account's sync at once, once per 30 seconds.

htmx gets the status fragment back (it polls while the sync is queued or runs) or, when refused,
the message that replaces the one beside the button; a plain form POST is redirected to the page
with the same words as a message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import time_machine
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from calendarsync.actions import do_start_sync, do_stop_sync
from calendarsync.models import AccountState, CalendarAccount, SyncPreferences
from calendarsync.views_log import SYNC_NOW_INTERVAL, SYNC_REQUESTED_MESSAGE, sync_now_key
from tests.calendarsync.support import HTMX, connect_account

pytestmark = pytest.mark.django_db

PAGE = "/preferences/calendar-sync/"
NOW = dt.datetime(2025, 3, 10, 9, 0, tzinfo=dt.UTC)
POLLS = 'hx-trigger="load delay:2s"'
ASKED_AGAIN = "Sync requested a moment ago; you can ask again in {} s."


def sync_now_url(account: CalendarAccount) -> str:
    return reverse("calendarsync:sync_now", args=[account.pk])


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The accounts whose sync was sent to Celery, in order."""
    sent: list[int] = []
    monkeypatch.setattr("calendarsync.tasks._send_requested", sent.append)
    return sent


@pytest.fixture
def account(owner: User) -> CalendarAccount:
    """Started, synced a while ago, nothing queued: the page shows "Active" and the button."""
    account = connect_account(owner)
    do_start_sync(acting_user=owner, account=account)
    CalendarAccount.objects.filter(pk=account.pk).update(
        sync_requested_at=None, last_synced_at=timezone.now() - dt.timedelta(minutes=5)
    )
    account.refresh_from_db()
    return account


@pytest.fixture
def press(
    owner_client: Client, account: CalendarAccount, django_capture_on_commit_callbacks: Any
) -> Callable[..., Any]:
    """Press Sync now (htmx unless told otherwise); the sync is queued when the request commits."""

    def pressing(
        *, htmx: bool = True, client: Client = owner_client, target: CalendarAccount = account
    ) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(sync_now_url(target), headers=HTMX if htmx else {})

    return pressing


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def test_sync_now_queues_the_sync_and_answers_with_the_polling_status_fragment(
    press: Callable[..., Any], account: CalendarAccount, queued: list[int]
) -> None:
    response = press()

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="sync-status"')
    assert 'data-phase="queued"' in html
    assert POLLS in html
    assert "Sync status: Syncing…, starting in a few seconds." in html
    # The message beside the button is cleared (out of band), the page around it stays.
    assert '<p id="sync-now-message" class="sync-now-message" hx-swap-oob="true"></p>' in html
    assert "<html" not in html
    assert queued == [account.pk]
    account.refresh_from_db()
    assert account.sync_requested_at is not None


def test_sync_now_twice_within_30_seconds_queues_once_and_says_when_to_ask_again(
    press: Callable[..., Any], account: CalendarAccount, queued: list[int], clock: time_machine.Traveller
) -> None:
    assert press().status_code == 200
    clock.shift(dt.timedelta(seconds=7))

    response = press()

    assert response.status_code == 429
    assert response["Retry-After"] == "23"
    assert response["HX-Retarget"] == "#sync-now-message"
    assert response["HX-Reswap"] == "outerHTML"
    html = response.content.decode()
    assert 'id="sync-now-message"' in html
    assert ASKED_AGAIN.format(23) in html
    assert queued == [account.pk]


def test_sync_now_is_allowed_again_once_30_seconds_have_passed_since_the_stored_request(
    press: Callable[..., Any], account: CalendarAccount, queued: list[int]
) -> None:
    assert press().status_code == 200
    assert press().status_code == 429
    # Time travel: the stored request is now 31 seconds old (its cache expiry not applied yet).
    cache.set(sync_now_key(account.pk), (timezone.now() - dt.timedelta(seconds=31)).timestamp(), timeout=30)

    response = press()

    assert response.status_code == 200
    assert queued == [account.pk, account.pk]
    assert press().status_code == 429  # and the new request starts a new interval


def test_sync_now_is_allowed_again_when_the_clock_passed_the_interval(
    press: Callable[..., Any], account: CalendarAccount, queued: list[int], clock: time_machine.Traveller
) -> None:
    assert press().status_code == 200
    clock.shift(SYNC_NOW_INTERVAL - dt.timedelta(seconds=1))
    refused = press()
    assert refused.status_code == 429
    assert ASKED_AGAIN.format(1) in refused.content.decode()
    clock.shift(dt.timedelta(seconds=1))

    assert press().status_code == 200
    assert queued == [account.pk, account.pk]


def test_sync_now_limits_each_account_on_its_own(
    press: Callable[..., Any], account: CalendarAccount, queued: list[int], colleague: User
) -> None:
    theirs = connect_account(colleague)
    do_start_sync(acting_user=colleague, account=theirs)
    client = Client()
    client.force_login(colleague)

    assert press().status_code == 200
    assert press(client=client, target=theirs).status_code == 200


def test_sync_now_without_javascript_redirects_back_with_a_message(
    press: Callable[..., Any], owner_client: Client, account: CalendarAccount, queued: list[int]
) -> None:
    response = press(htmx=False)

    assert response.status_code == 302
    assert response["Location"] == PAGE
    page = owner_client.get(PAGE).content.decode()
    assert SYNC_REQUESTED_MESSAGE in page
    assert queued == [account.pk]

    again = press(htmx=False)

    assert again.status_code == 302
    assert again["Location"] == PAGE
    assert "Sync requested a moment ago; you can ask again in" in owner_client.get(PAGE).content.decode()
    assert queued == [account.pk]


def test_sync_now_of_an_account_whose_sync_is_not_started_is_refused(
    owner: User, owner_client: Client, queued: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    account = connect_account(owner)

    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(sync_now_url(account), headers=HTMX)

    assert response.status_code == 409
    assert "The sync is not started" in response.content.decode()
    assert queued == []
    # The refusal took nothing: once started, the first press goes through.
    do_start_sync(acting_user=owner, account=account)
    queued.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert owner_client.post(sync_now_url(account), headers=HTMX).status_code == 200
    assert queued == [account.pk]


def test_sync_now_of_an_account_whose_sync_was_stopped_is_refused(
    press: Callable[..., Any], account: CalendarAccount, queued: list[int]
) -> None:
    SyncPreferences.objects.filter(account=account).update(sync_stopped_at=timezone.now())

    response = press()

    assert response.status_code == 409
    assert "The sync is not started" in response.content.decode()
    assert queued == []


def test_sync_now_of_a_disconnected_account_is_not_found(
    press: Callable[..., Any], owner: User, account: CalendarAccount, queued: list[int]
) -> None:
    do_stop_sync(acting_user=owner, account=account)

    assert press().status_code == 404
    assert queued == []


def test_sync_now_of_an_account_that_needs_reconnecting_says_to_reconnect(
    press: Callable[..., Any], account: CalendarAccount, queued: list[int]
) -> None:
    CalendarAccount.objects.filter(pk=account.pk).update(state=AccountState.NEEDS_RECONNECT)

    response = press()

    assert response.status_code == 409
    assert "needs attention (needs reconnect): reconnect it first." in response.content.decode()
    assert queued == []


@pytest.mark.parametrize("who", ["colleague_client", "outsider_client"])
def test_sync_now_of_another_users_account_is_not_found(
    request: pytest.FixtureRequest, who: str, press: Callable[..., Any], queued: list[int]
) -> None:
    response = press(client=request.getfixturevalue(who))

    assert response.status_code == 404
    assert queued == []


def test_sync_now_needs_a_signed_in_post_with_its_csrf_token(
    account: CalendarAccount, owner: User, owner_client: Client, queued: list[int]
) -> None:
    anonymous = Client().post(sync_now_url(account))
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("account_login"))
    assert owner_client.get(sync_now_url(account)).status_code == 405
    guarded = Client(enforce_csrf_checks=True)
    guarded.force_login(owner)
    assert guarded.post(sync_now_url(account)).status_code == 403
    assert queued == []


def test_the_page_shows_sync_now_only_while_the_sync_is_on_and_may_run(
    owner: User, owner_client: Client, account: CalendarAccount
) -> None:
    html = owner_client.get(PAGE).content.decode()
    assert 'id="sync-now"' in html
    assert f'hx-post="{sync_now_url(account)}" hx-target="#sync-status" hx-swap="outerHTML"' in html
    assert f'action="{sync_now_url(account)}"' in html  # a plain form without JavaScript
    assert 'aria-describedby="sync-now-message"' in html

    CalendarAccount.objects.filter(pk=account.pk).update(state=AccountState.NEEDS_RECONNECT)
    assert 'id="sync-now"' not in owner_client.get(PAGE).content.decode()

    SyncPreferences.objects.filter(account=account).update(sync_started_at=None)
    CalendarAccount.objects.filter(pk=account.pk).update(state=AccountState.ACTIVE)
    assert 'id="sync-now"' not in owner_client.get(PAGE).content.decode()
