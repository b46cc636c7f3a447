"""Two-way sync end to end, through the real client library against the emulator (R1-R3, O3, O5-O7)."""

from __future__ import annotations

import datetime as dt

import pytest

from accounts.models import User
from activities.models import Activity, Deal, Organization, Person, SyncStatus, Visibility
from calendarsync.models import ActivityTrash, EventLink, ExternalVisibility, LinkOrigin, PrivateEvents
from calendarsync.sync.mapping import DETAILS_MARKER
from calendarsync.sync.trash import restore
from tests.calendarsync.sync.conftest import SyncEnv, company_of, soon
from tests.conftest import make_activity, make_user

pytestmark = pytest.mark.django_db


def person(owner: User, name: str, email: str) -> Person:
    return Person.objects.create(company=company_of(owner), owner=owner, name=name, email=email)


def test_r3_new_activity_becomes_an_event(sync_env: SyncEnv) -> None:
    sync_env.start()
    start = soon(2, 14)
    activity = sync_env.activity(subject="Demo call", start_at=start, location="Room 4", note="Bring slides")
    outcome = sync_env.sync()
    assert outcome.result is not None
    assert outcome.result.pushed.created == 1
    event = sync_env.event_of(activity)
    assert event is not None
    assert event.subject == "Demo call"
    assert event.start == start
    assert event.end == start + dt.timedelta(minutes=30)
    assert event.location == "Room 4"
    assert event.description == "Bring slides"
    activity.refresh_from_db()
    assert activity.sync_status == SyncStatus.SYNCED
    assert activity.calendar_account == sync_env.account
    assert sync_env.link_of(activity).origin == LinkOrigin.CRM


def test_r3_new_event_becomes_an_activity_of_the_incoming_type(sync_env: SyncEnv) -> None:
    sync_env.start()
    start = soon(3, 9)
    event_id = sync_env.control.create_event(
        "Board meeting", start, start + dt.timedelta(hours=2), location="HQ", description="Agenda"
    )
    outcome = sync_env.sync()
    assert outcome.result is not None
    assert outcome.result.pulled.created == 1
    activity = sync_env.imported(event_id)
    assert activity.type.name == "Meeting"
    assert activity.owner == sync_env.owner
    assert activity.subject == "Board meeting"
    assert activity.start_at == start
    assert activity.duration == dt.timedelta(hours=2)
    assert activity.due_date == start.date()
    assert activity.location == "HQ"
    assert activity.note == "Agenda"
    assert activity.sync_status == SyncStatus.SYNCED
    assert activity.calendar_account == sync_env.account


def test_r3_edits_in_the_crm_update_the_event(sync_env: SyncEnv) -> None:
    sync_env.start()
    activity = sync_env.activity(subject="Kick-off", start_at=soon(2, 10))
    sync_env.sync()
    activity.subject = "Kick-off (moved)"
    activity.start_at = soon(2, 15)
    activity.location = "Café"
    activity.save()
    outcome = sync_env.sync()
    assert outcome.result is not None
    assert outcome.result.pushed.updated == 1
    event = sync_env.event_of(activity)
    assert event is not None
    assert (event.subject, event.start, event.location) == ("Kick-off (moved)", soon(2, 15), "Café")
    assert len(sync_env.control.events()) == 1


def test_r3_edits_in_the_calendar_update_the_activity(sync_env: SyncEnv) -> None:
    sync_env.start()
    activity = sync_env.activity(subject="Kick-off", start_at=soon(2, 10))
    sync_env.sync()
    link = sync_env.link_of(activity)
    sync_env.control.update_event(
        link.external_id, subject="Kick-off v2", start=soon(3, 11), end=soon(3, 12), location="Room 9"
    )
    outcome = sync_env.sync()
    assert outcome.result is not None
    assert outcome.result.pulled.updated == 1
    assert outcome.result.pushed.updated == 0  # no echo
    activity.refresh_from_db()
    assert (activity.subject, activity.start_at, activity.duration) == (
        "Kick-off v2",
        soon(3, 11),
        dt.timedelta(hours=1),
    )
    assert activity.due_date == soon(3).date()
    assert activity.location == "Room 9"
    # Nothing left to do on either side: the next run changes nothing.
    again = sync_env.sync()
    assert again.result is not None
    assert not again.result.changed


def test_r3_deleting_the_activity_deletes_the_event(sync_env: SyncEnv) -> None:
    sync_env.start()
    activity = sync_env.activity(subject="To be cancelled", start_at=soon(2, 10))
    sync_env.sync()
    event_id = sync_env.link_of(activity).external_id
    activity.delete()
    outcome = sync_env.sync()
    assert outcome.result is not None
    assert outcome.result.pushed.deleted == 1
    assert sync_env.control.event(event_id) is None
    assert not EventLink.objects.filter(account=sync_env.account).exists()


