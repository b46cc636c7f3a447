"""R15 (with R2, R9, O6): items that leave what is synced.

An item moved into the past has that move mirrored on the other side, then stops syncing and
says so. A calendar event that becomes private while O6 is "don't sync" leaves the CRM (to the
trash, restorable) and stops syncing.
"""

from __future__ import annotations

import datetime as dt

import pytest

from activities.models import Activity, SyncStatus, Visibility
from calendarsync.models import ActivityTrash, EventLink, PrivateEvents
from calendarsync.sync.leaving import MOVED_INTO_PAST_REASON
from calendarsync.sync.trash import restore
from tests.calendarsync.sync.conftest import SyncEnv, soon

pytestmark = pytest.mark.django_db


# --------------------------------------------------------------------------- moved into the past


def move_activity(activity: Activity, start: dt.datetime) -> None:
    activity.start_at = start
    activity.due_date = start.date()
    activity.save()


def test_r15_activity_moved_into_the_past_moves_its_event_then_stops_syncing(sync_env: SyncEnv) -> None:
    sync_env.start()
    activity = sync_env.activity(subject="Review", start_at=soon(2, 10))
    sync_env.sync()
    event_id = sync_env.link_of(activity).external_id
    move_activity(activity, soon(-3, 10))
    sync_env.sync()
    event = sync_env.control.event(event_id)
    assert event is not None
    assert event.start == soon(-3, 10)
    activity.refresh_from_db()
    assert (activity.sync_status, activity.sync_error) == (SyncStatus.SKIPPED, MOVED_INTO_PAST_REASON)
    # From now on it no longer syncs.
    activity.subject = "Review (notes)"
    activity.save()
    sync_env.sync()
    event = sync_env.control.event(event_id)
    assert event is not None
    assert event.subject == "Review"
    assert Activity.objects.get(pk=activity.pk).sync_status == SyncStatus.SKIPPED
    assert len(sync_env.control.events()) == 1


@pytest.mark.parametrize("origin", ["calendar", "crm"])
def test_r15_event_moved_into_the_past_moves_its_activity_then_stops_syncing(
    sync_env: SyncEnv, origin: str
) -> None:
    sync_env.start()
    if origin == "calendar":
        event_id = sync_env.control.create_event("Review", soon(2, 10), soon(2, 11))
        sync_env.sync()
        activity = sync_env.imported(event_id)
    else:
        activity = sync_env.activity(subject="Review", start_at=soon(2, 10))
        sync_env.sync()
        event_id = sync_env.link_of(activity).external_id
    sync_env.control.update_event(event_id, start=soon(-3, 10), end=soon(-3, 11))
    sync_env.sync()
    activity.refresh_from_db()
    assert activity.start_at == soon(-3, 10)
    assert activity.due_date == soon(-3, 10).date()
    assert (activity.sync_status, activity.sync_error) == (SyncStatus.SKIPPED, MOVED_INTO_PAST_REASON)
    # From now on it no longer syncs.
    sync_env.control.update_event(event_id, subject="Review (renamed)")
    sync_env.sync()
    activity.refresh_from_db()
    assert activity.subject == "Review"
    assert activity.sync_status == SyncStatus.SKIPPED
    assert Activity.objects.filter(owner=sync_env.owner).count() == 1


# --------------------------------------------------------------------------- private under "don't sync"


def test_r15_event_made_private_under_dont_sync_leaves_the_crm(sync_env: SyncEnv) -> None:
    sync_env.set_preferences(private_events=PrivateEvents.SKIP)
    sync_env.start()
    event_id = sync_env.control.create_event("Lunch", soon(2, 12), soon(2, 13), description="Table 4")
    sync_env.sync()
    activity = sync_env.imported(event_id)
    sync_env.control.set_private(event_id, True)
    outcome = sync_env.sync()
    assert outcome.result is not None
    assert outcome.result.pulled.deleted == 1
    assert not Activity.objects.filter(pk=activity.pk).exists()
    assert not EventLink.objects.filter(account=sync_env.account).exists()
    entry = ActivityTrash.objects.get(activity_id=activity.pk)
    assert entry.data["note"] == "Table 4"
    # The event stays in the calendar, and later changes to it stay out of the CRM.
    assert sync_env.control.event(event_id) is not None
    sync_env.control.update_event(event_id, location="Canteen")
    sync_env.sync()
    assert not Activity.objects.filter(owner=sync_env.owner).exists()
    # Restorable from the trash.
    assert restore(entry).subject == "Lunch"


def test_r15_private_then_public_again_comes_back_visible_to_everyone(sync_env: SyncEnv) -> None:
    sync_env.set_preferences(private_events=PrivateEvents.SKIP)
    sync_env.start()
    event_id = sync_env.control.create_event("Lunch", soon(2, 12), soon(2, 13))
    sync_env.sync()
    sync_env.control.set_private(event_id, True)
    sync_env.sync()
    assert not Activity.objects.filter(owner=sync_env.owner).exists()
    sync_env.control.set_private(event_id, False)
    sync_env.sync()
    activity = sync_env.imported(event_id)
    assert activity.visibility == Visibility.EVERYONE
    assert Activity.objects.filter(owner=sync_env.owner).count() == 1


def test_r15_crm_made_event_made_private_stays_under_dont_sync(sync_env: SyncEnv) -> None:
    """The setting is about calendar events; an activity made in the CRM stays, now private (A6)."""
    sync_env.set_preferences(private_events=PrivateEvents.SKIP)
    sync_env.start()
    activity = sync_env.activity(subject="Pitch", start_at=soon(2, 10))
    sync_env.sync()
    sync_env.control.set_private(sync_env.link_of(activity).external_id, True)
    sync_env.sync()
    activity.refresh_from_db()
    assert activity.visibility == Visibility.OWNER
    assert not ActivityTrash.objects.exists()
