"""Meetings in the Google emulator, through the real client library: guests' copies, answers,
invitation mail (sendUpdates) and Google Meet (conferenceDataVersion=1), as Google Calendar API v3
documents them (events resource, events.insert/patch/delete, concepts/sharing)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import requests
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from tests.calendarsync.conftest import RunningGoogleEmulator
from tests.calendarsync.emulators.test_google_emulator import type_errors

ALICE = "alice@example.com"
BOB = "bob@example.com"
CAROL = "carol@example.com"
OUTSIDER = "zed@elsewhere.example"
SCOPES = ["openid", "https://www.googleapis.com/auth/calendar"]
MEET_URI = re.compile(r"https://meet\.google\.com/[a-z]{3}-[a-z]{4}-[a-z]{3}")


def service_as(google: RunningGoogleEmulator, email: str) -> Any:
    issued = google.emulator.issue_tokens(email, SCOPES, google.client_id)
    credentials = Credentials(
        issued["access_token"],
        refresh_token=issued["refresh_token"],
        token_uri=google.token_uri,
        client_id=google.client_id,
        client_secret=google.client_secret,
    )
    return build(
        "calendar",
        "v3",
        credentials=credentials,
        static_discovery=True,
        client_options={"api_endpoint": google.api_endpoint},
    )


@pytest.fixture
def google(google_emulator: RunningGoogleEmulator) -> RunningGoogleEmulator:
    google_emulator.emulator.add_user(BOB)
    google_emulator.emulator.add_user(CAROL)
    return google_emulator


@pytest.fixture
def alice(google: RunningGoogleEmulator) -> Any:
    return service_as(google, ALICE)


@pytest.fixture
def bob(google: RunningGoogleEmulator) -> Any:
    return service_as(google, BOB)


@pytest.fixture
def carol(google: RunningGoogleEmulator) -> Any:
    return service_as(google, CAROL)


def meeting(summary: str = "Planning", *guests: str, **extra: Any) -> dict[str, Any]:
    return {
        "summary": summary,
        "start": {"dateTime": "2030-05-06T10:00:00+02:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2030-05-06T11:00:00+02:00", "timeZone": "Europe/Berlin"},
        "attendees": [{"email": guest} for guest in guests],
        **extra,
    }


def feed(service: Any, token: str | None = None) -> tuple[list[dict[str, Any]], str]:
    """Every page of a full (token None) or incremental listing, deletions included."""
    items: list[dict[str, Any]] = []
    page_token = None
    params: dict[str, Any] = {"syncToken": token} if token else {}
    while True:
        page = (
            service.events()
            .list(calendarId="primary", showDeleted=True, singleEvents=True, pageToken=page_token, **params)
            .execute()
        )
        items.extend(page["items"])
        page_token = page.get("nextPageToken")
        if not page_token:
            return items, page["nextSyncToken"]


def get(service: Any, event_id: str) -> dict[str, Any]:
    return dict(service.events().get(calendarId="primary", eventId=event_id).execute())


def entry(resource: dict[str, Any], email: str) -> dict[str, Any]:
    return next(a for a in resource["attendees"] if a["email"] == email)


def reason_of(raised: pytest.ExceptionInfo[HttpError]) -> str:
    return str(json.loads(raised.value.content)["error"]["errors"][0]["reason"])


# -- copies in guests' calendars ---------------------------------------------------------------------


def test_a_guest_with_a_mailbox_here_gets_a_copy_with_the_same_id_and_uid(google, alice, bob):
    created = alice.events().insert(calendarId="primary", body=meeting("Planning", BOB, OUTSIDER)).execute()

    held = get(bob, created["id"])
    assert held["id"] == created["id"]
    assert held["iCalUID"] == created["iCalUID"]
    assert held["organizer"] == {"email": ALICE}
    assert created["organizer"] == {"email": ALICE, "self": True}
    assert entry(held, BOB) == {"email": BOB, "responseStatus": "needsAction", "self": True}
    assert entry(held, OUTSIDER) == {"email": OUTSIDER, "responseStatus": "needsAction"}
    assert "self" not in entry(created, BOB)
    assert held["summary"] == "Planning"
    assert held["start"] == created["start"]
    assert held["etag"] != created["etag"] or held["htmlLink"] != created["htmlLink"]
    # Google puts the copy there whatever sendUpdates says; it mailed nothing (sendUpdates absent).
    assert google.emulator.sent_mail(ALICE) == []
    assert type_errors(held, {"$ref": "Event"}, "copy") == []


def test_organizer_changes_reach_every_copy_and_show_in_the_guests_feed(google, alice, bob):
    created = alice.events().insert(calendarId="primary", body=meeting("Planning", BOB)).execute()
    before, token = feed(bob)
    assert [item["id"] for item in before] == [created["id"]]

    alice.events().patch(
        calendarId="primary",
        eventId=created["id"],
        body={
            "summary": "Planning, moved",
            "location": "Room 2",
            "description": "Agenda",
            "start": {"dateTime": "2030-05-07T10:00:00+02:00", "timeZone": "Europe/Berlin"},
            "end": {"dateTime": "2030-05-07T11:30:00+02:00", "timeZone": "Europe/Berlin"},
        },
    ).execute()
    changes, token = feed(bob, token)

    assert [item["id"] for item in changes] == [created["id"]]
    copy = changes[0]
    assert (copy["summary"], copy["location"], copy["description"]) == ("Planning, moved", "Room 2", "Agenda")
    assert copy["start"]["dateTime"] == "2030-05-07T10:00:00+02:00"
    assert copy["etag"] != before[0]["etag"]
    assert copy["updated"] >= before[0]["updated"]
    assert feed(bob, token)[0] == []


def test_an_attendee_removed_or_a_deleted_meeting_cancels_the_copies(google, alice, bob, carol):
    created = alice.events().insert(calendarId="primary", body=meeting("Planning", BOB, CAROL)).execute()
    _, bob_token = feed(bob)
    _, carol_token = feed(carol)

    alice.events().patch(
        calendarId="primary", eventId=created["id"], body={"attendees": [{"email": CAROL}]}
    ).execute()
    bob_changes, bob_token = feed(bob, bob_token)
    assert [(item["id"], item["status"]) for item in bob_changes] == [(created["id"], "cancelled")]
    with pytest.raises(HttpError) as raised:
        get(bob, created["id"])
    assert raised.value.resp.status == 404

    alice.events().delete(calendarId="primary", eventId=created["id"]).execute()
    carol_changes, _ = feed(carol, carol_token)
    assert [(item["id"], item["status"]) for item in carol_changes] == [(created["id"], "cancelled")]
    assert feed(bob, bob_token)[0] == []


def test_an_attendee_invited_again_gets_the_copy_back(google, alice, bob):
    created = alice.events().insert(calendarId="primary", body=meeting("Planning", BOB)).execute()
    alice.events().patch(calendarId="primary", eventId=created["id"], body={"attendees": []}).execute()
    alice.events().patch(
        calendarId="primary", eventId=created["id"], body={"attendees": [{"email": BOB}]}
    ).execute()

    assert get(bob, created["id"])["status"] == "confirmed"


# -- answers -------------------------------------------------------------------------------------------


def test_a_guests_answer_reaches_the_organizer_and_the_other_copies_and_their_feeds(
    google, alice, bob, carol
):
    created = alice.events().insert(calendarId="primary", body=meeting("Planning", BOB, CAROL)).execute()
    _, alice_token = feed(alice)
    _, carol_token = feed(carol)
    held = get(bob, created["id"])

    answered = (
        bob.events()
        .patch(
            calendarId="primary",
            eventId=created["id"],
            body={
                "attendees": [
                    {**a, "responseStatus": "accepted"} if a.get("self") else a for a in held["attendees"]
                ]
            },
        )
        .execute()
    )

    assert entry(answered, BOB) == {"email": BOB, "responseStatus": "accepted", "self": True}
    alice_changes, _ = feed(alice, alice_token)
    assert [item["id"] for item in alice_changes] == [created["id"]]
    assert entry(alice_changes[0], BOB)["responseStatus"] == "accepted"
    assert alice_changes[0]["etag"] != created["etag"]
    carol_changes, _ = feed(carol, carol_token)
    assert [entry(item, BOB)["responseStatus"] for item in carol_changes] == ["accepted"]
    assert entry(carol_changes[0], CAROL) == {"email": CAROL, "responseStatus": "needsAction", "self": True}


def test_a_guest_may_not_change_shared_properties_of_their_copy(google, alice, bob):
    created = alice.events().insert(calendarId="primary", body=meeting("Planning", BOB, CAROL)).execute()
    held = get(bob, created["id"])
    others_answer = [
        {**a, "responseStatus": "accepted"} if a["email"] == CAROL else a for a in held["attendees"]
    ]

    for change in (
        {"summary": "Mine now"},
        {"start": {"dateTime": "2030-05-06T12:00:00Z"}, "end": {"dateTime": "2030-05-06T13:00:00Z"}},
        {"attendees": [*held["attendees"], {"email": OUTSIDER}]},
        {"attendees": others_answer},
        {"visibility": "private"},
    ):
        with pytest.raises(HttpError) as raised:
            bob.events().patch(calendarId="primary", eventId=created["id"], body=change).execute()
        assert raised.value.resp.status == 403
        assert reason_of(raised) == "forbiddenForNonOrganizer"
    with pytest.raises(HttpError) as raised:
        bob.events().update(
            calendarId="primary", eventId=created["id"], body={**held, "location": "Here"}
        ).execute()
    assert reason_of(raised) == "forbiddenForNonOrganizer"

    # Properties private to the copy are the guest's, and stay there.
    tagged = (
        bob.events()
        .patch(
            calendarId="primary",
            eventId=created["id"],
            body={
                "extendedProperties": {"private": {"mine": "1"}},
                "transparency": "transparent",
                "summary": "Planning",
            },
        )
        .execute()
    )
    assert tagged["extendedProperties"] == {"private": {"mine": "1"}}
    assert "extendedProperties" not in get(alice, created["id"])
    alice.events().patch(calendarId="primary", eventId=created["id"], body={"summary": "Renamed"}).execute()
    again = get(bob, created["id"])
    assert (again["summary"], again["extendedProperties"], again["transparency"]) == (
        "Renamed",
        {"private": {"mine": "1"}},
        "transparent",
    )


def test_a_guest_deleting_their_copy_declines(google, alice, bob, carol):
    created = alice.events().insert(calendarId="primary", body=meeting("Planning", BOB, CAROL)).execute()
    _, bob_token = feed(bob)
    _, alice_token = feed(alice)

    bob.events().delete(calendarId="primary", eventId=created["id"]).execute()

    bob_changes, _ = feed(bob, bob_token)
    assert [(item["id"], item["status"]) for item in bob_changes] == [(created["id"], "cancelled")]
    alice_changes, _ = feed(alice, alice_token)
    assert entry(alice_changes[0], BOB)["responseStatus"] == "declined"
    assert entry(get(carol, created["id"]), BOB)["responseStatus"] == "declined"
    # The organizer's later changes do not bring the declined copy back.
    alice.events().patch(calendarId="primary", eventId=created["id"], body={"summary": "Still on"}).execute()
    assert google.emulator.user_get_event(BOB, created["id"])["status"] == "cancelled"


def test_the_organizers_own_answer_and_recurring_meetings_reach_the_copies(google, alice, bob):
    series = (
        alice.events()
        .insert(calendarId="primary", body=meeting("Daily", BOB, recurrence=["RRULE:FREQ=DAILY;COUNT=3"]))
        .execute()
    )
    instances, token = feed(bob)
    assert len(instances) == 3
    assert {item["recurringEventId"] for item in instances} == {series["id"]}

    alice.events().delete(calendarId="primary", eventId=instances[1]["id"]).execute()
    changes, _ = feed(bob, token)

    assert [(item["id"], item["status"]) for item in changes] == [(instances[1]["id"], "cancelled")]


# -- invitation mail ------------------------------------------------------------------------------------


def writes(alice: Any, **params: Any) -> str:
    """Invite Bob and an outsider, then add Carol, drop the outsider and move it, then cancel."""
    created = (
        alice.events()
        .insert(calendarId="primary", body=meeting("Planning", BOB, OUTSIDER), **params)
        .execute()
    )
    alice.events().patch(
        calendarId="primary",
        eventId=created["id"],
        body={"attendees": [{"email": BOB}, {"email": CAROL}], "summary": "Planning, moved"},
        **params,
    ).execute()
    alice.events().patch(
        calendarId="primary",
        eventId=created["id"],
        body={"colorId": "3", "transparency": "transparent"},
        **params,
    ).execute()
    alice.events().delete(calendarId="primary", eventId=created["id"], **params).execute()
    return str(created["iCalUID"])


def test_send_updates_all_mails_invitations_updates_and_cancellations(google, alice):
    uid = writes(alice, sendUpdates="all")

    assert google.emulator.sent_mail(ALICE) == [
        ("invitation", BOB, uid),
        ("invitation", OUTSIDER, uid),
        ("invitation", CAROL, uid),
        ("update", BOB, uid),
        ("cancellation", OUTSIDER, uid),
        ("cancellation", BOB, uid),
        ("cancellation", CAROL, uid),
    ]


def test_send_updates_external_only_mails_guests_without_a_mailbox_here(google, alice):
    uid = writes(alice, sendUpdates="externalOnly")

    assert google.emulator.sent_mail(ALICE) == [
        ("invitation", OUTSIDER, uid),
        ("cancellation", OUTSIDER, uid),
    ]


@pytest.mark.parametrize("params", [{}, {"sendUpdates": "none"}, {"sendNotifications": False}])
def test_no_send_updates_mails_nothing(google, alice, bob, params):
    created = alice.events().insert(calendarId="primary", body=meeting("Planning", BOB), **params).execute()
    alice.events().delete(calendarId="primary", eventId=created["id"], **params).execute()

    assert google.emulator.sent_mail(ALICE) == []
    assert google.emulator.user_get_event(BOB, created["id"])["status"] == "cancelled"


def test_deprecated_send_notifications_true_mails_everyone(google, alice):
    created = (
        alice.events()
        .insert(calendarId="primary", body=meeting("Planning", BOB), sendNotifications=True)
        .execute()
    )

    assert google.emulator.sent_mail(ALICE) == [("invitation", BOB, created["iCalUID"])]


def test_a_guests_answer_mails_nothing_on_the_organizers_behalf(google, alice, bob):
    created = (
        alice.events()
        .insert(calendarId="primary", body=meeting("Planning", BOB), sendUpdates="all")
        .execute()
    )
    held = get(bob, created["id"])
    bob.events().patch(
        calendarId="primary",
        eventId=created["id"],
        body={"attendees": [{**a, "responseStatus": "tentative"} for a in held["attendees"]]},
        sendUpdates="all",
    ).execute()

    assert google.emulator.sent_mail(ALICE) == [("invitation", BOB, created["iCalUID"])]
    assert google.emulator.sent_mail(BOB) == []
    assert entry(get(alice, created["id"]), BOB)["responseStatus"] == "tentative"


def test_an_unknown_send_updates_value_is_refused(alice):
    request = alice.events().insert(calendarId="primary", body=meeting("Planning", BOB))
    request.uri += "&sendUpdates=everyone" if "?" in request.uri else "?sendUpdates=everyone"
    with pytest.raises(HttpError) as raised:
        request.execute()
    assert raised.value.resp.status == 400


# -- Google Meet ------------------------------------------------------------------------------------------


def meet_request(request_id: str = "req-1") -> dict[str, Any]:
    return {"createRequest": {"requestId": request_id, "conferenceSolutionKey": {"type": "hangoutsMeet"}}}


def test_a_meet_request_is_pending_in_the_answer_then_made_with_a_new_etag(google, alice, bob):
    _, token = feed(alice)
    created = (
        alice.events()
        .insert(
            calendarId="primary",
            body=meeting("Call", BOB, conferenceData=meet_request()),
            conferenceDataVersion=1,
        )
        .execute()
    )

    assert created["conferenceData"]["createRequest"]["status"] == {"statusCode": "pending"}
    assert "entryPoints" not in created["conferenceData"]
    assert "hangoutLink" not in created
    changes, _ = feed(alice, token)
    made = get(alice, created["id"])
    assert [item["etag"] for item in changes] == [made["etag"]]
    assert made["etag"] != created["etag"]
    assert made["conferenceData"]["createRequest"]["status"] == {"statusCode": "success"}
    video = [e for e in made["conferenceData"]["entryPoints"] if e["entryPointType"] == "video"]
    assert len(video) == 1
    assert MEET_URI.fullmatch(video[0]["uri"])
    assert made["hangoutLink"] == video[0]["uri"]
    assert video[0]["label"]
    assert get(bob, created["id"])["hangoutLink"] == made["hangoutLink"]
    assert type_errors(made, {"$ref": "Event"}, "meet") == []
    assert type_errors(created, {"$ref": "Event"}, "pending") == []


def test_conference_data_without_version_1_is_ignored(alice):
    created = (
        alice.events()
        .insert(calendarId="primary", body=meeting("Call", conferenceData=meet_request()))
        .execute()
    )

    assert "conferenceData" not in created
    assert "conferenceData" not in get(alice, created["id"])
    assert "hangoutLink" not in get(alice, created["id"])


def test_patch_adds_meet_once_and_a_repeated_request_id_makes_no_second_conference(alice):
    created = alice.events().insert(calendarId="primary", body=meeting("Call")).execute()
    pending = (
        alice.events()
        .patch(
            calendarId="primary",
            eventId=created["id"],
            body={"conferenceData": meet_request("req-9")},
            conferenceDataVersion=1,
        )
        .execute()
    )
    assert pending["conferenceData"]["createRequest"]["status"]["statusCode"] == "pending"
    link = get(alice, created["id"])["hangoutLink"]

    repeated = (
        alice.events()
        .patch(
            calendarId="primary",
            eventId=created["id"],
            body={"conferenceData": meet_request("req-9"), "summary": "Call again"},
            conferenceDataVersion=1,
        )
        .execute()
    )

    assert repeated["hangoutLink"] == link
    assert repeated["conferenceData"]["createRequest"]["status"]["statusCode"] == "success"
    alice.events().patch(calendarId="primary", eventId=created["id"], body={"summary": "Kept"}).execute()
    assert get(alice, created["id"])["hangoutLink"] == link


def test_an_unknown_conference_type_is_refused(alice):
    body = meeting(
        "Call",
        conferenceData={"createRequest": {"requestId": "x", "conferenceSolutionKey": {"type": "zoom"}}},
    )
    with pytest.raises(HttpError) as raised:
        alice.events().insert(calendarId="primary", body=body, conferenceDataVersion=1).execute()
    assert raised.value.resp.status == 400


# -- invitations from elsewhere, and the control API ---------------------------------------------------


def test_an_invitation_from_elsewhere_lands_as_a_copy_the_guest_can_answer(google, bob):
    delivered = google.emulator.user_receive_invitation(
        BOB,
        {
            "iCalUID": "outside-123@elsewhere.example",
            "organizer": {"email": OUTSIDER},
            **meeting("From outside", OUTSIDER),
        },
    )
    held = get(bob, delivered["id"])
    assert held["organizer"] == {"email": OUTSIDER}
    assert held["iCalUID"] == "outside-123@elsewhere.example"
    assert entry(held, BOB) == {"email": BOB, "responseStatus": "needsAction", "self": True}

    answered = google.emulator.user_respond(BOB, delivered["id"], "accepted")

    assert entry(answered, BOB)["responseStatus"] == "accepted"
    assert google.emulator.user_event_by_uid(BOB, "outside-123@elsewhere.example")["id"] == delivered["id"]
    with pytest.raises(HttpError) as raised:
        bob.events().patch(calendarId="primary", eventId=delivered["id"], body={"summary": "x"}).execute()
    assert reason_of(raised) == "forbiddenForNonOrganizer"


def test_http_control_api_counts_mail_and_answers_invitations(google):
    def control(path: str, payload: dict[str, Any]) -> Any:
        response = requests.post(f"{google.url}/_control/{path}", json=payload, timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    created = control("events", {"email": ALICE, "body": meeting("Planning", BOB), "send_updates": "all"})
    control("events/respond", {"email": BOB, "event_id": created["id"], "response": "declined"})

    mail = requests.get(f"{google.url}/_control/mail", params={"email": ALICE}, timeout=5).json()
    assert mail == {"items": [["invitation", BOB, created["iCalUID"]]]}
    assert entry(google.emulator.user_get_event(ALICE, created["id"]), BOB)["responseStatus"] == "declined"