def test_r3_deleting_the_event_moves_the_activity_to_the_trash(sync_env: SyncEnv) -> None:
    sync_env.start()
    activity = sync_env.activity(subject="Pitch", start_at=soon(2, 10), note="Top secret numbers")
    sync_env.sync()
    sync_env.control.delete_event(sync_env.link_of(activity).external_id)
    outcome = sync_env.sync()
    assert outcome.result is not None
    assert outcome.result.pulled.deleted == 1
    assert not Activity.objects.filter(pk=activity.pk).exists()
    entry = ActivityTrash.objects.get(activity_id=activity.pk)
    assert entry.subject == "Pitch"
    assert entry.data["note"] == "Top secret numbers"
    # An admin restores it: it comes back and goes to the calendar again as a new event.
    restored = restore(entry)
    assert restored.pk == activity.pk
    assert restored.start_at == soon(2, 10)
    sync_env.sync()
    assert len(sync_env.control.events()) == 1
    assert sync_env.event_of(restored) is not None


def test_r1_only_the_owners_activities_are_synced(sync_env: SyncEnv) -> None:
    sync_env.start()
    colleague = make_user(sync_env.owner.company, "someone.else@acme.test")
    make_activity(colleague, subject="Not mine", start_at=soon(2, 10))
    mine = sync_env.activity(subject="Mine", start_at=soon(2, 11))
    sync_env.sync()
    assert [e.subject for e in sync_env.control.events()] == ["Mine"]
    assert sync_env.event_of(mine) is not None


def test_r2_items_that_existed_before_the_start_sync_only_once_changed(sync_env: SyncEnv) -> None:
    old_activity = sync_env.activity(subject="Old activity", start_at=soon(2, 10))
    old_event_id = sync_env.control.create_event("Old event", soon(3, 10), soon(3, 11))
    sync_env.start(settle=1.1)
    first = sync_env.sync()
    assert first.result is not None
    assert not first.result.changed
    assert [e.subject for e in sync_env.control.events()] == ["Old event"]
    assert not Activity.objects.filter(subject="Old event").exists()
    # Changing them makes them sync.
    old_activity.location = "Room 1"
    old_activity.save()
    sync_env.control.update_event(old_event_id, location="Room 2")
    second = sync_env.sync()
    assert second.result is not None
    assert second.result.pushed.created == 1
    assert second.result.pulled.created == 1
    assert sync_env.event_of(old_activity) is not None
    assert sync_env.imported(old_event_id).location == "Room 2"


def test_r2_past_items_are_left_alone(sync_env: SyncEnv) -> None:
    sync_env.start()
    yesterday = soon(-1, 10)
    past = sync_env.activity(subject="Yesterday", start_at=yesterday)
    sync_env.control.create_event("Last week", soon(-7, 10), soon(-7, 11))
    future = sync_env.activity(subject="Tomorrow", start_at=soon(1, 10))
    sync_env.sync()
    assert [e.subject for e in sync_env.control.events()] == ["Last week", "Tomorrow"]
    assert not Activity.objects.filter(subject="Last week").exists()
    past.refresh_from_db()
    assert past.sync_status in (None, SyncStatus.SKIPPED)
    # An event moved into the past has that move mirrored, then stops syncing (R15).
    sync_env.control.update_event(sync_env.link_of(future).external_id, start=soon(-2, 10), end=soon(-2, 11))
    sync_env.sync()
    future.refresh_from_db()
    assert future.start_at == soon(-2, 10)
    assert future.sync_status == SyncStatus.SKIPPED


def test_o3_only_selected_types_are_sent(sync_env: SyncEnv) -> None:
    sync_env.start()
    sync_env.activity(subject="A task", start_at=soon(2, 10), type=sync_env.activity_type("Task"))
    call = sync_env.activity(subject="A call", start_at=soon(2, 11), type=sync_env.activity_type("Call"))
    outcome = sync_env.sync()
    assert [e.subject for e in sync_env.control.events()] == ["A call"]
    task = Activity.objects.get(subject="A task")
    assert task.sync_status == SyncStatus.SKIPPED
    assert "Task" in task.sync_error
    assert outcome.result is not None
    assert outcome.result.pushed.created == 1
    call.refresh_from_db()
    assert call.sync_status == SyncStatus.SYNCED


@pytest.mark.parametrize(
    ("default_visibility", "expected"),
    [(ExternalVisibility.EVERYONE, Visibility.EVERYONE), (ExternalVisibility.ONLY_ME, Visibility.OWNER)],
)
def test_o5_incoming_events_get_the_default_visibility(
    sync_env: SyncEnv, default_visibility: ExternalVisibility, expected: Visibility
) -> None:
    sync_env.set_preferences(external_visibility=default_visibility)
    sync_env.start()
    event_id = sync_env.control.create_event("Lunch with Bob", soon(2, 12), soon(2, 13))
    sync_env.sync()
    assert sync_env.imported(event_id).visibility == expected


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (PrivateEvents.EVERYONE, Visibility.EVERYONE),
        (PrivateEvents.ONLY_ME, Visibility.OWNER),
        (PrivateEvents.SKIP, None),
    ],
)
def test_o6_private_events(sync_env: SyncEnv, option: PrivateEvents, expected: Visibility | None) -> None:
    sync_env.set_preferences(private_events=option)
    sync_env.start()
    event_id = sync_env.control.create_event("Doctor", soon(2, 8), soon(2, 9), private=True, busy=True)
    outcome = sync_env.sync()
    if expected is None:
        assert not Activity.objects.filter(subject="Doctor").exists()
        assert outcome.result is not None
        assert [s.reason for s in outcome.result.pulled.skipped] == ["private event (not synced)"]
        return
    activity = sync_env.imported(event_id)
    assert activity.visibility == expected
    assert activity.busy
    # The CRM never flips the event's privacy on its own (no echo, O6 "everyone" included).
    activity.subject = "Doctor (dentist)"
    activity.save()
    sync_env.sync()
    event = sync_env.control.event(event_id)
    assert event is not None
    assert event.private
    assert event.subject == "Doctor (dentist)"


