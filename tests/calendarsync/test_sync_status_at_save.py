"""The sync status a CRM save gives an activity at once, before any sync run (R2, R9; issue #10).

A new past-dated activity used to show "—" until the next run although R2 already decides it:
it is skipped. Past or not is judged with an aware "now" in the owner's time zone.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from activities.models import Activity, ActivityType, SyncStatus
from calendarsync.models import CalendarAccount, EventLink, LinkOrigin, Provider, SyncPreferences
from calendarsync.sync.reasons import Reason
from calendarsync.sync.save_status import PAST_REASON, status_at_save
from tests.conftest import make_activity

pytestmark = pytest.mark.django_db

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
# Tuesday 14 January 2025, 03:00 UTC: 04:00 in Berlin, still Monday 13 January (22:00) in New York.
NOW = dt.datetime(2025, 1, 14, 3, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def frozen() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


def start_sync(user: User, *, types: tuple[str, ...] = ("Meeting", "Call")) -> CalendarAccount:
    account = CalendarAccount.objects.create(user=user, provider=Provider.GOOGLE, email=f"cal.{user.email}")
    preferences = SyncPreferences.objects.create(account=account, sync_started_at=NOW - dt.timedelta(days=7))
    preferences.outgoing_types.set(ActivityType.objects.filter(company=user.company, name__in=types))
    return account


def saved(activity: Activity) -> Activity:
    activity.refresh_from_db()
    return activity


def test_r2_a_new_past_activity_is_skipped_at_save_with_its_account(owner: User) -> None:
    account = start_sync(owner)
    activity = saved(make_activity(owner, subject="Yesterday's call", start_at=NOW - dt.timedelta(days=1)))
    assert (activity.sync_status, activity.sync_error) == (SyncStatus.SKIPPED, PAST_REASON)
    assert activity.calendar_account == account


def test_r2_a_timed_activity_is_past_once_it_has_ended(owner: User) -> None:
    start_sync(owner)
    ended = make_activity(owner, start_at=NOW - dt.timedelta(hours=1), duration=dt.timedelta(minutes=30))
    running = make_activity(owner, start_at=NOW - dt.timedelta(minutes=10), duration=dt.timedelta(hours=1))
    assert saved(ended).sync_status == SyncStatus.SKIPPED
    assert saved(running).sync_status == SyncStatus.PENDING


def test_r2_an_all_day_activity_is_judged_in_its_owners_time_zone(owner: User, colleague: User) -> None:
    """Monday's all-day items: over in Berlin (Tuesday 04:00), not in New York (Monday 22:00)."""
    start_sync(owner)
    start_sync(colleague)
    monday = dt.date(2025, 1, 13)
    # The editing request's zone (or the server's) must not matter: only the owner's does.
    with timezone.override(zoneinfo.ZoneInfo("Pacific/Kiritimati")):
        in_berlin = make_activity(owner, start_at=None, due_date=monday, duration=None)
    with timezone.override(zoneinfo.ZoneInfo("Asia/Tokyo")):
        in_new_york = make_activity(colleague, start_at=None, due_date=monday, duration=None)
    assert (saved(in_berlin).sync_status, saved(in_berlin).sync_error) == (SyncStatus.SKIPPED, PAST_REASON)
    assert (saved(in_new_york).sync_status, saved(in_new_york).sync_error) == (SyncStatus.PENDING, "")


def test_r9_a_future_activity_is_pending_or_skipped_for_its_type(owner: User) -> None:
    start_sync(owner, types=("Call",))
    call = make_activity(owner, type=ActivityType.objects.get(company=owner.company, name="Call"))
    task = make_activity(owner, type=ActivityType.objects.get(company=owner.company, name="Task"))
    assert (saved(call).sync_status, saved(call).sync_error) == (SyncStatus.PENDING, "")
    assert (saved(task).sync_status, saved(task).sync_error) == (
        SyncStatus.SKIPPED,
        "Activity type Task is not sent to the calendar",
    )


def test_r15_a_linked_activity_moved_into_the_past_stays_pending_for_the_run(owner: User) -> None:
    """The run mirrors the move (or settles it) and says what it did; the save does not guess."""
    account = start_sync(owner)
    activity = make_activity(owner, start_at=NOW + dt.timedelta(days=1))
    EventLink.objects.create(
        account=account,
        activity=activity,
        calendar_external_id="primary",
        external_id="evt-1",
        origin=LinkOrigin.CRM,
    )
    activity.start_at = NOW - dt.timedelta(days=1)
    activity.due_date = activity.start_at.astimezone(BERLIN).date()
    activity.save()
    assert (saved(activity).sync_status, saved(activity).sync_error) == (SyncStatus.PENDING, "")


def test_r9_a_change_moving_an_item_out_of_the_past_makes_it_pending_again(owner: User) -> None:
    start_sync(owner)
    activity = make_activity(owner, start_at=NOW - dt.timedelta(days=1))
    assert saved(activity).sync_status == SyncStatus.SKIPPED
    activity.start_at = NOW + dt.timedelta(days=2)
    activity.due_date = activity.start_at.astimezone(BERLIN).date()
    activity.save()
    assert (saved(activity).sync_status, saved(activity).sync_error) == (SyncStatus.PENDING, "")


def test_r9_saves_without_a_running_sync_leave_the_status_alone(owner: User) -> None:
    never = make_activity(owner, start_at=NOW - dt.timedelta(days=1))
    assert saved(never).sync_status is None
    account = start_sync(owner)
    account.stopped_at = NOW
    account.save()
    activity = make_activity(
        owner, start_at=NOW - dt.timedelta(days=1), sync_status=SyncStatus.SYNCED, calendar_account=account
    )
    assert saved(activity).sync_status == SyncStatus.SYNCED  # shown as "Not syncing" (the account stopped)


def test_r2_the_list_shows_skipped_right_after_saving_a_past_activity(owner: User, client) -> None:
    start_sync(owner)
    make_activity(owner, subject="Last week's demo", start_at=NOW - dt.timedelta(days=7))
    client.force_login(owner)
    html = client.get(reverse("activities:list"), {"status": "all"}).content.decode()
    assert f'class="badge skipped" title="Skipped with cal.owner@acme.test: {PAST_REASON}"' in html


@pytest.mark.parametrize(
    ("start", "type_selected", "linked", "expected"),
    [
        (NOW + dt.timedelta(hours=1), True, False, (SyncStatus.PENDING, Reason.PENDING, "")),
        (NOW - dt.timedelta(hours=1), True, False, (SyncStatus.SKIPPED, Reason.PAST, PAST_REASON)),
        (NOW - dt.timedelta(hours=1), False, False, (SyncStatus.SKIPPED, Reason.PAST, PAST_REASON)),
        (NOW - dt.timedelta(hours=1), False, True, (SyncStatus.PENDING, Reason.PENDING, "")),
        (NOW + dt.timedelta(hours=1), False, True, (SyncStatus.PENDING, Reason.PENDING, "")),
    ],
)
def test_r2_r9_status_at_save(owner: User, start, type_selected, linked, expected) -> None:
    activity = Activity(
        start_at=start,
        due_date=start.astimezone(BERLIN).date(),
        duration=dt.timedelta(minutes=30),
        type=ActivityType.objects.get(company=owner.company, name="Meeting"),
    )
    assert (
        status_at_save(activity, now=NOW, tz=BERLIN, type_selected=type_selected, linked=linked) == expected
    )
