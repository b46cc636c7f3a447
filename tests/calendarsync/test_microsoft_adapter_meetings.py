"""The Microsoft 365 adapter with meetings: organizer and RSVP parsing, attendees' copies, the mails
Graph sends whatever ``notify`` says, cancelled copies as deletions, and Teams video calls."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import pytest

from calendarsync.providers.base import (
    ACCEPTED,
    DECLINED,
    NEEDS_ACTION,
    TENTATIVE,
    VIDEO_CALL,
    Attendee,
    Change,
    Conflict,
    EventData,
    NotFound,
    RemoteEvent,
)
from calendarsync.providers.microsoft.adapter import MicrosoftProvider
from calendarsync.providers.microsoft.mapping import event_body, parse_event
from tests.calendarsync.conftest_microsoft import RunningMicrosoftEmulator

ALICE = "alice@contoso.test"
BOB = "bob@contoso.test"
CAROL = "carol@elsewhere.test"  # no mailbox on the emulator
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
TOMORROW_NINE = (NOW + dt.timedelta(days=1)).replace(hour=9, minute=0, second=0)
TEAMS = {"isOnlineMeeting": True, "onlineMeetingProvider": "teamsForBusiness"}
JOIN_URL = "https://teams.microsoft.com/l/meetup-join/19%3ameeting_abc%40thread.v2/0"


def window() -> dict[str, dt.datetime]:
    return {"window_start": NOW - dt.timedelta(days=1), "window_end": NOW + dt.timedelta(days=90)}


def meeting(
    subject: str = "Review", *guests: str, video_call: bool = False, tag: str | None = None
) -> EventData:
    return EventData(
        subject=subject,
        start=TOMORROW_NINE,
        end=TOMORROW_NINE + dt.timedelta(minutes=30),
        attendees=tuple(Attendee(email=guest) for guest in guests),
        video_call=video_call,
        tag=tag,
    )


def graph_event(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "@odata.etag": 'W/"abc"',
        "id": "AAMkAGI2=",
        "iCalUId": "040000008200E00074C5B7101A82E0080000000012",
        "lastModifiedDateTime": "2030-01-02T03:04:05.1234567Z",
        "type": "singleInstance",
        "subject": "Review",
        "isAllDay": False,
        "start": {"dateTime": "2030-01-10T09:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2030-01-10T09:30:00.0000000", "timeZone": "UTC"},
        "attendees": [],
    }
    raw.update(overrides)
    return raw


def invited(response: str, **overrides: Any) -> dict[str, Any]:
    """Graph's event as an invited attendee has it."""
    return graph_event(
        isOrganizer=False,
        organizer={"emailAddress": {"name": "Carol", "address": CAROL}},
        responseStatus={"response": response, "time": "2030-01-02T03:04:05Z"},
        **overrides,
    )


@pytest.fixture
def ms(microsoft_emulator: RunningMicrosoftEmulator, settings: Any) -> RunningMicrosoftEmulator:
    settings.CALSYNC_HTTP_TIMEOUT_SECONDS = 2
    microsoft_emulator.emulator.add_user(BOB, "Bob Jones")
    return microsoft_emulator


def provider_for(ms: RunningMicrosoftEmulator, email: str = ALICE) -> MicrosoftProvider:
    issued = ms.emulator.issue_tokens(email, ["Calendars.ReadWrite", "User.Read"], ms.client_id)
    tokens = {
        "access_token": issued["access_token"],
        "refresh_token": issued["refresh_token"],
        "expiry": (NOW + dt.timedelta(hours=1)).isoformat(),
        "scopes": ["Calendars.ReadWrite", "User.Read"],
    }
    sleeps: list[float] = []
    return MicrosoftProvider.from_tokens(tokens, sleep=sleeps.append)


def calendar_of(ms: RunningMicrosoftEmulator, email: str) -> str:
    return str(ms.emulator.default_calendar_id(email))


def changes_of(page_changes: tuple[Change, ...]) -> dict[str, Change]:
    return {change.external_id: change for change in page_changes}


def the_copy(ms: RunningMicrosoftEmulator, bob: MicrosoftProvider) -> RemoteEvent:
    [change] = bob.list_changes(calendar_of(ms, BOB), None, **window()).changes
    assert change.event is not None
    return change.event


