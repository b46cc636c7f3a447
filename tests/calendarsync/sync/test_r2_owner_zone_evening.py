"""R2 and R9 for a user west of UTC in their evening, when UTC is already on the next day.

The status given at save and the run itself judge "today" and "past" by an aware now in the owner's
zone, never the server's (issue #12, hole 17b). The clock is set with time_machine to the owner's
evening nearest to the real now (the emulators' tokens stay valid).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from activities.models import Activity, SyncStatus
from tests.calendarsync.sync.conftest import SyncEnv

pytestmark = pytest.mark.django_db

LOS_ANGELES = ZoneInfo("America/Los_Angeles")


def owners_evening(hour: int, minute: int) -> dt.datetime:
    """Today's (or yesterday's) ``hour:minute`` in Los Angeles, whichever is nearer the real now."""
    real = dt.datetime.now(LOS_ANGELES)
    wanted = real.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if wanted - real > dt.timedelta(hours=12):
        wanted -= dt.timedelta(days=1)
    elif real - wanted > dt.timedelta(hours=12):
        wanted += dt.timedelta(days=1)
    return wanted


@pytest.fixture
def in_los_angeles(sync_env: SyncEnv, settings: Any) -> None:
    settings.TIME_ZONE = "Asia/Tokyo"  # the server's zone must not matter
    sync_env.owner.time_zone = "America/Los_Angeles"
    sync_env.owner.save()


def reload(activity: Activity) -> Activity:
    activity.refresh_from_db()
    return activity


@pytest.mark.usefixtures("in_los_angeles")
def test_r2_an_evening_west_of_utc_gives_todays_items_a_status_and_syncs_them(sync_env: SyncEnv) -> None:
    evening = owners_evening(20, 30)  # 03:30 or 04:30 UTC: already tomorrow there
    assert evening.astimezone(dt.UTC).date() > evening.date()
    with time_machine.travel(evening, tick=False):
        sync_env.start()
        sync_env.sync()
        today = evening.date()
        all_day = sync_env.activity(subject="Today, all day", start_at=None, due_date=today, duration=None)
        later = sync_env.activity(subject="Tonight", start_at=evening + dt.timedelta(hours=1))
        assert (reload(all_day).sync_status, reload(all_day).calendar_account_id) == (
            SyncStatus.PENDING,
            sync_env.account.pk,
        )
        assert reload(later).sync_status == SyncStatus.PENDING
        sync_env.sync()
        assert reload(all_day).sync_status == SyncStatus.SYNCED
        assert reload(later).sync_status == SyncStatus.SYNCED
        events = {event.subject: event for event in sync_env.control.events()}
        assert events["Today, all day"].start_date == today


@pytest.mark.usefixtures("in_los_angeles")
def test_r2_an_item_that_began_yesterday_in_the_owners_zone_and_runs_on_is_sent(sync_env: SyncEnv) -> None:
    """The run's cheap "anything due?" check must not judge the day in UTC either."""
    evening = owners_evening(17, 30)  # 00:30 or 01:30 UTC, the next day
    assert evening.astimezone(dt.UTC).date() > evening.date()
    with time_machine.travel(evening, tick=False):
        sync_env.start()
        sync_env.sync()
        night_shift = sync_env.activity(
            subject="Trade fair",
            start_at=evening.replace(hour=23, minute=0) - dt.timedelta(days=1),
            duration=dt.timedelta(hours=20),  # yesterday 23:00 to today 19:00, still running
        )
        assert night_shift.due_date == evening.date() - dt.timedelta(days=1)
        assert reload(night_shift).sync_status == SyncStatus.PENDING
        sync_env.sync()
        assert reload(night_shift).sync_status == SyncStatus.SYNCED
        assert [event.subject for event in sync_env.control.events()] == ["Trade fair"]
        assert timezone.now() == evening
