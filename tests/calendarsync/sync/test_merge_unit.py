"""R11 unit tests: the field-level merge, per-field CRM change times, attendee sets, and the
provider bodies that carry only the changed fields. The end-to-end behaviour is tested against
the emulators in ``test_r11_*.py``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from exchangelib.properties import Attendee as EwsAttendee
from exchangelib.properties import Mailbox

from activities.models import Activity
from calendarsync.providers.base import Attendee, EventData, InvalidEvent, fields_to_write, same_content
from calendarsync.providers.exchange.mapping import item_fields
from calendarsync.providers.google.mapping import event_body as google_body
from calendarsync.providers.microsoft.mapping import event_body as graph_body
from calendarsync.sync.mapping import FIELD_NAMES, crm_change_times, event_attendees
from calendarsync.sync.merge import Mode, merge, merge_attendees

T0 = dt.datetime(2030, 5, 1, 9, tzinfo=dt.UTC)
BASE: dict[str, Any] = {
    "subject": "Review",
    "time": {"start": "2030-05-02T10:00:00+00:00", "end": "2030-05-02T10:30:00+00:00"},
    "location": "Room 1",
    "description": "",
    "attendees": ["ann@example.com"],
    "busy": True,
    "private": False,
}


def fields(**changes: Any) -> dict[str, Any]:
    return {**BASE, **changes}


def agreed() -> dict[str, Any]:
    return {"crm": dict(BASE), "cal": dict(BASE)}


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


# --------------------------------------------------------------------------- per-field times


def test_r11_the_later_edit_of_the_field_wins_not_the_later_edit_of_the_item() -> None:
    # CRM subject at +1, calendar (subject) at +2, CRM location at +3.
    times = dict.fromkeys(FIELD_NAMES, None) | {"subject": at(1), "location": at(3)}
    outcome = merge(
        agreed(),
        fields(subject="CRM", location="Room 2"),
        fields(subject="Calendar"),
        crm_changed_at=times,
        cal_updated=at(2),
    )
    assert outcome.crm["subject"] == outcome.cal["subject"] == "Calendar"
    assert outcome.crm["location"] == outcome.cal["location"] == "Room 2"
    assert outcome.apply_to_crm == ["subject"]
    assert outcome.write_to_calendar == ["location"]
    assert [c.as_dict() for c in outcome.conflicts] == [{"field": "subject", "winner": "calendar"}]


def test_r11_a_crm_field_edited_after_the_event_wins_its_conflict() -> None:
    times = {"subject": at(3)}
    outcome = merge(
        agreed(), fields(subject="CRM"), fields(subject="Calendar"), crm_changed_at=times, cal_updated=at(2)
    )
    assert outcome.write_to_calendar == ["subject"]
    assert [c.as_dict() for c in outcome.conflicts] == [{"field": "subject", "winner": "crm"}]


def test_r11_one_time_for_the_whole_activity_still_works() -> None:
    outcome = merge(
        agreed(), fields(subject="CRM"), fields(subject="Calendar"), crm_changed_at=at(1), cal_updated=at(2)
    )
    assert outcome.apply_to_crm == ["subject"]


def test_r11_crm_change_times_come_from_the_fields_each_synced_field_is_made_of() -> None:
    activity = Activity(sync_changed_at=at(9))
    activity.sync_field_changed_at = {
        "subject": at(1).isoformat(),
        "start_at": at(2).isoformat(),
        "duration": at(4).isoformat(),
        "guests": at(5).isoformat(),
        "participants": at(6).isoformat(),
        "visibility": at(7).isoformat(),
    }
    times = crm_change_times(activity)
    assert times["subject"] == at(1)
    assert times["time"] == at(4)
    assert times["attendees"] == at(6)
    assert times["private"] == at(7)
    # Never stamped on its own (an activity from before per-field times): the activity's time.
    assert times["location"] == times["description"] == times["busy"] == at(9)


# --------------------------------------------------------------------------- attendees


def test_r11_attendee_additions_of_both_sides_combine() -> None:
    outcome = merge(
        agreed(),
        fields(attendees=["ann@example.com", "bob@example.com"]),
        fields(attendees=["ann@example.com", "cid@example.com"]),
        crm_changed_at=at(5),
        cal_updated=at(1),
    )
    both = ["ann@example.com", "bob@example.com", "cid@example.com"]
    assert outcome.crm["attendees"] == outcome.cal["attendees"] == both
    assert outcome.apply_to_crm == outcome.write_to_calendar == ["attendees"]
    assert outcome.conflicts == []


def test_r11_attendee_removals_of_both_sides_combine_with_additions() -> None:
    start = ["ann@example.com", "bob@example.com", "cid@example.com"]
    snapshot = {"crm": fields(attendees=start), "cal": fields(attendees=start)}
    outcome = merge(
        snapshot,
        fields(attendees=["ann@example.com", "cid@example.com", "dan@example.com"]),
        fields(attendees=["ann@example.com", "bob@example.com", "eve@example.com"]),
    )
    assert outcome.crm["attendees"] == ["ann@example.com", "dan@example.com", "eve@example.com"]
    assert outcome.cal["attendees"] == outcome.crm["attendees"]


def test_r11_without_an_agreed_list_nobody_is_removed() -> None:
    assert merge_attendees(object(), object(), ["a@x.test"], ["b@x.test"]) == ["a@x.test", "b@x.test"]
    outcome = merge(None, fields(attendees=["a@x.test"]), fields(attendees=["b@x.test"]))
    assert outcome.crm["attendees"] == ["a@x.test", "b@x.test"]


def test_r11_attendees_of_a_read_only_occurrence_come_from_the_calendar() -> None:
    outcome = merge(
        agreed(),
        fields(attendees=["ann@example.com", "bob@example.com"]),
        fields(attendees=["cid@example.com"]),
        mode=Mode.CALENDAR_WINS,
    )
    assert outcome.crm["attendees"] == ["cid@example.com"]
    assert outcome.write_to_calendar == []


def test_r11_written_attendees_keep_the_events_own_entries() -> None:
    ann = Attendee(
        "Ann@Example.com", name="Ann", response="accepted", optional=True, raw={"email": "Ann@Example.com"}
    )
    me = Attendee("me@example.com", response="accepted", raw={"email": "me@example.com", "self": True})
    bob = Attendee("bob@example.com", response="declined")
    written = event_attendees(
        ["ann@example.com", "cid@example.com"], [me, ann, bob], frozenset({"me@example.com"})
    )
    assert written == (me, ann, Attendee("cid@example.com"))
    assert written[1].raw == {"email": "Ann@Example.com"}
    assert (written[1].name, written[1].response, written[1].optional) == ("Ann", "accepted", True)


# --------------------------------------------------------------------------- calendar-owned fields


def test_r11_a_crm_privacy_change_of_a_calendar_made_event_stays_in_the_crm() -> None:
    outcome = merge(
        agreed(), fields(private=True, location="Room 2"), fields(), never_to_calendar=("private",)
    )
    assert outcome.write_to_calendar == ["location"]
    assert outcome.crm["private"] is True
    assert outcome.cal["private"] is False


def test_r11_the_calendars_privacy_still_comes_in() -> None:
    outcome = merge(agreed(), fields(), fields(private=True), never_to_calendar=("private",))
    assert outcome.apply_to_crm == ["private"]
    assert outcome.write_to_calendar == []
    both = merge(
        agreed(),
        fields(private=True),
        fields(private=False, subject="x"),
        crm_changed_at=at(5),
        cal_updated=at(1),
        never_to_calendar=("private",),
    )
    assert "private" not in both.write_to_calendar


def test_r11_calendar_owned_fields_are_not_written_one_way_either() -> None:
    outcome = merge(
        agreed(), fields(private=True), fields(), mode=Mode.CRM_WINS, never_to_calendar=("private",)
    )
    assert outcome.write_to_calendar == []


# --------------------------------------------------------------------------- provider bodies


def event(**changes: Any) -> EventData:
    values: dict[str, Any] = {
        "subject": "Review",
        "start": T0,
        "end": T0 + dt.timedelta(hours=1),
        "location": "Room 1",
        "description": "Agenda",
        "attendees": (Attendee("ann@example.com"),),
        "tag": "calsync-u1-a2",
    }
    return EventData(**{**values, **changes})


def test_r11_a_subject_only_update_body_holds_only_the_subject() -> None:
    assert google_body(event(), for_patch=True, fields=["subject"]) == {"summary": "Review"}
    assert graph_body(event(), ["subject"]) == {"subject": "Review"}
    assert item_fields(event(), fields=["subject"]) == {"subject": "Review"}


def test_r11_no_fields_means_every_field() -> None:
    assert set(google_body(event())) == {
        "summary",
        "location",
        "description",
        "start",
        "end",
        "attendees",
        "visibility",
        "transparency",
        "extendedProperties",
    }
    with pytest.raises(InvalidEvent):
        fields_to_write(["colour"])


def test_r11_kept_attendees_go_back_as_the_provider_gave_them() -> None:
    google_raw = {
        "email": "ann@example.com",
        "responseStatus": "accepted",
        "comment": "Late",
        "organizer": True,
    }
    graph_raw = {
        "emailAddress": {"address": "ann@example.com", "name": "Ann"},
        "type": "optional",
        "status": {"response": "accepted", "time": "2030-01-01T00:00:00Z"},
        "proposedNewTime": None,
    }
    ews_raw = EwsAttendee(
        mailbox=Mailbox(email_address="ann@example.com", name="Ann"), response_type="Accept"
    )
    new = Attendee("bob@example.com")
    body = google_body(
        event(attendees=(Attendee("ann@example.com", raw=google_raw), new)), fields=["attendees"]
    )
    assert body == {"attendees": [google_raw, {"email": "bob@example.com", "optional": False}]}
    body = graph_body(
        event(attendees=(Attendee("ann@example.com", optional=True, raw=graph_raw), new)), ["attendees"]
    )
    assert body["attendees"][0] == {key: graph_raw[key] for key in ("emailAddress", "type", "status")}
    values = item_fields(
        event(attendees=(Attendee("ann@example.com", raw=ews_raw), new)), fields=["attendees"]
    )
    assert values["required_attendees"][0] is ews_raw
    assert values["optional_attendees"] is None


def test_r11_a_repeated_write_is_judged_on_the_fields_it_wrote() -> None:
    from calendarsync.providers.base import RemoteEvent

    wanted = event(subject="New")
    remote = RemoteEvent(
        external_id="e1",
        subject="New",
        start=wanted.start,
        end=wanted.end,
        location="Moved by the user",
        description=wanted.description,
        attendees=wanted.attendees,
        tag=wanted.tag,
    )
    assert same_content(remote, wanted, ["subject"])
    assert not same_content(remote, wanted)