def written_bodies(ms: RunningMicrosoftEmulator, name: str) -> list[dict[str, Any]]:
    return [json.loads(entry.body) for entry in ms.emulator.request_log() if entry.name == name]


# --------------------------------------------------------------------------- mapping


def test_the_organizer_s_own_event_has_no_rsvp_of_its_own() -> None:
    own = parse_event(
        graph_event(
            isOrganizer=True,
            organizer={"emailAddress": {"name": "Alice", "address": ALICE}},
            responseStatus={"response": "organizer", "time": "0001-01-01T00:00:00Z"},
        )
    )
    assert (own.is_organizer, own.organizer, own.my_response) == (True, ALICE, None)
    bare = parse_event(graph_event())  # no isOrganizer at all: the mailbox's own event
    assert (bare.is_organizer, bare.organizer, bare.my_response) == (True, None, None)


@pytest.mark.parametrize(
    ("graph_response", "ours"),
    [
        ("accepted", ACCEPTED),
        ("tentativelyAccepted", TENTATIVE),
        ("declined", DECLINED),
        ("notResponded", NEEDS_ACTION),
        ("none", NEEDS_ACTION),
    ],
)
def test_an_invited_copy_carries_the_organizer_and_our_answer(graph_response: str, ours: str) -> None:
    copy = parse_event(invited(graph_response))
    assert (copy.is_organizer, copy.organizer, copy.my_response) == (False, CAROL, ours)
    assert copy.ical_uid == "040000008200E00074C5B7101A82E0080000000012"


def test_attendee_answers_map_to_ours() -> None:
    entries = [
        {"emailAddress": {"address": f"{status}@x.test"}, "status": {"response": status}, "type": "required"}
        for status in ("accepted", "tentativelyAccepted", "declined", "notResponded", "none")
    ]
    event = parse_event(graph_event(attendees=entries))
    assert [a.response for a in event.attendees] == [
        ACCEPTED,
        TENTATIVE,
        DECLINED,
        NEEDS_ACTION,
        NEEDS_ACTION,
    ]


def test_the_teams_link_is_read_and_nothing_is_pending() -> None:
    online = parse_event(graph_event(onlineMeeting={"joinUrl": JOIN_URL}, **TEAMS))
    assert (online.join_url, online.video_call_pending) == (JOIN_URL, False)
    offline = parse_event(graph_event(isOnlineMeeting=False, onlineMeeting=None))
    assert (offline.join_url, offline.video_call_pending) == (None, False)


def test_a_cancelled_copy_parses_as_cancelled() -> None:
    assert parse_event(invited("accepted", isCancelled=True)).is_cancelled is True


def test_a_video_call_is_asked_for_on_create_and_only_when_the_update_writes_it() -> None:
    wanted = meeting(video_call=True)
    assert {key: event_body(wanted)[key] for key in TEAMS} == TEAMS
    assert not set(TEAMS) & set(event_body(meeting()))
    assert event_body(wanted, [VIDEO_CALL]) == TEAMS
    assert not set(TEAMS) & set(event_body(wanted, ["subject"]))
    assert event_body(meeting(video_call=False), [VIDEO_CALL]) == {}  # never removes one


def test_the_provider_says_graph_always_mails_and_offers_teams() -> None:
    assert MicrosoftProvider.always_notifies_guests is True
    assert MicrosoftProvider.video_call_service == "Microsoft Teams"


# --------------------------------------------------------------------------- against the emulator


def test_a_created_meeting_reaches_the_attendee_as_an_unanswered_copy(ms: RunningMicrosoftEmulator) -> None:
    alice = provider_for(ms)
    made = alice.create_event(
        ms.calendar_id, meeting("Review", BOB, CAROL), idempotency_key="k-1", notify=True
    )
    assert (made.is_organizer, made.organizer, made.my_response) == (True, ALICE, None)
    assert ms.emulator.sent_invitations(ALICE) == [
        ("invitation", BOB, made.ical_uid),
        ("invitation", CAROL, made.ical_uid),
    ]
    copy = the_copy(ms, provider_for(ms, BOB))
    assert copy.external_id != made.external_id
    assert (copy.ical_uid, copy.is_organizer, copy.organizer) == (made.ical_uid, False, ALICE)
    assert copy.my_response == NEEDS_ACTION
    assert sorted(a.email for a in copy.attendees) == [BOB, CAROL]


