"""R3: the trash's restore admin action says how many activities came back, in proper English."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from activities.models import Activity
from calendarsync.models import ActivityTrash, CalendarAccount, Provider
from calendarsync.sync.trash import move_to_trash
from tests.activities.test_admin import logged_in
from tests.conftest import make_activity

pytestmark = pytest.mark.django_db


def trashed(owner: User, account: CalendarAccount, count: int) -> list[ActivityTrash]:
    return [
        move_to_trash(
            make_activity(owner, subject=f"Removed {n}", start_at=timezone.now() + dt.timedelta(days=2)),
            account,
            "Its event was deleted in the calendar",
        )
        for n in range(count)
    ]


@pytest.mark.parametrize(("count", "message"), [(1, "Restored 1 activity."), (2, "Restored 2 activities.")])
def test_r3_restoring_says_how_many_activities_in_the_singular_or_plural(
    owner: User, count: int, message: str
) -> None:
    account = CalendarAccount.objects.create(user=owner, provider=Provider.GOOGLE, email="owner@gmail.test")
    entries = trashed(owner, account, count)
    client = logged_in(User.objects.create_superuser(email="root@calsync.test", password="x-Very-long-1"))
    response = client.post(
        reverse("admin:calendarsync_activitytrash_changelist"),
        {"action": "restore_activities", "_selected_action": [entry.pk for entry in entries]},
    )
    assert [str(m) for m in get_messages(response.wsgi_request)] == [message]
    assert Activity.objects.filter(owner=owner).count() == count
