"""The Exchange adapter and meetings: what it mails (``notify``), and how it reads copies and answers.

The real adapter (exchangelib over HTTP) against the EWS emulator, with colleagues' mailboxes on the
same server so invitations land in calendars the test can look at.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from calendarsync.providers.base import (
    ACCEPTED,
    DECLINED,
    NEEDS_ACTION,
    TENTATIVE,
    Attendee,
    ChangePage,
    EventData,
    NotFound,
    RemoteEvent,
)
from calendarsync.providers.exchange.adapter import ExchangeProvider
from calendarsync.providers.exchange.mapping import MeetingRole
from tests.calendarsync.conftest_exchange import RunningExchangeEmulator

ERIN = "erin@example.com"  # the account the adapter syncs (the fixture's mailbox)
BOB, CAROL, DAVE = "bob@example.com", "carol@example.com", "dave@example.com"
OUTSIDER = "olga@elsewhere.example"
PASSWORD = "colleague-password-1"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
START = (NOW + dt.timedelta(days=2)).replace(hour=9, minute=0, second=0)
END = START + dt.timedelta(hours=1)


@pytest.fixture
def ews(exchange_emulator: RunningExchangeEmulator) -> RunningExchangeEmulator:
    for email in (BOB, CAROL, DAVE):
        exchange_emulator.emulator.add_user(email, PASSWORD)
    return exchange_emulator


def provider(ews: RunningExchangeEmulator, email: str = ERIN) -> ExchangeProvider:
    password = ews.password if email == ERIN else PASSWORD
    return ExchangeProvider.from_credentials(ews.credentials(email, password), sleep=lambda _: None)


def calendar(ews: RunningExchangeEmulator, email: str = ERIN) -> str:
    return ews.emulator.calendar_folder_id(email)


def meeting(subject: str = "Budget review", *guests: str, tag: str | None = "activity-1") -> EventData:
    return EventData(
        subject=subject,
        start=START,
        end=END,
        attendees=tuple(Attendee(email=email) for email in (guests or (BOB, CAROL))),
        tag=tag,
    )


def sent(ews: RunningExchangeEmulator, email: str = ERIN) -> list[tuple[str, str]]:
    return [(kind, to) for kind, to, _ in ews.emulator.meeting_messages(email)]


def window() -> dict[str, dt.datetime]:
    return {"window_start": NOW - dt.timedelta(days=1), "window_end": NOW + dt.timedelta(days=30)}


def listing(adapter: ExchangeProvider, calendar_id: str, cursor: str | None = None) -> ChangePage:
    return adapter.list_changes(calendar_id, cursor, **window())


def copy_id(ews: RunningExchangeEmulator, email: str, uid: str | None) -> str:
    assert uid is not None
    found = ews.emulator.user_find_by_uid(email, uid)
    assert found is not None, f"{email} has no copy of {uid}"
    return str(found["id"])


def organize(ews: RunningExchangeEmulator, *, notify: bool = True) -> RemoteEvent:
    adapter = provider(ews)
    return adapter.create_event(calendar(ews), meeting(), idempotency_key="key-1", notify=notify)


# --------------------------------------------------------------------------- what the adapter offers


def test_exchange_has_no_video_calls_and_mails_guests_only_when_asked() -> None:
    assert ExchangeProvider.video_call_service is None
    assert ExchangeProvider.always_notifies_guests is False


# --------------------------------------------------------------------------- creating


def test_a_create_without_notify_mails_nobody(ews: RunningExchangeEmulator) -> None:
    event = organize(ews, notify=False)
    assert sent(ews) == []
    assert event.ical_uid is not None
    assert ews.emulator.user_find_by_uid(BOB, event.ical_uid) is None
    [create] = [r for r in ews.emulator.request_log() if r.name == "CreateItem"]
    assert b'SendMeetingInvitations="SendToNone"' in create.body


def test_a_create_with_notify_invites_each_guest_once(ews: RunningExchangeEmulator) -> None:
    event = organize(ews)
    assert sorted(sent(ews)) == [("invitation", BOB), ("invitation", CAROL)]
    [create] = [r for r in ews.emulator.request_log() if r.name == "CreateItem"]
    assert b'SendMeetingInvitations="SendToAllAndSaveCopy"' in create.body
    assert (event.is_organizer, event.organizer, event.my_response) == (True, ERIN, None)
    assert event.tag == "activity-1"
    assert event.ical_uid
    for guest in (BOB, CAROL):
        copy = provider(ews, guest).get_event(calendar(ews, guest), copy_id(ews, guest, event.ical_uid))
        assert copy.ical_uid == event.ical_uid
        assert copy.external_id != event.external_id


def test_a_repeated_create_adopts_the_item_and_sends_nothing_more(ews: RunningExchangeEmulator) -> None:
    adapter = provider(ews)
    first = adapter.create_event(calendar(ews), meeting(), idempotency_key="key-1", notify=True)
    again = adapter.create_event(calendar(ews), meeting(), idempotency_key="key-1", notify=True)
    assert again.external_id == first.external_id
    assert len(sent(ews)) == 2


def test_a_create_retried_after_a_lost_answer_invites_once(ews: RunningExchangeEmulator) -> None:
    # CreateItem lands (and mails), then reading the item back fails: the retry finds the item
    # by its key and adopts it instead of creating (and mailing) it again.
    ews.emulator.inject_faults("500", count=1, operation="GetItem")
    event = organize(ews)
    assert ews.emulator.request_counts()["CreateItem"] == 1
    assert sorted(sent(ews)) == [("invitation", BOB), ("invitation", CAROL)]
    assert event.subject == "Budget review"


def test_bulk_creates_follow_notify(ews: RunningExchangeEmulator) -> None:
    adapter = provider(ews)
    items = [(meeting("One", BOB), "k1"), (meeting("Two", BOB, CAROL), "k2")]
    quiet = adapter.create_events(calendar(ews), items, notify=False)
    assert all(isinstance(result, RemoteEvent) for result in quiet)
    assert sent(ews) == []
    loud = adapter.create_events(calendar(ews), [(meeting("Three", DAVE), "k3")], notify=True)
    assert isinstance(loud[0], RemoteEvent)
    assert sent(ews) == [("invitation", DAVE)]


# --------------------------------------------------------------------------- updating and deleting


def test_an_update_without_notify_leaves_the_copies_alone(ews: RunningExchangeEmulator) -> None:
    event = organize(ews)
    assert event.ical_uid is not None
    bobs = ews.emulator.user_find_by_uid(BOB, event.ical_uid)
    adapter = provider(ews)
    changed = EventData(subject="Budget review (moved)", start=START, end=END)
    adapter.update_event(calendar(ews), event.external_id, changed, etag=event.etag, fields=["subject"])
    assert len(sent(ews)) == 2
    assert ews.emulator.user_find_by_uid(BOB, event.ical_uid) == bobs
    [update] = [r for r in ews.emulator.request_log() if r.name == "UpdateItem"]
    assert b'SendMeetingInvitationsOrCancellations="SendToNone"' in update.body


def test_an_update_with_notify_mails_the_guests_and_updates_their_copies(
    ews: RunningExchangeEmulator,
) -> None:
    event = organize(ews)
    adapter = provider(ews)
    changed = EventData(subject="Budget review (moved)", start=START, end=END)
    updated = adapter.update_event(
        calendar(ews), event.external_id, changed, etag=event.etag, fields=["subject"], notify=True
    )
    assert updated.subject == "Budget review (moved)"
    assert sorted(sent(ews)[2:]) == [("update", BOB), ("update", CAROL)]
    bobs = provider(ews, BOB).get_event(calendar(ews, BOB), copy_id(ews, BOB, event.ical_uid))
    assert bobs.subject == "Budget review (moved)"


def test_adding_and_removing_a_guest_with_notify_invites_and_cancels_just_them(
    ews: RunningExchangeEmulator,
) -> None:
    event = organize(ews)
    adapter = provider(ews)
    # Bob keeps his entry as read (R11); Carol is dropped and Dave added.
    kept = next(a for a in event.attendees if a.email == BOB)
    changed = EventData(subject=event.subject, start=START, end=END, attendees=(kept, Attendee(email=DAVE)))
    adapter.update_event(
        calendar(ews), event.external_id, changed, etag=event.etag, fields=["attendees"], notify=True
    )
    assert sorted(sent(ews)[2:]) == [("cancellation", CAROL), ("invitation", DAVE)]
    with pytest.raises(NotFound):
        provider(ews, CAROL).get_event(calendar(ews, CAROL), copy_id(ews, CAROL, event.ical_uid))


def test_a_video_call_request_writes_nothing_and_sends_nothing(ews: RunningExchangeEmulator) -> None:
    event = organize(ews)
    ews.emulator.reset_counts()
    adapter = provider(ews)
    wanted = EventData(subject=event.subject, start=START, end=END, video_call=True)
    same = adapter.update_event(
        calendar(ews), event.external_id, wanted, etag=event.etag, fields=["video_call"], notify=True
    )
    assert same.etag == event.etag
    assert same.join_url is None
    assert "UpdateItem" not in ews.emulator.request_counts()
    assert len(sent(ews)) == 2


@pytest.mark.parametrize("notify", [False, True])
def test_a_delete_cancels_the_meeting_for_the_guests_only_with_notify(
    ews: RunningExchangeEmulator, notify: bool
) -> None:
    event = organize(ews)
    bob = provider(ews, BOB)
    bobs_copy = copy_id(ews, BOB, event.ical_uid)
    cursor = listing(bob, calendar(ews, BOB)).cursor
    provider(ews).delete_event(calendar(ews), event.external_id, etag=event.etag, notify=notify)
    [delete] = [r for r in ews.emulator.request_log() if r.name == "DeleteItem"]
    mode = b"SendToAllAndSaveCopy" if notify else b"SendToNone"
    assert b'SendMeetingCancellations="' + mode + b'"' in delete.body
    page = listing(bob, calendar(ews, BOB), cursor)
    if not notify:
        assert sent(ews)[2:] == []
        assert page.changes == ()
        assert bob.get_event(calendar(ews, BOB), bobs_copy).is_cancelled is False
        return
    assert sorted(sent(ews)[2:]) == [("cancellation", BOB), ("cancellation", CAROL)]
    # The cancelled copy is still in Bob's calendar, but for the engine it is gone.
    [change] = page.changes
    assert (change.kind, change.external_id) == ("deleted", bobs_copy)
    assert change.event is not None
    assert change.event.is_cancelled
    with pytest.raises(NotFound):
        bob.get_event(calendar(ews, BOB), bobs_copy)
    full = listing(bob, calendar(ews, BOB))
    assert [(c.kind, c.external_id) for c in full.changes] == [("deleted", bobs_copy)]


# --------------------------------------------------------------------------- reading copies and answers


def test_a_copy_reads_as_someone_elses_meeting_awaiting_an_answer(ews: RunningExchangeEmulator) -> None:
    event = organize(ews)
    bob = provider(ews, BOB)
    [change] = listing(bob, calendar(ews, BOB)).changes
    copy = change.event
    assert copy is not None
    assert (copy.ical_uid, copy.organizer, copy.is_organizer) == (event.ical_uid, ERIN, False)
    assert copy.my_response == NEEDS_ACTION
    assert copy.tag is None  # the organizer's tag is not ours
    assert copy.join_url is None
    assert {a.email for a in copy.attendees} == {BOB, CAROL}


@pytest.mark.parametrize(("answer", "mine"), [("Accept", ACCEPTED), ("Tentative", TENTATIVE)])
def test_an_answer_shows_on_the_copy_and_on_the_organizers_event(
    ews: RunningExchangeEmulator, answer: str, mine: str
) -> None:
    event = organize(ews)
    erin, bob = provider(ews), provider(ews, BOB)
    erins_cursor = listing(erin, calendar(ews)).cursor
    bobs_cursor = listing(bob, calendar(ews, BOB)).cursor
    ews.emulator.user_respond(BOB, copy_id(ews, BOB, event.ical_uid), answer)

    [bobs] = listing(bob, calendar(ews, BOB), bobs_cursor).changes
    assert bobs.event is not None
    assert bobs.event.my_response == mine
    [erins] = listing(erin, calendar(ews), erins_cursor).changes
    assert erins.kind == "upserted"
    assert erins.external_id == event.external_id
    assert erins.event is not None
    responses = {a.email: a.response for a in erins.event.attendees}
    assert responses == {BOB: mine, CAROL: NEEDS_ACTION}
    assert erins.event.etag != event.etag
    assert erins.event.updated is not None
    assert event.updated is not None
    assert erins.event.updated > event.updated
    assert erins.event.my_response is None
    assert erins.event.tag == "activity-1"


def test_declining_removes_the_copy_and_tells_the_organizer(ews: RunningExchangeEmulator) -> None:
    event = organize(ews)
    erin, bob = provider(ews), provider(ews, BOB)
    erins_cursor = listing(erin, calendar(ews)).cursor
    bobs_cursor = listing(bob, calendar(ews, BOB)).cursor
    bobs_copy = copy_id(ews, BOB, event.ical_uid)
    ews.emulator.user_respond(BOB, bobs_copy, "Decline")

    [gone] = listing(bob, calendar(ews, BOB), bobs_cursor).changes
    assert (gone.kind, gone.external_id) == ("deleted", bobs_copy)
    [erins] = listing(erin, calendar(ews), erins_cursor).changes
    assert erins.event is not None
    assert {a.email: a.response for a in erins.event.attendees}[BOB] == DECLINED


def test_an_invitation_from_outside_names_its_organizer(ews: RunningExchangeEmulator) -> None:
    uid = "040000008200E00074C5B7101A82E00800000000outside-7"
    ews.emulator.user_receive_invitation(
        ERIN,
        uid,
        organizer=OUTSIDER,
        fields={"subject": "Vendor call", "start": START, "end": END, "attendees": [OUTSIDER, ERIN]},
    )
    [change] = listing(provider(ews), calendar(ews)).changes
    copy = change.event
    assert copy is not None
    assert (copy.ical_uid, copy.organizer, copy.is_organizer, copy.my_response) == (
        uid,
        OUTSIDER,
        False,
        NEEDS_ACTION,
    )


def test_own_items_are_recognised_even_under_another_address() -> None:
    # Exchange may name an internal organizer by an X.500 address, or by an alias: MyResponseType
    # "Organizer" still marks the item as the mailbox's own.
    x500 = SimpleNamespace(
        organizer=SimpleNamespace(email_address="/o=ExchangeLabs/ou=Exchange/cn=Recipients/cn=erin"),
        my_response_type="Organizer",
    )
    assert MeetingRole.of(x500, ERIN) == MeetingRole(organizer=None, is_organizer=True, my_response=None)
    alias = SimpleNamespace(
        organizer=SimpleNamespace(email_address="Erin@Example.com"), my_response_type=None
    )
    assert MeetingRole.of(alias, ERIN).is_organizer is True
    invited = SimpleNamespace(organizer=SimpleNamespace(email_address=BOB), my_response_type="Unknown")
    assert MeetingRole.of(invited, ERIN) == MeetingRole(
        organizer=BOB, is_organizer=False, my_response=NEEDS_ACTION
    )
    appointment = SimpleNamespace(organizer=None, my_response_type=None)
    assert MeetingRole.of(appointment, ERIN).is_organizer is True
