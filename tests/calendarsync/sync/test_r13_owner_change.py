"""R13 (with R1, R8): reassigning an activity to another owner, two users each with their own account.

The old owner's event is removed and its link ends; the old owner's calendar no longer controls the
activity (its edits and deletions are not applied); the new owner's sync sends it if their sync is
on and its type is selected (issue #12, hole 4).
"""

from __future__ import annotations

import pytest

from accounts.models import User
from activities.models import Activity, SyncStatus
from calendarsync.models import EventLink, LinkState
from tests.calendarsync.sync.conftest import SyncEnv, assert_in_step, soon
from tests.calendarsync.sync.second_account import second_env
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def new_owner_env(sync_env: SyncEnv, request: pytest.FixtureRequest, colleague: User) -> SyncEnv:
    env = second_env(sync_env, request, colleague)
    env.start()
    env.sync()
    return env


def reassign(activity: Activity, user: User) -> Activity:
    """What the admin and the edit form do: load, change the owner, save."""
    fresh = Activity.objects.get(pk=activity.pk)
    fresh.owner = user
    fresh.save()
    fresh.refresh_from_db()
    return fresh


def synced_activity(sync_env: SyncEnv) -> tuple[Activity, str]:
    sync_env.start()
    activity = sync_env.activity(subject="Pipeline review", start_at=soon(3, 10), location="Room 4")
    sync_env.sync()
    return activity, sync_env.link_of(activity).external_id


def test_r13_reassigning_moves_the_event_to_the_new_owners_calendar(
    sync_env: SyncEnv, new_owner_env: SyncEnv
) -> None:
    activity, old_event = synced_activity(sync_env)
    activity = reassign(activity, new_owner_env.owner)

    assert (
        EventLink.objects.get(account=sync_env.account, external_id=old_event).state
        == LinkState.DELETE_PENDING
    )
    assert activity.sync_status == SyncStatus.PENDING
    assert activity.calendar_account_id == new_owner_env.account.pk

    sync_env.sync()
    assert sync_env.control.event(old_event) is None
    assert not EventLink.objects.filter(account=sync_env.account).exists()

    new_owner_env.sync()
    event = new_owner_env.event_of(activity)
    assert event is not None
    assert (event.subject, event.location) == ("Pipeline review", "Room 4")
    activity.refresh_from_db()
    assert (activity.sync_status, activity.calendar_account_id) == (
        SyncStatus.SYNCED,
        new_owner_env.account.pk,
    )
    assert sync_env.control.events() == []
    assert len(new_owner_env.control.events()) == 1
    assert_in_step(new_owner_env)
    assert_in_step(sync_env)

    # From now on the new owner's calendar controls it.
    new_owner_env.control.update_event(new_owner_env.link_of(activity).external_id, location="Room 9")
    new_owner_env.sync()
    activity.refresh_from_db()
    assert activity.location == "Room 9"


def test_r13_the_old_owners_edits_are_not_applied(sync_env: SyncEnv, new_owner_env: SyncEnv) -> None:
    activity, old_event = synced_activity(sync_env)
    activity = reassign(activity, new_owner_env.owner)
    sync_env.control.update_event(old_event, subject="Renamed by the old owner", location="Old room")
    sync_env.sync()
    activity.refresh_from_db()
    assert (activity.subject, activity.location) == ("Pipeline review", "Room 4")
    assert activity.owner == new_owner_env.owner
    new_owner_env.sync()
    event = new_owner_env.event_of(activity)
    assert event is not None
    assert event.subject == "Pipeline review"


def test_r13_the_old_owner_deleting_the_event_does_not_trash_the_activity(
    sync_env: SyncEnv, new_owner_env: SyncEnv
) -> None:
    activity, old_event = synced_activity(sync_env)
    activity = reassign(activity, new_owner_env.owner)
    sync_env.control.delete_event(old_event)
    sync_env.sync()
    assert Activity.objects.filter(pk=activity.pk, owner=new_owner_env.owner).exists()
    assert not EventLink.objects.filter(account=sync_env.account).exists()
    new_owner_env.sync()
    assert new_owner_env.event_of(activity) is not None
    assert_in_step(new_owner_env)


def test_r13_the_old_owners_pull_leaves_a_reassigned_activity_alone(
    sync_env: SyncEnv, new_owner_env: SyncEnv
) -> None:
    """Even when the reassignment bypassed the save signals (a bulk update), the old calendar's
    edits and deletions never reach an activity its owner no longer owns (R1), and its event goes."""
    sync_env.start()
    edited = sync_env.activity(subject="Pipeline review", start_at=soon(3, 10))
    deleted = sync_env.activity(subject="Forecast", start_at=soon(3, 14))
    sync_env.sync()
    edited_event = sync_env.link_of(edited).external_id
    deleted_event = sync_env.link_of(deleted).external_id
    Activity.objects.filter(pk__in=[edited.pk, deleted.pk]).update(owner=new_owner_env.owner)
    sync_env.control.update_event(edited_event, subject="Renamed by the old owner")
    sync_env.control.delete_event(deleted_event)
    sync_env.sync()
    edited.refresh_from_db()
    assert edited.subject == "Pipeline review"
    assert Activity.objects.filter(pk=deleted.pk, owner=new_owner_env.owner).exists()
    assert sync_env.control.events() == []
    assert not EventLink.objects.filter(account=sync_env.account).exists()


