"""R11: attendees are a set keyed by e-mail, merged three-way; what the CRM does not model is kept.

Guests added or removed on either side between two runs all count (against the last agreed
list). A write starts from the event's own attendee entries and only adds or removes some, so
display names, RSVP answers, the optional flag and the organizer's own entry stay as they are.
"""

from __future__ import annotations

import pytest

from accounts.models import User
from activities.models import Activity, Person
from calendarsync.models import Provider
from calendarsync.providers.base import RemoteEvent
from tests.calendarsync.sync.conftest import SyncEnv, assert_in_step, company_of, soon
from tests.calendarsync.sync.r11_support import RichAttendee, sent_updates, set_attendees, settle

pytestmark = pytest.mark.django_db


def emails(event: RemoteEvent | None) -> set[str]:
    assert event is not None
    return {a.email.lower() for a in event.attendees}


def crm_emails(activity: Activity) -> set[str]:
    activity.refresh_from_db()
    participants = {p.email.lower() for p in activity.participants.all() if p.email}
    return {str(g).lower() for g in activity.guests} | participants


def person(owner: User, name: str, email: str) -> Person:
    return Person.objects.create(company=company_of(owner), owner=owner, name=name, email=email)


def test_r11_guests_added_on_both_sides_are_all_kept(sync_env: SyncEnv) -> None:
    sync_env.start()
    activity = sync_env.activity(subject="Review", start_at=soon(2, 10), guests=["ann@example.com"])
    sync_env.sync()
    event_id = sync_env.link_of(activity).external_id
    sync_env.control.update_event(event_id, attendees=("ann@example.com", "cid@example.com"))
    settle(sync_env)
    activity.guests = ["ann@example.com", "bob@example.com"]
    activity.save()
    outcome = sync_env.sync()
    assert outcome.result is not None
    both = {"ann@example.com", "bob@example.com", "cid@example.com"}
    assert crm_emails(activity) == both
    assert emails(sync_env.control.event(event_id)) == both
    assert outcome.result.pulled.conflicts == []
    assert_in_step(sync_env)


def test_r11_guest_additions_and_removals_of_both_sides_combine(sync_env: SyncEnv) -> None:
    sync_env.start()
    start = ["ann@example.com", "bob@example.com", "cid@example.com"]
    activity = sync_env.activity(subject="Review", start_at=soon(2, 10), guests=start)
    sync_env.sync()
    event_id = sync_env.link_of(activity).external_id
    # The CRM drops Bob and adds Dan; later the calendar drops Cid and adds Eve.
    activity.guests = ["ann@example.com", "cid@example.com", "dan@example.com"]
    activity.save()
    settle(sync_env)
    sync_env.control.update_event(
        event_id, attendees=("ann@example.com", "bob@example.com", "eve@example.com")
    )
    sync_env.sync()
    wanted = {"ann@example.com", "dan@example.com", "eve@example.com"}
    assert crm_emails(activity) == wanted
    assert emails(sync_env.control.event(event_id)) == wanted
    assert_in_step(sync_env)


def test_r11_a_new_participant_and_a_new_calendar_guest_both_stay(sync_env: SyncEnv) -> None:
    sync_env.start()
    activity = sync_env.activity(subject="Review", start_at=soon(2, 10))
    sync_env.sync()
    event_id = sync_env.link_of(activity).external_id
    sync_env.control.update_event(event_id, attendees=("eve@example.com",))
    settle(sync_env)
    ann = person(sync_env.owner, "Ann", "Ann@Example.com")
    activity.participants.add(ann)
    sync_env.sync()
    activity.refresh_from_db()
    assert list(activity.participants.all()) == [ann]
    assert activity.guests == ["eve@example.com"]
    assert emails(sync_env.control.event(event_id)) == {"ann@example.com", "eve@example.com"}
    assert_in_step(sync_env)


def test_r11_attendee_details_the_crm_does_not_model_are_kept(sync_env: SyncEnv) -> None:
    sync_env.start()
    activity = sync_env.activity(
        subject="Review", start_at=soon(2, 10), guests=["ann@example.com", "bob@example.com"]
    )
    sync_env.sync()
    event_id = sync_env.link_of(activity).external_id
    own = sync_env.setup.email
    rich = [
        RichAttendee(own, "Me Myself", "accepted"),
        RichAttendee("Ann@Example.com", "Ann Example", "accepted", optional=True),
        RichAttendee("bob@example.com", "Bob Example", "declined"),
    ]
    set_attendees(sync_env, event_id, rich)
    sync_env.sync()  # the answers come in: nothing changes in the CRM
    assert crm_emails(activity) == {"ann@example.com", "bob@example.com"}
    settle(sync_env)
    activity.guests = [*activity.guests, "cid@example.com"]
    activity.save()
    sync_env.control.reset_counts()
    sync_env.sync()
    event = sync_env.control.event(event_id)
    assert event is not None
    by_email = {a.email.lower(): a for a in event.attendees}
    assert set(by_email) == {own.lower(), "ann@example.com", "bob@example.com", "cid@example.com"}
    assert (by_email["ann@example.com"].name, by_email["ann@example.com"].optional) == ("Ann Example", True)
    assert by_email["bob@example.com"].name == "Bob Example"
    assert by_email[own.lower()].name == "Me Myself"
    assert not by_email["cid@example.com"].optional
    [update] = sent_updates(sync_env)
    if sync_env.setup.provider == Provider.MICROSOFT:
        # Graph keeps the answers itself (an attendee answers by mail, not through our PATCH):
        # what we send carries each kept entry as Graph gave it.
        sent = {entry["emailAddress"]["address"].lower(): entry for entry in update["attendees"]}
        assert sent["ann@example.com"]["status"]["response"] == "accepted"
        assert sent["bob@example.com"]["status"]["response"] == "declined"
        assert sent["ann@example.com"]["type"] == "optional"
    else:
        assert by_email["ann@example.com"].response == "accepted"
        assert by_email["bob@example.com"].response == "declined"
        assert by_email[own.lower()].response == "accepted"
    # A CRM removal removes that entry only.
    settle(sync_env)
    activity.refresh_from_db()
    activity.guests = ["ann@example.com", "cid@example.com"]
    activity.save()
    sync_env.sync()
    event = sync_env.control.event(event_id)
    assert event is not None
    by_email = {a.email.lower(): a for a in event.attendees}
    assert set(by_email) == {own.lower(), "ann@example.com", "cid@example.com"}
    assert (by_email["ann@example.com"].name, by_email["ann@example.com"].optional) == ("Ann Example", True)
    assert crm_emails(activity) == {"ann@example.com", "cid@example.com"}
    assert_in_step(sync_env)
