"""R12: a full listing of a window is the truth for that window (R3, R10).

Graph delta and EWS SyncFolderItems start a fresh round with no tombstones for what was deleted
before it: after the daily full listing, an expired cursor or a long downtime, a linked event the
listing lacks was deleted, and is handled like an explicit deletion; so is one an earlier account
of the user linked (Stop sync, Add account, Start sync: C6).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from activities.models import Activity, SyncStatus
from calendarsync.actions import do_stop_sync
from calendarsync.models import ActivityTrash, CalendarAccount, EventLink, LinkState, Provider, SyncType
from calendarsync.providers.base import CalendarProvider, RemoteEvent, TransientError
from tests.calendarsync.sync.conftest import SyncEnv, assert_in_step, soon
from tests.calendarsync.sync.test_r2_reconnect_catch_up import reconnect, sign_in_again

pytestmark = pytest.mark.django_db


def force_full_listing(sync_env: SyncEnv) -> None:
    """The daily full listing is due (the cursor itself is still good)."""
    CalendarAccount.objects.filter(pk=sync_env.account.pk).update(
        full_sync_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    )


@pytest.mark.parametrize("trigger", ["expired_cursor", "daily_full_listing"])
def test_r12_full_listing_deletes_links_missing_from_window(sync_env: SyncEnv, trigger: str) -> None:
    sync_env.start()
    crm_made = sync_env.activity(subject="Pitch", start_at=soon(2, 10), note="Numbers")
    kept = sync_env.activity(subject="Stays", start_at=soon(3, 10))
    event_id = sync_env.control.create_event("From the calendar", soon(4, 9), soon(4, 10))
    sync_env.sync()
    imported = sync_env.imported(event_id)
    sync_env.control.delete_event(sync_env.link_of(crm_made).external_id)
    sync_env.control.delete_event(event_id)
    if trigger == "expired_cursor":
        sync_env.control.expire_cursor()
    else:
        force_full_listing(sync_env)
    outcome = sync_env.sync()
    assert outcome.result is not None
    assert outcome.result.full_sync
    assert outcome.result.pulled.deleted == 2
    assert not Activity.objects.filter(pk__in=[crm_made.pk, imported.pk]).exists()
    assert set(ActivityTrash.objects.values_list("activity_id", flat=True)) == {crm_made.pk, imported.pk}
    assert Activity.objects.get(pk=kept.pk).sync_status == SyncStatus.SYNCED
    assert_in_step(sync_env)
    # The next runs change nothing more.
    assert sync_env.sync().result is not None
    assert Activity.objects.filter(pk=kept.pk).exists()
    assert_in_step(sync_env)


def test_r12_one_way_full_listing_detaches_missing_events(sync_env: SyncEnv) -> None:
    sync_env.set_preferences(sync_type=SyncType.ONE_WAY)
    sync_env.start()
    activity = sync_env.activity(subject="Client call", start_at=soon(2, 14))
    sync_env.sync()
    sync_env.control.delete_event(sync_env.link_of(activity).external_id)
    sync_env.control.expire_cursor()
    sync_env.sync()
    activity.refresh_from_db()
    assert activity.sync_status == SyncStatus.SKIPPED
    assert sync_env.link_of(activity).state == LinkState.DETACHED
    # Changed again in the CRM: it is sent again, as one new event (no "deleted in the calendar" skip).
    activity.subject = "Client call (rescheduled)"
    activity.save()
    sync_env.sync()
    sync_env.sync()
    assert [e.subject for e in sync_env.control.events()] == ["Client call (rescheduled)"]
    assert Activity.objects.get(pk=activity.pk).sync_status == SyncStatus.SYNCED


def test_r12_events_outside_the_window_are_left_alone(sync_env: SyncEnv) -> None:
    sync_env.start()
    far = sync_env.activity(subject="Far ahead", start_at=soon(420, 10))
    near = sync_env.activity(subject="Near", start_at=soon(2, 10))
    sync_env.sync()
    far_event = sync_env.link_of(far).external_id
    sync_env.control.expire_cursor()
    sync_env.control.reset_counts()
    sync_env.sync()
    assert Activity.objects.filter(pk__in=[far.pk, near.pk]).count() == 2
    assert sync_env.link_of(far).state == LinkState.ACTIVE
    assert sync_env.control.event(far_event) is not None
    assert not ActivityTrash.objects.exists()


def test_r12_event_moved_out_of_the_window_is_not_taken_for_deleted(sync_env: SyncEnv) -> None:
    sync_env.start()
    activity = sync_env.activity(subject="Moved far", start_at=soon(2, 10))
    sync_env.sync()
    event_id = sync_env.link_of(activity).external_id
    sync_env.control.update_event(event_id, start=soon(430, 10), end=soon(430, 11))
    sync_env.control.expire_cursor()
    sync_env.sync()
    activity.refresh_from_db()
    assert activity.start_at == soon(430, 10)
    assert sync_env.link_of(activity).state == LinkState.ACTIVE
    assert not ActivityTrash.objects.exists()
    assert sync_env.control.event(event_id) is not None


class FlakyReads:
    """The real adapter, whose next ``failures`` reads by id fail as if the calendar were busy."""

    def __init__(self, inner: CalendarProvider, failures: int) -> None:
        self.inner = inner
        self.failures = failures

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get_event(self, calendar_id: str, external_id: str) -> RemoteEvent:
        if self.failures:
            self.failures -= 1
            raise TransientError("The calendar is busy")
        return self.inner.get_event(calendar_id, external_id)


def test_r12_nothing_is_taken_for_deleted_until_confirmed(sync_env: SyncEnv) -> None:
    if sync_env.setup.provider == Provider.GOOGLE:
        pytest.skip("Google's full listing (showDeleted) reports the deletion itself: nothing to confirm")
    sync_env.start()
    activity = sync_env.activity(subject="Pitch", start_at=soon(2, 10))
    sync_env.sync()
    sync_env.control.delete_event(sync_env.link_of(activity).external_id)
    sync_env.control.expire_cursor()
    real_factory = sync_env.setup.provider_factory
    sync_env.setup.provider_factory = lambda account: FlakyReads(real_factory(account), 1)
    sync_env.sync(expect="retry")
    assert Activity.objects.filter(pk=activity.pk).exists()
    assert sync_env.link_of(activity).state == LinkState.ACTIVE
    # The cursor was not stored: the next run lists everything again and confirms the deletion.
    sync_env.setup.provider_factory = real_factory
    outcome = sync_env.sync()
    assert outcome.result is not None
    assert outcome.result.full_sync
    assert not Activity.objects.filter(pk=activity.pk).exists()
    assert ActivityTrash.objects.filter(activity_id=activity.pk).exists()


def test_r12_full_listing_removes_occurrences_cancelled_meanwhile(sync_env: SyncEnv) -> None:
    sync_env.start()
    series_id = sync_env.control.create_event("Stand-up", soon(1, 9), soon(1, 10), daily_count=3)
    sync_env.sync()
    sync_env.control.expire_cursor()
    cancelled = sync_env.control.cancel_instance(series_id, soon(2, 9))
    sync_env.sync()
    remaining = Activity.objects.filter(event_links__account=sync_env.account).order_by("start_at")
    assert [a.start_at for a in remaining] == [soon(1, 9), soon(3, 9)]
    assert not EventLink.objects.filter(account=sync_env.account, external_id=cancelled).exists()
    assert ActivityTrash.objects.count() == 1


@pytest.mark.parametrize("when", ["before_stop_sync", "while_stopped"])
def test_r12_r3_deletions_no_run_saw_go_through_with_the_next_account(
    sync_env: SyncEnv, request: pytest.FixtureRequest, when: str
) -> None:
    """C6: events deleted in the calendar before Stop sync (no run saw it) or while stopped are
    absent from the next account's first listing: their activities go to the trash then (R3),
    as calendar edits made meanwhile come in; an event still there stays linked, nothing twice."""
    sync_env.start()
    crm_made = sync_env.activity(subject="Pitch", start_at=soon(2, 10))
    kept = sync_env.activity(subject="Stays", start_at=soon(3, 10))
    event_id = sync_env.control.create_event("From the calendar", soon(4, 9), soon(4, 10))
    sync_env.sync()
    imported = sync_env.imported(event_id)
    kept_event = sync_env.link_of(kept).external_id
    if when == "while_stopped":
        do_stop_sync(acting_user=sync_env.owner, account=sync_env.account)
    sync_env.control.delete_event(sync_env.link_of(crm_made).external_id)
    sync_env.control.delete_event(event_id)
    reconnect(sync_env, sign_in_again(sync_env, request))
    outcome = sync_env.sync()
    assert outcome.result is not None
    assert outcome.result.pulled.deleted == 2
    assert not Activity.objects.filter(pk__in=[crm_made.pk, imported.pk]).exists()
    assert set(ActivityTrash.objects.values_list("activity_id", flat=True)) == {crm_made.pk, imported.pk}
    assert sync_env.link_of(kept).external_id == kept_event
    assert [event.external_id for event in sync_env.control.events()] == [kept_event]
    # The next runs change nothing more.
    sync_env.sync()
    assert Activity.objects.filter(owner=sync_env.owner).count() == 1
    assert ActivityTrash.objects.count() == 2
