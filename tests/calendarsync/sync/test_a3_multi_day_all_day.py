"""A3 (with R3, R10): a multi-day all-day activity keeps all its days through push and pull.

All-day items stay dates (never midnight datetimes) and keep their length as whole days, on
every provider, whichever side made them and whichever side edits them.
"""

from __future__ import annotations

import datetime as dt

import pytest

from activities.models import Activity
from calendarsync.sync.mapping import activity_time
from tests.calendarsync.sync.conftest import SyncEnv, assert_in_step, soon

pytestmark = pytest.mark.django_db


def assert_days(sync_env: SyncEnv, activity: Activity, first: dt.date, days: int) -> None:
    activity.refresh_from_db()
    assert (activity.start_at, activity.due_date, activity.duration) == (None, first, dt.timedelta(days=days))
    event = sync_env.event_of(activity)
    assert event is not None
    assert (event.start_date, event.end_date) == (first, first + dt.timedelta(days=days))
    assert (event.start, event.end) == (None, None)


def test_a3_multi_day_all_day_activity_round_trips_unchanged(sync_env: SyncEnv) -> None:
    sync_env.start()
    first = soon(3).date()
    activity = sync_env.activity(
        subject="Trade fair", start_at=None, due_date=first, duration=dt.timedelta(days=3)
    )
    assert activity_time(activity) == {
        "start_date": first.isoformat(),
        "end_date": (first + dt.timedelta(days=3)).isoformat(),
    }
    sync_env.sync()
    assert_days(sync_env, activity, first, 3)
    # Edited in the calendar: the days stay.
    sync_env.control.update_event(sync_env.link_of(activity).external_id, location="Hall 4")
    sync_env.sync()
    assert_days(sync_env, activity, first, 3)
    assert activity.location == "Hall 4"
    # Edited in the CRM: the days stay.
    activity.subject = "Trade fair (stand 12)"
    activity.save()
    sync_env.sync()
    assert_days(sync_env, activity, first, 3)
    # A full listing changes nothing.
    sync_env.control.expire_cursor()
    outcome = sync_env.sync()
    assert outcome.result is not None
    assert not outcome.result.changed
    assert_days(sync_env, activity, first, 3)
    assert_in_step(sync_env)


def test_a3_multi_day_all_day_event_comes_in_with_all_its_days(sync_env: SyncEnv) -> None:
    sync_env.start()
    first = soon(4).date()
    event_id = sync_env.control.create_event("Offsite", first, first + dt.timedelta(days=2))
    sync_env.sync()
    activity = sync_env.imported(event_id)
    assert_days(sync_env, activity, first, 2)
    activity.note = "Bring the banner"
    activity.save()
    sync_env.sync()
    assert_days(sync_env, activity, first, 2)
    event = sync_env.control.event(event_id)
    assert event is not None
    assert event.description == "Bring the banner"
    assert_in_step(sync_env)
