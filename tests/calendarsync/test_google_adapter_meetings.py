"""The Google adapter and meetings (issue #15): organizer, own answer, guests' answers, invitation
mail (sendUpdates) and Google Meet, through google-api-python-client against the emulator."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from calendarsync.providers.base import (
    ACCEPTED,
    DECLINED,
    NEEDS_ACTION,
    VIDEO_CALL,
    Attendee,
    EventData,
    InvalidEvent,
    RemoteEvent,
)
from calendarsync.providers.google.adapter import GoogleProvider, insert_request
from calendarsync.providers.google.mapping import event_id_for_key, parse_event
from tests.calendarsync.conftest import RunningGoogleEmulator

ALICE = "alice@example.com"
BOB = "bob@example.com"
OUTSIDER = "zed@elsewhere.example"
MEET_URI = re.compile(r"https://meet\.google\.com/[a-z]{3}-[a-z]{4}-[a-z]{3}")
START = dt.datetime(2030, 5, 6, 8, 0, tzinfo=dt.UTC)
WINDOW = {
    "window_start": dt.datetime(2030, 5, 1, tzinfo=dt.UTC),
    "window_end": dt.datetime(2030, 6, 1, tzinfo=dt.UTC),
}


def resource(**fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": "abc123",
        "etag": '"1"',
        "status": "confirmed",
        "summary": "Planning",
        "updated": "2030-05-01T10:00:00.000Z",
        "start": {"dateTime": "2030-05-06T10:00:00+02:00"},
        "end": {"dateTime": "2030-05-06T11:00:00+02:00"},
        "iCalUID": "abc123@google.com",
    }
    event.update(fields)
    return event


def meeting(subject: str = "Planning", *guests: str, video_call: bool = False) -> EventData:
    return EventData(
        subject=subject,
        start=START,
        end=START + dt.timedelta(hours=1),
        attendees=tuple(Attendee(email=guest) for guest in guests),
        video_call=video_call,
    )


# --------------------------------------------------------------------------- parsing


def test_parse_the_organizers_event() -> None:
    event = parse_event(
        resource(
            organizer={"email": ALICE, "self": True},
            attendees=[{"email": BOB, "responseStatus": "tentative"}],
        ),
        ALICE,
    )
    assert (event.organizer, event.is_organizer, event.my_response) == (ALICE, True, None)
    assert event.attendees[0].response == "tentative"
    assert event.ical_uid == "abc123@google.com"
    assert (event.join_url, event.video_call_pending) == (None, False)


def test_parse_a_guests_copy_gives_the_organizer_and_the_own_answer() -> None:
    event = parse_event(
        resource(
            organizer={"email": ALICE},
            attendees=[
                {"email": ALICE, "organizer": True, "responseStatus": "accepted"},
                {"email": BOB, "self": True, "responseStatus": "declined"},
            ],
        ),
        BOB,
    )
    assert (event.organizer, event.is_organizer, event.my_response) == (ALICE, False, DECLINED)
    assert [a.response for a in event.attendees] == [ACCEPTED, DECLINED]


@pytest.mark.parametrize(
    ("organizer", "calendar_id", "mine"),
    [
        (None, BOB, True),  # no organizer: the calendar's own event
        ({"email": "Team@Group.Calendar.Google.com"}, "team@group.calendar.google.com", True),
        ({"email": ALICE}, None, False),
        ({"email": ALICE, "self": True}, "primary", True),
    ],
)
def test_is_organizer_from_self_or_the_calendar_id(organizer: Any, calendar_id: Any, mine: bool) -> None:
    fields = {} if organizer is None else {"organizer": organizer}
    assert parse_event(resource(**fields), calendar_id).is_organizer is mine


def test_an_unknown_answer_or_no_self_entry() -> None:
    event = parse_event(
        resource(
            organizer={"email": ALICE}, attendees=[{"email": BOB, "self": True, "responseStatus": "maybe"}]
        )
    )
    assert event.my_response == NEEDS_ACTION
    assert parse_event(resource(organizer={"email": ALICE}, attendees=[{"email": BOB}])).my_response is None


def test_parse_join_url_from_hangout_link_or_the_video_entry_point_and_a_pending_request() -> None:
    entry_points = {
        "entryPoints": [
            {"entryPointType": "phone", "uri": "tel:+1-555"},
            {"entryPointType": "video", "uri": "https://meet.google.com/abc-defg-hij"},
        ]
    }
    assert (
        parse_event(resource(conferenceData=entry_points)).join_url == "https://meet.google.com/abc-defg-hij"
    )
    linked = parse_event(
        resource(hangoutLink="https://meet.google.com/xyz-abcd-efg", conferenceData=entry_points)
    )
    assert linked.join_url == "https://meet.google.com/xyz-abcd-efg"
    pending = parse_event(resource(conferenceData={"createRequest": {"status": {"statusCode": "pending"}}}))
    assert (pending.join_url, pending.video_call_pending) == (None, True)


def test_insert_request_sends_send_updates_either_way_and_a_stable_meet_request() -> None:
    quiet = insert_request(meeting("Planning", BOB), "k1", notify=False)
    assert quiet["sendUpdates"] == "none"
    assert "conferenceDataVersion" not in quiet
    assert "conferenceData" not in quiet["body"]
    loud = insert_request(meeting("Planning", BOB, video_call=True), "k1", notify=True)
    assert loud["sendUpdates"] == "all"
    assert loud["conferenceDataVersion"] == 1
    create = loud["body"]["conferenceData"]["createRequest"]
    assert create["conferenceSolutionKey"] == {"type": "hangoutsMeet"}
    again = insert_request(meeting("Planning", video_call=True), "k1", notify=False)
    other = insert_request(meeting("Planning", video_call=True), "k2", notify=False)
    assert again["body"]["conferenceData"] == loud["body"]["conferenceData"]
    assert other["body"]["conferenceData"] != loud["body"]["conferenceData"]


def test_provider_declares_meet_and_mail_only_on_request() -> None:
    assert GoogleProvider.video_call_service == "Google Meet"
    assert GoogleProvider.always_notifies_guests is False


# --------------------------------------------------------------------------- against the emulator


def provider_for(google: RunningGoogleEmulator, email: str) -> GoogleProvider:
    from django.conf import settings

    scopes = list(settings.GOOGLE_SCOPES)
    issued = google.emulator.issue_tokens(email, scopes, settings.GOOGLE_CLIENT_ID)
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=int(issued["expires_in"]))
    tokens = {
        "access_token": issued["access_token"],
        "refresh_token": issued["refresh_token"],
        "expiry": expiry.isoformat(),
        "scopes": scopes,
    }
    return GoogleProvider.from_tokens(tokens, sleep=lambda _: None)


@pytest.fixture
def google(google_emulator: RunningGoogleEmulator) -> RunningGoogleEmulator:
    google_emulator.emulator.add_user(BOB)
    return google_emulator


@pytest.fixture
def alice(google: RunningGoogleEmulator) -> GoogleProvider:
    return provider_for(google, ALICE)


@pytest.fixture
def bob(google: RunningGoogleEmulator) -> GoogleProvider:
    return provider_for(google, BOB)


def only_change(provider: GoogleProvider, calendar_id: str, cursor: str | None) -> tuple[RemoteEvent, str]:
    page = provider.list_changes(calendar_id, cursor, **WINDOW)
    assert len(page.changes) == 1, page.changes
    event = page.changes[0].event
    assert event is not None
    return event, page.cursor


def test_the_guest_reads_a_copy_with_the_same_uid_the_organizer_and_no_answer(
    google: RunningGoogleEmulator, alice: GoogleProvider, bob: GoogleProvider
) -> None:
    created = alice.create_event(ALICE, meeting("Planning", BOB, OUTSIDER), idempotency_key="m1")

    copy, _ = only_change(bob, BOB, None)

    assert (created.is_organizer, created.organizer, created.my_response) == (True, ALICE, None)
    assert copy.ical_uid == created.ical_uid
    assert copy.external_id == created.external_id
    assert (copy.is_organizer, copy.organizer, copy.my_response) == (False, ALICE, NEEDS_ACTION)
    assert google.emulator.sent_mail(ALICE) == []


def test_the_guests_answer_shows_in_the_organizers_feed(
    google: RunningGoogleEmulator, alice: GoogleProvider
) -> None:
    created = alice.create_event(ALICE, meeting("Planning", BOB), idempotency_key="m1")
    _, cursor = only_change(alice, ALICE, None)

    google.emulator.user_respond(BOB, created.external_id, "accepted")
    changed, _ = only_change(alice, ALICE, cursor)

    assert [(a.email, a.response) for a in changed.attendees] == [(BOB, ACCEPTED)]
    assert changed.etag != created.etag


def test_the_guest_deleting_the_copy_declines_and_cannot_change_shared_fields(
    alice: GoogleProvider, bob: GoogleProvider
) -> None:
    created = alice.create_event(ALICE, meeting("Planning", BOB), idempotency_key="m1")
    copy = bob.get_event(BOB, created.external_id)

    with pytest.raises(InvalidEvent, match="forbiddenForNonOrganizer"):
        bob.update_event(BOB, copy.external_id, meeting("Mine now", BOB), etag=copy.etag, fields={"subject"})
    bob.delete_event(BOB, copy.external_id, etag=copy.etag)

    assert [(a.email, a.response) for a in alice.get_event(ALICE, created.external_id).attendees] == [
        (BOB, DECLINED)
    ]


def test_notify_mails_invitations_once_even_when_the_create_is_repeated(
    google: RunningGoogleEmulator, alice: GoogleProvider
) -> None:
    first = alice.create_event(ALICE, meeting("Planning", BOB, OUTSIDER), idempotency_key="m1", notify=True)
    again = alice.create_event(ALICE, meeting("Planning", BOB, OUTSIDER), idempotency_key="m1", notify=True)

    assert again.external_id == first.external_id
    uid = first.ical_uid
    assert google.emulator.sent_mail(ALICE) == [("invitation", BOB, uid), ("invitation", OUTSIDER, uid)]


@pytest.mark.parametrize("notify", [True, False])
def test_bulk_create_mails_invitations_only_when_asked(
    google: RunningGoogleEmulator, alice: GoogleProvider, notify: bool
) -> None:
    results = alice.create_events(
        ALICE, [(meeting("One", BOB), "b1"), (meeting("Two", OUTSIDER), "b2")], notify=notify
    )

    events = [r for r in results if isinstance(r, RemoteEvent)]
    assert len(events) == 2
    expected = [("invitation", BOB, events[0].ical_uid), ("invitation", OUTSIDER, events[1].ical_uid)]
    assert google.emulator.sent_mail(ALICE) == (expected if notify else [])
    assert google.emulator.user_get_event(BOB, events[0].external_id) is not None


def test_update_and_delete_mail_the_guests_only_with_notify(
    google: RunningGoogleEmulator, alice: GoogleProvider
) -> None:
    created = alice.create_event(ALICE, meeting("Planning", BOB), idempotency_key="m1")
    quiet = alice.update_event(
        ALICE, created.external_id, meeting("Renamed", BOB), etag=created.etag, fields={"subject"}
    )
    assert google.emulator.sent_mail(ALICE) == []

    moved = alice.update_event(
        ALICE,
        created.external_id,
        meeting("Moved", BOB, OUTSIDER),
        etag=quiet.etag,
        fields={"subject", "attendees"},
        notify=True,
    )
    alice.delete_event(ALICE, created.external_id, etag=moved.etag, notify=True)

    uid = created.ical_uid
    assert google.emulator.sent_mail(ALICE) == [
        ("invitation", OUTSIDER, uid),
        ("update", BOB, uid),
        ("cancellation", BOB, uid),
        ("cancellation", OUTSIDER, uid),
    ]


def test_a_video_call_is_pending_on_create_then_has_a_meet_link_the_guest_sees_too(
    alice: GoogleProvider, bob: GoogleProvider
) -> None:
    created = alice.create_event(ALICE, meeting("Call", BOB, video_call=True), idempotency_key="v1")
    assert (created.video_call_pending, created.join_url) == (True, None)

    made = alice.get_event(ALICE, created.external_id)
    repeat = alice.create_event(ALICE, meeting("Call", BOB, video_call=True), idempotency_key="v1")

    assert made.video_call_pending is False
    assert made.join_url is not None
    assert MEET_URI.fullmatch(made.join_url)
    assert made.etag != created.etag
    assert repeat.join_url == made.join_url
    assert bob.get_event(BOB, created.external_id).join_url == made.join_url


def test_update_asks_for_a_video_call_once(google: RunningGoogleEmulator, alice: GoogleProvider) -> None:
    created = alice.create_event(ALICE, meeting("Call"), idempotency_key="v1")
    assert created.join_url is None
    asked = alice.update_event(
        ALICE, created.external_id, meeting("Call", video_call=True), etag=created.etag, fields={VIDEO_CALL}
    )
    assert asked.video_call_pending
    link = alice.get_event(ALICE, created.external_id).join_url
    assert link is not None

    google.emulator.reset_counts()
    again = alice.update_event(
        ALICE,
        created.external_id,
        meeting("Call", video_call=True),
        etag=None,
        fields={VIDEO_CALL, "subject"},
    )

    assert again.join_url == link
    assert not again.video_call_pending
    patches = [r for r in google.emulator.request_log() if r.name == "events.patch"]
    assert len(patches) == 1
    assert b"conferenceData" not in patches[0].body


def test_video_call_is_not_asked_for_unless_its_field_is_written(alice: GoogleProvider) -> None:
    created = alice.create_event(ALICE, meeting("Call"), idempotency_key="v1")
    alice.update_event(
        ALICE, created.external_id, meeting("Renamed", video_call=True), etag=created.etag, fields={"subject"}
    )

    event = alice.get_event(ALICE, created.external_id)
    assert (event.join_url, event.video_call_pending, event.subject) == (None, False, "Renamed")
    assert event.external_id == event_id_for_key("v1")