def test_notify_false_cannot_stop_graph_from_mailing(ms: RunningMicrosoftEmulator) -> None:
    alice = provider_for(ms)
    made = alice.create_event(ms.calendar_id, meeting("Quiet", BOB), idempotency_key="k-q", notify=False)
    [bulk] = alice.create_events(ms.calendar_id, [(meeting("Bulk", BOB), "k-b")], notify=False)
    assert isinstance(bulk, RemoteEvent)
    assert [kind for kind, _, _ in ms.emulator.sent_invitations(ALICE)] == ["invitation", "invitation"]
    ms.emulator.clear_sent_mail()
    ms.emulator.reset_counts()
    alice.delete_event(ms.calendar_id, made.external_id, notify=False)
    alice.delete_event(ms.calendar_id, bulk.external_id, notify=True)
    assert ms.emulator.sent_invitations(ALICE) == [
        ("cancellation", BOB, made.ical_uid),
        ("cancellation", BOB, bulk.ical_uid),
    ]
    # The very same request either way.
    assert [(entry.method, entry.body) for entry in ms.emulator.request_log()] == [("DELETE", b"")] * 2


def test_updates_mail_changed_attendees_only_or_everyone(ms: RunningMicrosoftEmulator) -> None:
    alice = provider_for(ms)
    made = alice.create_event(ms.calendar_id, meeting("Plan", BOB), idempotency_key="k-p")
    uid = made.ical_uid
    ms.emulator.clear_sent_mail()
    with_carol = meeting("Plan", BOB, CAROL)
    alice.update_event(ms.calendar_id, made.external_id, with_carol, etag=None, fields=["attendees"])
    assert ms.emulator.sent_invitations(ALICE) == [("invitation", CAROL, uid)]
    ms.emulator.clear_sent_mail()
    renamed = meeting("Plan B", BOB, CAROL)
    alice.update_event(ms.calendar_id, made.external_id, renamed, etag=None, fields=["subject"], notify=False)
    assert ms.emulator.sent_invitations(ALICE) == [("update", BOB, uid), ("update", CAROL, uid)]
    assert (
        provider_for(ms, BOB)
        .get_event(calendar_of(ms, BOB), the_copy(ms, provider_for(ms, BOB)).external_id)
        .subject
        == "Plan B"
    )


def test_rewriting_the_attendees_keeps_their_answers(ms: RunningMicrosoftEmulator) -> None:
    alice = provider_for(ms)
    made = alice.create_event(ms.calendar_id, meeting("Plan", BOB), idempotency_key="k-r")
    ms.emulator.user_respond(BOB, the_copy(ms, provider_for(ms, BOB)).external_id, "accept")
    current = alice.get_event(ms.calendar_id, made.external_id)
    kept = dataclasses.replace(current.content(), attendees=(*current.attendees, Attendee(CAROL)))
    updated = alice.update_event(ms.calendar_id, made.external_id, kept, etag=None, fields=["attendees"])
    assert {a.email: a.response for a in updated.attendees} == {BOB: ACCEPTED, CAROL: NEEDS_ACTION}


def test_a_cancelled_copy_is_a_deletion_for_the_engine(ms: RunningMicrosoftEmulator) -> None:
    alice, bob = provider_for(ms), provider_for(ms, BOB)
    made = alice.create_event(ms.calendar_id, meeting("Review", BOB), idempotency_key="k-c")
    first = bob.list_changes(calendar_of(ms, BOB), None, **window())
    [listed] = first.changes
    alice.delete_event(ms.calendar_id, made.external_id)
    [change] = bob.list_changes(calendar_of(ms, BOB), first.cursor, **window()).changes
    assert (change.external_id, change.kind) == (listed.external_id, "deleted")
    with pytest.raises(NotFound):
        bob.get_event(calendar_of(ms, BOB), listed.external_id)


