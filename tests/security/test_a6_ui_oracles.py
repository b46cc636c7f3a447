"""Finding 7 of issue #13: the activity UI is no oracle on a colleague's private activity (A6).

A masked activity shows as "Private" and its time. Its type and done flag must not leak through
the filters either: the list, the calendar (week and month) and the CSV export show it, or not,
on its owner, time and visibility alone, whatever ``types=`` and ``status=`` (and "overdue",
which means "not done") say. Nor do they show its sync status or the owner's calendar account.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from activities.models import Activity, ActivityType, SyncStatus, Visibility
from tests.activities.conftest import berlin, make_account, timed

pytestmark = pytest.mark.usefixtures("frozen_now")

SECRET = "Secret merger talk"
DAY = "2025-01-14"


def _csv_private_count(response: Any) -> int:
    text = b"".join(response.streaming_content).decode()
    return sum(1 for row in csv.DictReader(io.StringIO(text)) if row["Subject"] == "Private")


def _html_shows(activity: Activity) -> Callable[[Any], bool]:
    def shows(response: Any) -> bool:
        html = response.content.decode()
        return f'id="activity-{activity.pk}"' in html or f'data-activity="{activity.pk}"' in html

    return shows


VIEWS: dict[str, tuple[str, dict[str, str]]] = {
    "list": ("activities:list", {}),
    "calendar-week": ("activities:calendar", {"view": "week", "date": DAY}),
    "calendar-month": ("activities:calendar", {"view": "month", "date": DAY}),
    "csv-export": ("activities:export", {}),
}


def listed(client: Client, view: str, activity: Activity, **params: str) -> bool:
    """Whether ``view`` shows ``activity`` (by its id; the export has no id, so "Private" rows count)."""
    name, fixed = VIEWS[view]
    response = client.get(reverse(name), {"owner": "all", **fixed, **params})
    assert response.status_code == 200
    if view == "csv-export":
        return _csv_private_count(response) == 1
    return _html_shows(activity)(response)


@pytest.fixture
def call(owner: User) -> ActivityType:
    return ActivityType.objects.get(company=owner.company, name="Call")


@pytest.fixture
def meeting(owner: User) -> ActivityType:
    return ActivityType.objects.get(company=owner.company, name="Meeting")


def private_of(owner: User, activity_type: ActivityType, *, done: bool, when: dt.datetime) -> Activity:
    return timed(
        owner,
        when,
        subject=SECRET,
        type=activity_type,
        done=done,
        visibility=Visibility.OWNER,
        sync_status=SyncStatus.SYNCED,
        calendar_account=make_account(owner, "owner@gmail.test"),
    )


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("done", [False, True], ids=["to-do", "done"])
def test_a6_type_filter_tells_nothing_of_a_masked_activitys_type(
    colleague_client: Client, owner: User, call: ActivityType, meeting: ActivityType, view: str, done: bool
) -> None:
    private = private_of(owner, call, done=done, when=berlin(2025, 1, 14, 15, 0))
    shown = {
        label: listed(colleague_client, view, private, types=str(activity_type.pk), status="all")
        for label, activity_type in (("its type", call), ("another type", meeting))
    }
    assert shown == {"its type": True, "another type": True}


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("done", [False, True], ids=["to-do", "done"])
def test_a6_status_filter_tells_nothing_of_a_masked_activitys_done_flag(
    colleague_client: Client, owner: User, call: ActivityType, view: str, done: bool
) -> None:
    private = private_of(owner, call, done=done, when=berlin(2025, 1, 14, 15, 0))
    shown = {
        status: listed(colleague_client, view, private, status=status) for status in ("todo", "done", "all")
    }
    assert shown == {"todo": True, "done": True, "all": True}


@pytest.mark.parametrize("view", ["list", "csv-export"])
@pytest.mark.parametrize("done", [False, True], ids=["to-do", "done"])
def test_a6_overdue_tells_nothing_of_a_masked_activitys_done_flag(
    colleague_client: Client, owner: User, call: ActivityType, view: str, done: bool
) -> None:
    private = private_of(owner, call, done=done, when=berlin(2025, 1, 10, 15, 0))
    assert listed(colleague_client, view, private, time="overdue", status="all")


def test_a6_the_owner_and_attendees_still_filter_by_type_and_status(
    owner_client: Client, owner: User, call: ActivityType, meeting: ActivityType
) -> None:
    own = private_of(owner, call, done=True, when=berlin(2025, 1, 14, 15, 0))
    shows = _html_shows(own)
    list_url = reverse("activities:list")
    assert shows(owner_client.get(list_url, {"types": str(call.pk), "status": "done"}))
    assert not shows(owner_client.get(list_url, {"types": str(meeting.pk), "status": "all"}))
    assert not shows(owner_client.get(list_url, {"status": "todo"}))


def test_a6_attendee_of_a_private_meeting_filters_it_like_their_own(
    colleague_client: Client, owner: User, colleague: User, call: ActivityType, meeting: ActivityType
) -> None:
    """M1: a colleague who attends the meeting sees it in full, so the filters apply to it as usual."""
    shared = private_of(owner, meeting, done=False, when=berlin(2025, 1, 14, 15, 0))
    shared.attending_users.add(colleague)
    shows = _html_shows(shared)
    list_url = reverse("activities:list")
    assert shows(colleague_client.get(list_url, {"types": str(meeting.pk)}))
    assert not shows(colleague_client.get(list_url, {"types": str(call.pk), "owner": "all"}))
    assert not shows(colleague_client.get(list_url, {"status": "done", "owner": "all"}))


@pytest.mark.parametrize("view", VIEWS)
def test_a6_masked_rows_show_no_sync_status_or_calendar_account(
    colleague_client: Client, owner: User, call: ActivityType, view: str
) -> None:
    private_of(owner, call, done=False, when=berlin(2025, 1, 14, 15, 0))
    name, fixed = VIEWS[view]
    response: Any = colleague_client.get(reverse(name), {"owner": "all", **fixed})
    body = (b"".join(response.streaming_content) if response.streaming else response.content).decode()
    leaks = [SECRET, "owner@gmail.test", "provider-google", "Synced"]
    if response.streaming:
        leaks.append("Call")  # the page's filter form names every type
    for leak in leaks:
        assert leak not in body, leak