def test_r13_reassigned_to_a_type_the_new_owner_does_not_send(
    sync_env: SyncEnv, new_owner_env: SyncEnv
) -> None:
    new_owner_env.set_preferences(outgoing_types=["Call"])
    activity, old_event = synced_activity(sync_env)  # a Meeting
    activity = reassign(activity, new_owner_env.owner)
    assert activity.sync_status == SyncStatus.SKIPPED
    assert "not sent to the calendar" in activity.sync_error
    sync_env.sync()
    assert sync_env.control.event(old_event) is None  # the old owner's event still goes
    new_owner_env.sync()
    assert new_owner_env.control.events() == []


def test_r13_reassigned_to_a_user_without_sync(sync_env: SyncEnv) -> None:
    activity, old_event = synced_activity(sync_env)
    newcomer = make_user(sync_env.owner.company, "newcomer@acme.test")
    activity = reassign(activity, newcomer)
    # Not synced any more, and not "Synced with" the old owner's account.
    assert (activity.sync_status, activity.calendar_account_id, activity.sync_error) == (None, None, "")
    sync_env.sync()
    assert sync_env.control.event(old_event) is None
    assert Activity.objects.filter(pk=activity.pk, owner=newcomer).exists()


def test_r13_reassigned_back_before_the_old_account_ran(sync_env: SyncEnv, new_owner_env: SyncEnv) -> None:
    """Each reassignment ends the link it leaves: the old event goes and the activity gets a new
    one; nothing is duplicated, even though the old event is still there when it comes back."""
    activity, old_event = synced_activity(sync_env)
    activity = reassign(activity, new_owner_env.owner)
    activity = reassign(activity, sync_env.owner)
    assert EventLink.objects.get(account=sync_env.account, external_id=old_event).state == (
        LinkState.DELETE_PENDING
    )
    assert activity.sync_status == SyncStatus.PENDING
    sync_env.sync()
    new_owner_env.sync()
    events = sync_env.control.events()
    assert [event.subject for event in events] == ["Pipeline review"]
    assert events[0].external_id != old_event
    assert sync_env.link_of(activity).external_id == events[0].external_id
    assert new_owner_env.control.events() == []
    assert_in_step(sync_env)

    # And once more, now that the first event is gone: still one event, one link.
    activity = reassign(activity, new_owner_env.owner)
    new_owner_env.sync()
    activity = reassign(activity, sync_env.owner)
    new_owner_env.sync()
    sync_env.sync()
    assert [event.subject for event in sync_env.control.events()] == ["Pipeline review"]
    assert new_owner_env.control.events() == []
    assert_in_step(sync_env)
    assert_in_step(new_owner_env)


def test_r13_an_owner_change_schedules_both_accounts(
    sync_env: SyncEnv, new_owner_env: SyncEnv, django_capture_on_commit_callbacks: object
) -> None:
    from calendarsync.models import CalendarAccount

    activity, _ = synced_activity(sync_env)
    CalendarAccount.objects.update(sync_requested_at=None)
    reassign(activity, new_owner_env.owner)
    requested = set(
        CalendarAccount.objects.filter(sync_requested_at__isnull=False).values_list("pk", flat=True)
    )
    assert requested == {sync_env.account.pk, new_owner_env.account.pk}


def admin_form_data(form: object) -> dict[str, object]:
    """What the admin change page posts back unchanged: every field as its widget renders it."""
    from django import forms

    assert isinstance(form, forms.BaseForm)
    data: dict[str, object] = {}
    for name, bound in form.fields.items():
        if bound.disabled:
            continue
        value = form[name].value()
        widget = bound.widget
        if isinstance(widget, forms.MultiWidget):
            parts = widget.decompress(value) or []
            for index, part in enumerate(parts):
                data[f"{name}_{index}"] = "" if part is None else part
        elif isinstance(value, list | tuple) and isinstance(bound, forms.ModelMultipleChoiceField):
            data[name] = [str(item) for item in value]
        elif isinstance(bound, forms.BooleanField):
            if value:
                data[name] = "on"
        else:
            data[name] = "" if value is None else bound.prepare_value(value)
    return data


def test_r13_reassigning_in_the_admin(sync_env: SyncEnv, new_owner_env: SyncEnv) -> None:
    from django.test import Client
    from django.urls import reverse

    activity, old_event = synced_activity(sync_env)
    admin = User.objects.create_superuser(email="root@acme.test", password="admin-password-1")
    client = Client()
    client.force_login(admin)
    url = reverse("admin:activities_activity_change", args=[activity.pk])
    page = client.get(url)
    assert page.status_code == 200
    data = admin_form_data(page.context["adminform"].form)
    data["owner"] = str(new_owner_env.owner.pk)
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    activity.refresh_from_db()
    assert activity.owner == new_owner_env.owner
    assert (
        EventLink.objects.get(account=sync_env.account, external_id=old_event).state
        == LinkState.DELETE_PENDING
    )
    sync_env.sync()
    new_owner_env.sync()
    assert sync_env.control.event(old_event) is None
    assert new_owner_env.event_of(activity) is not None