def test_answers_reach_the_organizer_s_delta_and_a_decline_removes_the_copy(
    ms: RunningMicrosoftEmulator,
) -> None:
    alice, bob = provider_for(ms), provider_for(ms, BOB)
    made = alice.create_event(ms.calendar_id, meeting("Sync", BOB), idempotency_key="k-s")
    alice_cursor = alice.list_changes(ms.calendar_id, None, **window()).cursor
    bob_page = bob.list_changes(calendar_of(ms, BOB), None, **window())
    [listed] = bob_page.changes
    ms.emulator.user_respond(BOB, listed.external_id, "tentativelyAccept")
    [seen] = alice.list_changes(ms.calendar_id, alice_cursor, **window()).changes
    assert seen.event is not None
    assert seen.external_id == made.external_id
    assert seen.event.etag != made.etag
    assert [(a.email, a.response) for a in seen.event.attendees] == [(BOB, TENTATIVE)]
    copy_page = bob.list_changes(calendar_of(ms, BOB), bob_page.cursor, **window())
    [answered] = copy_page.changes
    assert answered.event is not None
    assert answered.event.my_response == TENTATIVE
    ms.emulator.user_respond(BOB, listed.external_id, "decline")
    [removed] = bob.list_changes(calendar_of(ms, BOB), copy_page.cursor, **window()).changes
    assert (removed.external_id, removed.kind) == (listed.external_id, "deleted")
    assert alice.get_event(ms.calendar_id, made.external_id).attendees[0].response == DECLINED


def test_a_video_call_makes_a_teams_meeting_the_copies_share(ms: RunningMicrosoftEmulator) -> None:
    alice = provider_for(ms)
    made = alice.create_event(ms.calendar_id, meeting("Call", BOB, video_call=True), idempotency_key="k-v")
    assert made.join_url is not None
    assert made.join_url.startswith("https://teams.microsoft.com/l/meetup-join/")
    assert made.video_call_pending is False
    [posted] = written_bodies(ms, "events.create")
    assert {key: posted[key] for key in TEAMS} == TEAMS
    assert the_copy(ms, provider_for(ms, BOB)).join_url == made.join_url


def test_a_bulk_create_asks_for_the_video_call_too(ms: RunningMicrosoftEmulator) -> None:
    alice = provider_for(ms)
    [made] = alice.create_events(ms.calendar_id, [(meeting("Call", video_call=True), "k-bv")])
    assert isinstance(made, RemoteEvent)
    assert made.join_url is not None
    [posted] = written_bodies(ms, "events.create")  # the batch's part, as Graph saw it
    assert {key: posted[key] for key in TEAMS} == TEAMS


def test_an_update_adds_a_video_call_only_when_it_writes_that_field(ms: RunningMicrosoftEmulator) -> None:
    alice = provider_for(ms)
    made = alice.create_event(ms.calendar_id, meeting("Call", BOB), idempotency_key="k-u")
    wanted = meeting("Call (video)", BOB, video_call=True)
    plain = alice.update_event(ms.calendar_id, made.external_id, wanted, etag=made.etag, fields=["subject"])
    assert plain.join_url is None
    ms.emulator.reset_counts()
    ms.emulator.clear_sent_mail()
    online = alice.update_event(
        ms.calendar_id, made.external_id, wanted, etag=plain.etag, fields=[VIDEO_CALL]
    )
    assert written_bodies(ms, "events.update") == [TEAMS]
    assert online.join_url is not None
    assert ms.emulator.sent_invitations(ALICE) == [("update", BOB, made.ical_uid)]
    assert the_copy(ms, provider_for(ms, BOB)).join_url == online.join_url


def test_a_conflicting_video_call_request_is_not_taken_for_done(ms: RunningMicrosoftEmulator) -> None:
    alice = provider_for(ms)
    made = alice.create_event(ms.calendar_id, meeting("Call"), idempotency_key="k-x")
    ms.emulator.user_update_event(ALICE, made.external_id, {"categories": ["Blue category"]})  # a user's edit
    with pytest.raises(Conflict):
        alice.update_event(
            ms.calendar_id,
            made.external_id,
            meeting("Call", video_call=True),
            etag=made.etag,
            fields=[VIDEO_CALL],
        )
