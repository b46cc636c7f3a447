"""R16: a refusal concerning one event is that item's error; only account-level refusals change the account.

Per-event refusals (a 403 on one event, 400 invalid data, 404 on one event) leave the account
syncing the rest, record the provider's reason on the item, and are retried with backoff (an hour,
doubling to a day) or at once when the item changes; never every run (issue #12, holes 11 and 12).
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from activities.models import Activity, SyncStatus
from calendarsync.models import AccountState, EventLink, ItemFailure, LinkState
from calendarsync.sync import item_errors
from calendarsync.sync.errors import ITEM_RETRY_FIRST, ITEM_RETRY_MAX, item_failures_detail, item_retry_delay
from tests.calendarsync.sync.conftest import SyncEnv, assert_in_step, soon

pytestmark = pytest.mark.django_db

NO_CHANGE_QUERY_BUDGET = 5
# The provider's own reason for each injected refusal, as the item's error must quote it.
REASONS = {
    403: {
        "google": "forbiddenForNonOrganizer",
        "microsoft": "ErrorAccessDenied",
        "exchange": "ErrorAccessDenied",
    },
    400: {"google": "invalid", "microsoft": "ErrorInvalidRequest", "exchange": "ErrorInvalidPropertySet"},
    404: {"google": "notFound", "microsoft": "ErrorItemNotFound", "exchange": "ErrorItemNotFound"},
}


def reload(activity: Activity) -> Activity:
    activity.refresh_from_db()
    return activity


def synced_pair(sync_env: SyncEnv) -> tuple[Activity, Activity]:
    sync_env.start()
    refused = sync_env.activity(subject="Board meeting", start_at=soon(2, 9))
    other = sync_env.activity(subject="Team call", start_at=soon(2, 11))
    sync_env.sync()
    return refused, other


def edit(activity: Activity, **changes: object) -> None:
    for name, value in changes.items():
        setattr(activity, name, value)
    activity.save()


def refuse_next_write(sync_env: SyncEnv, activity: Activity, status: int) -> None:
    sync_env.control.inject_event_failure(sync_env.link_of(activity).external_id, status=status)


def rewind_backoff(sync_env: SyncEnv) -> None:
    """An item's wait is over (as if the hour had passed)."""
    ItemFailure.objects.filter(account=sync_env.account).update(
        retry_at=timezone.now() - dt.timedelta(seconds=1)
    )


@pytest.mark.parametrize("status", [403, 400, 404])
def test_r16_per_event_refusal_is_an_item_error(sync_env: SyncEnv, status: int) -> None:
    refused, other = synced_pair(sync_env)
    edit(refused, location="Room 1")
    edit(other, location="Room 2")
    refuse_next_write(sync_env, refused, status)

    outcome = sync_env.sync()

    assert sync_env.account.state == AccountState.ACTIVE
    assert sync_env.account.state_detail == ""
    refused = reload(refused)
    assert refused.sync_status == SyncStatus.ERROR
    assert REASONS[status][sync_env.setup.provider] in refused.sync_error
    assert reload(other).sync_status == SyncStatus.SYNCED
    other_event = sync_env.event_of(other)
    assert other_event is not None
    assert other_event.location == "Room 2"
    # The refused edit is not lost: the link still holds the old agreement, the event is untouched.
    refused_event = sync_env.event_of(refused)
    assert refused_event is not None
    assert refused_event.location == ""
    assert outcome.result is not None
    assert [error.item for error in outcome.result.pushed.errors] == [f"activity {refused.pk}"]


def test_r16_per_event_403_is_an_item_error(sync_env: SyncEnv) -> None:
    """The case of issue #12: Google's forbiddenForNonOrganizer on one PATCH blocked the account."""
    refused, other = synced_pair(sync_env)
    edit(refused, subject="Board meeting (moved)")
    refuse_next_write(sync_env, refused, 403)
    sync_env.sync()
    assert sync_env.account.state == AccountState.ACTIVE
    # The account goes on syncing: a later edit of another item goes out.
    edit(other, subject="Team call (renamed)")
    sync_env.sync()
    event = sync_env.event_of(other)
    assert event is not None
    assert event.subject == "Team call (renamed)"
    assert reload(refused).sync_status == SyncStatus.ERROR


