"""R11 field-level merge, end to end on every provider: the later edit *of a field* wins.

The CRM keeps a change time per field (``Activity.sync_field_changed_at``); the calendar gives
one ``updated`` stamp per event, the best it has. Edits of different fields on the two sides
both survive.
"""

from __future__ import annotations

import datetime as dt

import pytest

from accounts.models import User
from activities.models import Activity, Person, Visibility
from calendarsync.models import SyncRun
from tests.calendarsync.sync.conftest import SyncEnv, assert_in_step, company_of, soon
from tests.calendarsync.sync.r11_support import settle, written_fields

pytestmark = pytest.mark.django_db


def test_r11_later_edit_of_the_same_field_wins_not_the_later_edit_of_the_item(sync_env: SyncEnv) -> None:
    sync_env.start()
    activity = sync_env.activity(subject="Review", start_at=soon(2, 10), location="Room 1")
    sync_env.sync()
    event_id = sync_env.link_of(activity).external_id
    # The CRM edits the subject, then the calendar edits the subject (later), then the CRM edits
    # the location (later still): the calendar's subject is the later edit of the subject.
    activity.subject = "Review (CRM, earlier)"
    activity.save()
    settle(sync_env)
    sync_env.control.update_event(event_id, subject="Review (calendar, later)")
    settle(sync_env)
    activity.location = "Room 2"
    activity.save()
    outcome = sync_env.sync()
    assert outcome.result is not None
    activity.refresh_from_db()
    assert (activity.subject, activity.location) == ("Review (calendar, later)", "Room 2")
    event = sync_env.control.event(event_id)
    assert event is not None
    assert (event.subject, event.location) == ("Review (calendar, later)", "Room 2")
    assert outcome.result.pulled.conflicts == [{"item": event_id, "field": "subject", "winner": "calendar"}]
    run = SyncRun.objects.filter(account=sync_env.account).first()
    assert run is not None
    assert run.counts["pulled"]["conflicts"][0]["winner"] == "calendar"
    assert_in_step(sync_env)
    # Settled: the next run writes nothing on either side.
    sync_env.control.reset_counts()
    again = sync_env.sync()
    assert again.result is not None
    assert again.result.idle
    assert written_fields(sync_env) == []


def test_r11_a_crm_edit_later_than_the_calendar_edit_of_that_field_wins(sync_env: SyncEnv) -> None:
    sync_env.start()
    activity = sync_env.activity(subject="Review", start_at=soon(2, 10))
    sync_env.sync()
    event_id = sync_env.link_of(activity).external_id
    settle(sync_env)
    sync_env.control.update_event(event_id, subject="Review (calendar, earlier)")
    settle(sync_env)
    activity.subject = "Review (CRM, later)"
    activity.save()
    outcome = sync_env.sync()
    assert outcome.result is not None
    assert outcome.result.pulled.conflicts == [{"item": event_id, "field": "subject", "winner": "crm"}]
    activity.refresh_from_db()
    event = sync_env.control.event(event_id)
    assert event is not None
    assert activity.subject == event.subject == "Review (CRM, later)"
    assert_in_step(sync_env)


def test_r11_edits_of_different_fields_on_both_sides_all_survive(sync_env: SyncEnv) -> None:
    sync_env.start()
    start = soon(2, 10)
    activity = sync_env.activity(subject="Review", start_at=start, location="Room 1", note="Agenda")
    sync_env.sync()
    event_id = sync_env.link_of(activity).external_id
    # Calendar: subject and time. CRM, later: location and note. Nothing is a conflict.
    sync_env.control.update_event(
        event_id, subject="Review (calendar)", start=soon(2, 11), end=soon(2, 11) + dt.timedelta(hours=1)
    )
    settle(sync_env)
    activity.location = "Room 2"
    activity.note = "Agenda, v2"
    activity.save()
    outcome = sync_env.sync()
    assert outcome.result is not None
    assert outcome.result.pulled.conflicts == []
    activity.refresh_from_db()
    assert (activity.subject, activity.start_at, activity.duration) == (
        "Review (calendar)",
        soon(2, 11),
        dt.timedelta(hours=1),
    )
    assert (activity.location, activity.note) == ("Room 2", "Agenda, v2")
    assert_in_step(sync_env)


def test_r11_field_change_times_are_kept_per_field(owner: User) -> None:
    from tests.conftest import make_activity

    activity = make_activity(owner, subject="Call", location="Room 1")
    stamps = dict(activity.sync_field_changed_at)
    assert {"subject", "location", "start_at", "due_date"} <= set(stamps)
    created = dt.datetime.fromisoformat(stamps["location"])
    activity = Activity.objects.get(pk=activity.pk)
    activity.subject = "Call (moved)"
    activity.save()
    activity.refresh_from_db()
    assert dt.datetime.fromisoformat(activity.sync_field_changed_at["subject"]) > created
    assert activity.sync_field_changed_at["location"] == stamps["location"]
    assert activity.sync_changed_at == dt.datetime.fromisoformat(activity.sync_field_changed_at["subject"])
    # save(update_fields=...) stamps only what it saves, and saves the stamps too.
    activity.location = "Room 2"
    activity.save(update_fields=["location"])
    activity.refresh_from_db()
    assert activity.sync_field_changed_at["location"] > activity.sync_field_changed_at["subject"]
    # Participants are stamped on their m2m change.
    guest = Person.objects.create(company=company_of(owner), owner=owner, name="Ann", email="ann@example.com")
    activity.participants.add(guest)
    assert activity.sync_field_changed_at["participants"] > activity.sync_field_changed_at["location"]
    activity.refresh_from_db()
    assert activity.sync_field_changed_at["participants"] > activity.sync_field_changed_at["location"]
    # A save of untracked fields stamps nothing.
    before = dict(activity.sync_field_changed_at)
    activity.done = True
    activity.save()
    activity.refresh_from_db()
    assert activity.sync_field_changed_at == before
    assert activity.visibility == Visibility.EVERYONE
