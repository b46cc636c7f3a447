"""Admin pages for the engine's records: links, runs, and the trash with its Restore action (R3, A6)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Company, User
from activities.models import Activity, Visibility
from calendarsync.models import ActivityTrash, CalendarAccount, EventLink, LinkOrigin, Provider, SyncRun
from calendarsync.sync.trash import move_to_trash
from tests.activities.test_admin import grant_admin_permissions, logged_in
from tests.conftest import make_activity, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def account(owner: User) -> CalendarAccount:
    return CalendarAccount.objects.create(user=owner, provider=Provider.GOOGLE, email="owner@gmail.test")


def test_engine_records_are_listed_read_only(owner: User, account: CalendarAccount) -> None:
    activity = make_activity(owner, subject="Linked")
    EventLink.objects.create(
        account=account,
        activity=activity,
        calendar_external_id="primary",
        external_id="evt1",
        origin=LinkOrigin.CRM,
    )
    now = timezone.now()
    SyncRun.objects.create(account=account, started_at=now, finished_at=now, outcome=SyncRun.Outcome.OK)
    client = logged_in(User.objects.create_superuser(email="root@calsync.test", password="x-Very-long-1"))
    for name in ("eventlink", "syncrun", "activitytrash"):
        response = client.get(reverse(f"admin:calendarsync_{name}_changelist"))
        assert response.status_code == 200, name
    assert "evt1" in client.get(reverse("admin:calendarsync_eventlink_changelist")).content.decode()
    assert client.get(reverse("admin:calendarsync_eventlink_add")).status_code == 403


def test_r3_trash_restore_action_brings_the_activity_back(owner: User, account: CalendarAccount) -> None:
    activity = make_activity(
        owner, subject="Removed by the calendar", start_at=timezone.now() + dt.timedelta(days=2)
    )
    activity_id = activity.pk
    entry = move_to_trash(activity, account, "Its event was deleted in the calendar")
    assert not Activity.objects.filter(pk=activity_id).exists()
    client = logged_in(User.objects.create_superuser(email="root@calsync.test", password="x-Very-long-1"))
    response = client.post(
        reverse("admin:calendarsync_activitytrash_changelist"),
        {"action": "restore_activities", "_selected_action": [entry.pk]},
        follow=True,
    )
    assert response.status_code == 200
    restored = Activity.objects.get(pk=activity_id)
    assert restored.subject == "Removed by the calendar"
    entry.refresh_from_db()
    assert entry.restored_activity == restored


def test_a6_trash_masks_other_users_private_activities_for_staff(
    company: Company, owner: User, account: CalendarAccount
) -> None:
    private = make_activity(owner, subject="Secret merger talk", visibility=Visibility.OWNER)
    move_to_trash(private, account, "Its event was deleted in the calendar")
    staff = logged_in(grant_admin_permissions(make_user(company, "boss@acme.test")))
    page = staff.get(reverse("admin:calendarsync_activitytrash_changelist")).content.decode()
    assert "Secret merger talk" not in page
    assert "Private" in page
    entry = ActivityTrash.objects.get()
    detail = staff.get(reverse("admin:calendarsync_activitytrash_change", args=[entry.pk])).content.decode()
    assert "Secret merger talk" not in detail