def test_a6_private_activities_go_out_as_private_events(sync_env: SyncEnv) -> None:
    sync_env.start()
    activity = sync_env.activity(
        subject="Salary talk", start_at=soon(2, 10), visibility=Visibility.OWNER, busy=False
    )
    sync_env.sync()
    event = sync_env.event_of(activity)
    assert event is not None
    assert event.private
    assert not event.busy


def test_o7_details_block_goes_out_and_never_comes_back_into_the_note(sync_env: SyncEnv) -> None:
    sync_env.start()
    owner = sync_env.owner
    activity = sync_env.activity(
        subject="Negotiation",
        start_at=soon(2, 10),
        note="Discuss discount",
        deal=Deal.objects.create(company=company_of(owner), owner=owner, title="Big deal"),
        person=person(owner, "Pat Buyer", "pat@buyer.test"),
        organization=Organization.objects.create(company=company_of(owner), owner=owner, name="Buyer Inc"),
    )
    sync_env.sync()
    event = sync_env.event_of(activity)
    assert event is not None
    assert event.description.startswith("Discuss discount\n\n" + DETAILS_MARKER)
    assert "Deal: Big deal" in event.description
    assert "Person: Pat Buyer (pat@buyer.test)" in event.description
    assert "Organization: Buyer Inc" in event.description
    # The user edits the note part in the calendar; the block stays out of the activity.
    sync_env.control.update_event(
        sync_env.link_of(activity).external_id,
        description=event.description.replace("Discuss discount", "Discuss discount and dates"),
    )
    sync_env.sync()
    activity.refresh_from_db()
    assert activity.note == "Discuss discount and dates"
    # Without O7 no block is appended.
    sync_env.set_preferences(include_details=False)
    activity.note = "Plain note"
    activity.save()
    sync_env.sync()
    event = sync_env.event_of(activity)
    assert event is not None
    assert event.description == "Plain note"


def test_attendees_are_guests_and_participants(sync_env: SyncEnv) -> None:
    sync_env.start()
    activity = sync_env.activity(subject="Demo", start_at=soon(2, 10), guests=["guest@partner.test"])
    activity.participants.add(person(sync_env.owner, "Pat", "Pat@Buyer.test"))
    sync_env.sync()
    event = sync_env.event_of(activity)
    assert event is not None
    assert sorted(a.email for a in event.attendees) == ["guest@partner.test", "pat@buyer.test"]
    # The calendar drops the participant and adds a guest.
    sync_env.control.update_event(
        sync_env.link_of(activity).external_id, attendees=["guest@partner.test", "new@partner.test"]
    )
    sync_env.sync()
    activity.refresh_from_db()
    assert list(activity.participants.all()) == []
    assert sorted(activity.guests) == ["guest@partner.test", "new@partner.test"]


def test_all_day_items_stay_dates_across_time_zones_and_dst(sync_env: SyncEnv) -> None:
    sync_env.start()
    # A day in late March: Europe/Berlin switches to summer time on the last Sunday of March.
    today = soon(0).date()
    year = today.year + 1
    dst_day = dt.date(year, 3, 31) - dt.timedelta(days=(dt.date(year, 3, 31).weekday() + 1) % 7)
    all_day = sync_env.activity(subject="Trade fair", start_at=None, due_date=dst_day, duration=None)
    timed = sync_env.activity(
        subject="After the switch",
        start_at=soon(0).replace(year=dst_day.year, month=dst_day.month, day=dst_day.day, hour=9),
    )
    sync_env.sync()
    event = sync_env.event_of(all_day)
    assert event is not None
    assert (event.start_date, event.end_date, event.start) == (dst_day, dst_day + dt.timedelta(days=1), None)
    timed_event = sync_env.event_of(timed)
    assert timed_event is not None
    assert timed_event.start is not None
    assert timed_event.start.hour == 7  # 09:00 CEST is 07:00 UTC
    # A two-day all-day event from the calendar stays two dates.
    event_id = sync_env.control.create_event("Offsite", dst_day, dst_day + dt.timedelta(days=2))
    sync_env.sync()
    offsite = sync_env.imported(event_id)
    assert (offsite.start_at, offsite.due_date, offsite.duration) == (None, dst_day, dt.timedelta(days=2))