def test_r16_calendar_level_403_still_changes_the_account(sync_env: SyncEnv) -> None:
    """Only account-level refusals change the account (C4)."""
    refused, _ = synced_pair(sync_env)
    sync_env.control.deny_calendar_access()
    edit(refused, location="Room 1")
    sync_env.sync(expect="blocked")
    assert sync_env.account.state == AccountState.INSUFFICIENT_PERMISSIONS


def test_r16_a_refused_item_is_not_resent_every_run(sync_env: SyncEnv) -> None:
    refused, _ = synced_pair(sync_env)
    edit(refused, location="Room 1")
    refuse_next_write(sync_env, refused, 403)
    sync_env.sync()
    failure = ItemFailure.objects.get(account=sync_env.account, activity=refused)
    assert failure.failures == 1
    assert failure.retry_at - failure.failed_at == ITEM_RETRY_FIRST

    # The next run sends nothing: one request (the listing) and the no-change query budget.
    sync_env.control.reset_counts()
    with CaptureQueriesContext(connection) as queries:
        outcome = sync_env.sync()
    assert outcome.result is not None
    assert not outcome.result.changed
    assert sync_env.control.api_requests() == 1
    assert len(queries.captured_queries) <= NO_CHANGE_QUERY_BUDGET, [
        q["sql"] for q in queries.captured_queries
    ]
    assert reload(refused).sync_status == SyncStatus.ERROR

    # Once the wait is over it is sent again; refused again, it waits twice as long.
    refuse_next_write(sync_env, refused, 403)
    rewind_backoff(sync_env)
    sync_env.sync()
    failure.refresh_from_db()
    assert failure.failures == 2
    assert failure.retry_at - failure.failed_at == 2 * ITEM_RETRY_FIRST
    assert reload(refused).sync_status == SyncStatus.ERROR

    # Accepted at last: the refusal is forgotten and both sides agree.
    rewind_backoff(sync_env)
    sync_env.sync()
    assert reload(refused).sync_status == SyncStatus.SYNCED
    assert not ItemFailure.objects.filter(account=sync_env.account).exists()
    event = sync_env.event_of(refused)
    assert event is not None
    assert event.location == "Room 1"
    assert_in_step(sync_env)


def test_r16_a_refused_item_is_retried_at_once_when_it_changes(sync_env: SyncEnv) -> None:
    refused, _ = synced_pair(sync_env)
    edit(refused, location="Room 1")
    refuse_next_write(sync_env, refused, 403)
    sync_env.sync()
    assert reload(refused).sync_status == SyncStatus.ERROR

    edit(refused, location="Room 7")  # the user fixes what the calendar refused
    sync_env.sync()
    assert reload(refused).sync_status == SyncStatus.SYNCED
    event = sync_env.event_of(refused)
    assert event is not None
    assert event.location == "Room 7"
    assert not ItemFailure.objects.filter(account=sync_env.account).exists()


def test_r16_a_refused_deletion_waits_and_is_retried(sync_env: SyncEnv) -> None:
    refused, other = synced_pair(sync_env)
    external_id = sync_env.link_of(refused).external_id
    refused.delete()
    sync_env.control.inject_event_failure(external_id, status=403)
    outcome = sync_env.sync()
    assert sync_env.account.state == AccountState.ACTIVE
    assert outcome.result is not None
    assert [error.item for error in outcome.result.pushed.errors] == [external_id]
    assert sync_env.control.event(external_id) is not None
    assert EventLink.objects.get(account=sync_env.account, external_id=external_id).state == (
        LinkState.DELETE_PENDING
    )
    assert item_errors.failing_items(sync_env.account).count() == 1

    sync_env.control.reset_counts()
    sync_env.sync()
    assert sync_env.control.api_requests() == 1  # not tried again before its wait is over

    rewind_backoff(sync_env)
    sync_env.sync()
    assert sync_env.control.event(external_id) is None
    assert not EventLink.objects.filter(account=sync_env.account, external_id=external_id).exists()
    assert not ItemFailure.objects.filter(account=sync_env.account).exists()
    assert reload(other).sync_status == SyncStatus.SYNCED


def test_r16_backoff_doubles_from_an_hour_to_a_day() -> None:
    waits = [item_retry_delay(n) for n in range(1, 8)]
    assert waits[:5] == [dt.timedelta(hours=h) for h in (1, 2, 4, 8, 16)]
    assert waits[5:] == [ITEM_RETRY_MAX, ITEM_RETRY_MAX]
    assert item_retry_delay(10_000) == ITEM_RETRY_MAX


def test_r16_lasting_refusals_put_the_account_in_error(sync_env: SyncEnv) -> None:
    refused, other = synced_pair(sync_env)
    edit(refused, location="Room 1")
    refuse_next_write(sync_env, refused, 403)
    sync_env.sync()
    assert sync_env.account.state == AccountState.ACTIVE

    # Still refused a day later: the account says so, and keeps syncing the rest.
    ItemFailure.objects.filter(account=sync_env.account).update(
        first_failed_at=timezone.now() - dt.timedelta(hours=25)
    )
    sync_env.sync()
    assert sync_env.account.state == AccountState.ERROR
    assert sync_env.account.state_detail == item_failures_detail(1)
    edit(other, location="Room 2")
    sync_env.sync()
    assert reload(other).sync_status == SyncStatus.SYNCED
    assert sync_env.account.state == AccountState.ERROR

    # The item goes through at last: the account is back to active.
    rewind_backoff(sync_env)
    sync_env.sync()
    assert reload(refused).sync_status == SyncStatus.SYNCED
    assert sync_env.account.state == AccountState.ACTIVE
    assert sync_env.account.state_detail == ""


def test_r16_the_status_says_how_many_items_could_not_be_synced(sync_env: SyncEnv) -> None:
    from django.test import Client
    from django.urls import reverse

    client = Client()
    client.force_login(sync_env.owner)
    url = reverse("calendarsync:sync_status", args=[sync_env.account.pk])

    def status_text() -> str:
        html = client.get(url, headers={"HX-Request": "true"}).content.decode()
        return " ".join(re.sub(r"<[^>]+>", " ", html).split())

    refused, other = synced_pair(sync_env)
    assert "could not be synced" not in status_text()
    edit(refused, location="Room 1")
    edit(other, location="Room 2")
    refuse_next_write(sync_env, refused, 403)
    refuse_next_write(sync_env, other, 400)
    sync_env.sync()
    assert "2 items could not be synced" in status_text()
    assert sync_env.account.state == AccountState.ACTIVE

    edit(other, location="Room 3")  # changed: sent again at once, and accepted
    sync_env.sync()
    assert "1 item could not be synced" in status_text()
    assert "2 items" not in status_text()
    rewind_backoff(sync_env)
    sync_env.sync()
    assert "could not be synced" not in status_text()


def test_r16_the_exchange_error_map_tells_one_item_from_the_calendar() -> None:
    from exchangelib import errors as ews

    from calendarsync.providers.base import InsufficientPermissions, InvalidEvent
    from calendarsync.providers.exchange.errors import Operation, map_exchange_error

    denied = ews.ErrorAccessDenied("Access is denied.")
    assert type(map_exchange_error(denied, Operation.WRITE)) is InvalidEvent
    assert type(map_exchange_error(denied, Operation.READ)) is InvalidEvent
    assert type(map_exchange_error(denied, Operation.LIST)) is InsufficientPermissions
    assert type(map_exchange_error(denied, Operation.CHANGES)) is InsufficientPermissions
    assert type(map_exchange_error(denied, Operation.CREATE)) is InsufficientPermissions
