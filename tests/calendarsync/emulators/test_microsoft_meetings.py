"""Meetings in the Microsoft 365 emulator, over Graph's wire protocol: invitations, attendees'
copies, updates, cancellations, RSVPs and Teams links (https://learn.microsoft.com/en-us/graph/api/resources/event)."""

from __future__ import annotations

import datetime as dt
import urllib.parse
from typing import Any

import pytest
import requests

from tests.calendarsync.conftest_microsoft import RunningMicrosoftEmulator

ALICE = "alice@contoso.test"
BOB = "bob@contoso.test"
DAVE = "dave@contoso.test"
CAROL = "carol@elsewhere.test"  # no mailbox on the emulator
SCOPES = ["Calendars.ReadWrite", "User.Read"]
TOMORROW = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
TEAMS_JOIN = "https://teams.microsoft.com/l/meetup-join/"


def at(moment: dt.datetime) -> dict[str, str]:
    return {"dateTime": moment.replace(tzinfo=None).isoformat(), "timeZone": "UTC"}


def invitees(*emails: str) -> list[dict[str, Any]]:
    return [{"emailAddress": {"address": email}, "type": "required"} for email in emails]


def meeting(*emails: str, subject: str = "Kick-off", **extra: Any) -> dict[str, Any]:
    return {
        "subject": subject,
        "start": at(TOMORROW),
        "end": at(TOMORROW + dt.timedelta(minutes=30)),
        "attendees": invitees(*emails),
        **extra,
    }


class Mailbox:
    """A Graph client signed in as one user."""

    def __init__(self, ms: RunningMicrosoftEmulator, email: str) -> None:
        issued = ms.emulator.issue_tokens(email, SCOPES, ms.client_id)
        self.ms = ms
        self.email = email
        self.calendar_id = ms.emulator.default_calendar_id(email)
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {issued['access_token']}"

    def call(self, method: str, path: str, body: Any = None) -> requests.Response:
        url = path if path.startswith("http") else self.ms.graph_base_url + path
        return self.session.request(method, url, json=body, timeout=10)

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        response = self.call(method, path, body)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self.ok("POST", self.calendar("events"), body))

    def patch(self, event_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self.ok("PATCH", event_path(event_id), body))

    def get(self, event_id: str) -> dict[str, Any]:
        return dict(self.ok("GET", event_path(event_id)))

    def events(self) -> list[dict[str, Any]]:
        return list(self.ok("GET", self.calendar("events"))["value"])

    def respond(self, event_id: str, action: str, **body: Any) -> requests.Response:
        return self.call("POST", f"{event_path(event_id)}/{action}", body)

    def calendar(self, *rest: str) -> str:
        return "/".join(["me", "calendars", urllib.parse.quote(self.calendar_id, safe=""), *rest])

    def delta(self, link: str | None = None) -> tuple[list[dict[str, Any]], str]:
        """One delta round (all pages): its items and the deltaLink."""
        query = urllib.parse.urlencode(
            {
                "startDateTime": (TOMORROW - dt.timedelta(days=2)).isoformat(),
                "endDateTime": (TOMORROW + dt.timedelta(days=30)).isoformat(),
            }
        )
        path = link or self.calendar("calendarView", f"delta?{query}")
        items: list[dict[str, Any]] = []
        while True:
            page = self.ok("GET", path)
            items += page["value"]
            if "@odata.deltaLink" in page:
                return items, page["@odata.deltaLink"]
            path = page["@odata.nextLink"]


def event_path(event_id: str) -> str:
    return f"me/events/{urllib.parse.quote(event_id, safe='')}"


def addresses(event: dict[str, Any]) -> list[str]:
    return [a["emailAddress"]["address"] for a in event["attendees"]]


def status_of(event: dict[str, Any], email: str) -> str:
    return str(
        next(a["status"] for a in event["attendees"] if a["emailAddress"]["address"] == email)["response"]
    )


@pytest.fixture
def ms(microsoft_emulator: RunningMicrosoftEmulator) -> RunningMicrosoftEmulator:
    microsoft_emulator.emulator.add_user(BOB, "Bob Jones")
    microsoft_emulator.emulator.add_user(DAVE, "Dave Brown")
    return microsoft_emulator


@pytest.fixture
def alice(ms: RunningMicrosoftEmulator) -> Mailbox:
    return Mailbox(ms, ALICE)


@pytest.fixture
def bob(ms: RunningMicrosoftEmulator) -> Mailbox:
    return Mailbox(ms, BOB)


@pytest.fixture
def dave(ms: RunningMicrosoftEmulator) -> Mailbox:
    return Mailbox(ms, DAVE)


def by_uid(ms: RunningMicrosoftEmulator, email: str, uid: str) -> dict[str, Any]:
    found = ms.emulator.user_event_by_uid(email, uid)
    assert found is not None
    return found


def sent(ms: RunningMicrosoftEmulator, email: str = ALICE) -> list[tuple[str, str, str]]:
    return list(ms.emulator.sent_invitations(email))


# --------------------------------------------------------------------------- invitations and copies


def test_a_post_with_attendees_invites_each_and_a_mailbox_here_gets_a_copy(
    ms: RunningMicrosoftEmulator, alice: Mailbox, bob: Mailbox
) -> None:
    made = alice.create(meeting(BOB, CAROL))
    uid = made["iCalUId"]
    assert (made["isOrganizer"], made["responseStatus"]["response"]) == (True, "organizer")
    assert sent(ms) == [("invitation", BOB, uid), ("invitation", CAROL, uid)]
    [copy] = bob.events()
    assert copy["id"] != made["id"]
    assert copy["iCalUId"] == uid
    assert copy["isOrganizer"] is False
    assert copy["organizer"]["emailAddress"] == {"name": "Alice Smith", "address": ALICE}
    assert copy["responseStatus"]["response"] == "notResponded"
    assert addresses(copy) == addresses(made) == [BOB, CAROL]
    assert (copy["subject"], copy["start"], copy["end"]) == (made["subject"], made["start"], made["end"])
    assert copy["showAs"] == "tentative"  # Outlook adds an unanswered request tentatively
    assert copy["transactionId"] is None
    assert sent(ms, BOB) == []


def test_an_event_without_attendees_and_a_repeated_create_send_nothing(
    ms: RunningMicrosoftEmulator, alice: Mailbox
) -> None:
    alice.create(meeting())
    assert sent(ms) == []
    first = alice.create(meeting(BOB, transactionId="tx-1"))
    again = alice.create(meeting(BOB, transactionId="tx-1"))
    assert again["id"] == first["id"]
    assert sent(ms) == [("invitation", BOB, first["iCalUId"])]


def test_a_json_batch_create_invites_too(ms: RunningMicrosoftEmulator, alice: Mailbox, bob: Mailbox) -> None:
    part = {
        "id": "1",
        "method": "POST",
        "url": "/" + alice.calendar("events"),
        "headers": {"Content-Type": "application/json"},
        "body": meeting(BOB),
    }
    answer = alice.ok("POST", "$batch", {"requests": [part]})
    uid = answer["responses"][0]["body"]["iCalUId"]
    assert sent(ms) == [("invitation", BOB, uid)]
    assert [e["iCalUId"] for e in bob.events()] == [uid]


def test_the_user_side_create_sends_invitations_like_graph(
    ms: RunningMicrosoftEmulator, bob: Mailbox
) -> None:
    made = ms.emulator.user_create_event(ALICE, meeting(BOB))
    assert sent(ms) == [("invitation", BOB, made["iCalUId"])]
    assert by_uid(ms, BOB, made["iCalUId"])["isOrganizer"] is False


# --------------------------------------------------------------------------- updates


def test_a_patch_of_attendees_only_mails_only_the_changed_attendees(
    ms: RunningMicrosoftEmulator, alice: Mailbox, bob: Mailbox, dave: Mailbox
) -> None:
    made = alice.create(meeting(BOB, CAROL))
    uid = made["iCalUId"]
    bob_copy = bob.events()[0]
    ms.emulator.clear_sent_mail()
    alice.patch(made["id"], {"attendees": invitees(BOB, DAVE)})
    assert sorted(sent(ms)) == [("cancellation", CAROL, uid), ("invitation", DAVE, uid)]
    assert bob.get(bob_copy["id"])["changeKey"] == bob_copy["changeKey"]  # Bob was not mailed
    assert [e["iCalUId"] for e in dave.events()] == [uid]


def test_a_patch_of_other_properties_updates_every_attendee_and_their_copies(
    ms: RunningMicrosoftEmulator, alice: Mailbox, bob: Mailbox
) -> None:
    made = alice.create(meeting(BOB, CAROL))
    uid = made["iCalUId"]
    _, link = bob.delta()
    ms.emulator.clear_sent_mail()
    later = TOMORROW + dt.timedelta(hours=2)
    alice.patch(
        made["id"], {"subject": "Moved", "start": at(later), "end": at(later + dt.timedelta(hours=1))}
    )
    assert sent(ms) == [("update", BOB, uid), ("update", CAROL, uid)]
    changes, _ = bob.delta(link)
    [copy] = changes
    assert (copy["subject"], copy["iCalUId"], copy["isCancelled"]) == ("Moved", uid, False)
    assert copy["start"]["dateTime"].startswith(later.strftime("%Y-%m-%dT%H:%M"))


def test_a_patch_of_attendees_and_subject_invites_cancels_and_updates(
    ms: RunningMicrosoftEmulator, alice: Mailbox, bob: Mailbox
) -> None:
    made = alice.create(meeting(BOB, CAROL))
    uid = made["iCalUId"]
    ms.emulator.clear_sent_mail()
    alice.patch(made["id"], {"subject": "Renamed", "attendees": invitees(BOB, DAVE)})
    assert sorted(sent(ms)) == [
        ("cancellation", CAROL, uid),
        ("invitation", DAVE, uid),
        ("update", BOB, uid),
    ]
    assert bob.events()[0]["subject"] == "Renamed"


def test_a_patch_that_changes_nothing_of_the_meeting_mails_no_one(
    ms: RunningMicrosoftEmulator, alice: Mailbox
) -> None:
    made = alice.create(meeting(BOB))
    ms.emulator.clear_sent_mail()
    alice.patch(made["id"], {"categories": ["Red category"], "subject": made["subject"]})
    tag = "String {c32b2878-66be-47e8-959e-c5c19f266353} Name calsync_activity_id"
    alice.patch(made["id"], {"singleValueExtendedProperties": [{"id": tag, "value": "activity-1"}]})
    assert sent(ms) == []


def test_a_removed_attendee_s_copy_is_cancelled(
    ms: RunningMicrosoftEmulator, alice: Mailbox, bob: Mailbox
) -> None:
    made = alice.create(meeting(BOB, DAVE, subject="Review"))
    _, link = bob.delta()
    alice.patch(made["id"], {"attendees": invitees(DAVE)})
    [copy] = bob.delta(link)[0]
    assert copy["isCancelled"] is True
    assert copy["subject"] == "Canceled: Review"
    assert [e["isCancelled"] for e in bob.events()] == [True]  # it stays until Bob removes it


def test_the_attendees_answers_survive_a_patch_that_sends_them_back(
    ms: RunningMicrosoftEmulator, alice: Mailbox, bob: Mailbox
) -> None:
    made = alice.create(meeting(BOB, DAVE))
    assert bob.respond(bob.events()[0]["id"], "accept").status_code == 202
    current = alice.get(made["id"])
    alice.patch(made["id"], {"attendees": [*current["attendees"], *invitees(CAROL)]})
    after = alice.get(made["id"])
    assert [status_of(after, who) for who in (BOB, DAVE, CAROL)] == ["accepted", "none", "none"]


# --------------------------------------------------------------------------- cancellations


def test_deleting_a_meeting_cancels_it_for_every_attendee(
    ms: RunningMicrosoftEmulator, alice: Mailbox, bob: Mailbox
) -> None:
    made = alice.create(meeting(BOB, CAROL, subject="Review"))
    uid = made["iCalUId"]
    copy_id = bob.events()[0]["id"]
    _, link = bob.delta()
    ms.emulator.clear_sent_mail()
    assert alice.call("DELETE", event_path(made["id"])).status_code == 204
    assert sent(ms) == [("cancellation", BOB, uid), ("cancellation", CAROL, uid)]
    changes, link = bob.delta(link)
    assert [(c["id"], c["isCancelled"], c["subject"]) for c in changes] == [
        (copy_id, True, "Canceled: Review")
    ]
    assert bob.get(copy_id)["isCancelled"] is True
    # Bob removes the cancelled meeting from his calendar: now delta reports it removed.
    assert bob.call("DELETE", event_path(copy_id)).status_code == 204
    changes, _ = bob.delta(link)
    assert changes == [
        {"@odata.type": "#microsoft.graph.event", "id": copy_id, "@removed": {"reason": "deleted"}}
    ]
    assert sent(ms, BOB) == []  # an attendee deleting their copy mails no one


def test_an_attendee_s_delete_or_change_of_their_copy_mails_no_one(
    ms: RunningMicrosoftEmulator, alice: Mailbox, bob: Mailbox
) -> None:
    made = alice.create(meeting(BOB))
    copy_id = bob.events()[0]["id"]
    ms.emulator.clear_sent_mail()
    bob.patch(copy_id, {"subject": "My note", "isOnlineMeeting": True})
    assert bob.get(copy_id)["isOnlineMeeting"] is False  # read-only on an attendee's copy
    assert bob.call("DELETE", event_path(copy_id)).status_code == 204
    assert sent(ms) == sent(ms, BOB) == []
    assert alice.get(made["id"])["subject"] == "Kick-off"


# --------------------------------------------------------------------------- responses


@pytest.mark.parametrize(
    ("action", "response"), [("accept", "accepted"), ("tentativelyAccept", "tentativelyAccepted")]
)
def test_an_answer_shows_on_the_copy_and_on_the_organizer_s_event_and_its_delta(
    ms: RunningMicrosoftEmulator, alice: Mailbox, bob: Mailbox, action: str, response: str
) -> None:
    made = alice.create(meeting(BOB, DAVE))
    copy_id = bob.events()[0]["id"]
    _, link = alice.delta()
    answer = bob.respond(copy_id, action, comment="See you", sendResponse=True)
    assert (answer.status_code, answer.content) == (202, b"")
    copy = bob.get(copy_id)
    assert copy["responseStatus"]["response"] == response
    assert copy["showAs"] == ("busy" if action == "accept" else "tentative")
    changes, _ = alice.delta(link)
    [organizers] = changes
    assert organizers["id"] == made["id"]
    assert organizers["changeKey"] != made["changeKey"]
    assert organizers["lastModifiedDateTime"] >= made["lastModifiedDateTime"]
    assert (status_of(organizers, BOB), status_of(organizers, DAVE)) == (response, "none")
    assert ms.emulator.sent_responses(BOB) == [(response, ALICE, made["iCalUId"])]


def test_decline_removes_the_copy_and_tells_the_organizer(
    ms: RunningMicrosoftEmulator, alice: Mailbox, bob: Mailbox
) -> None:
    made = alice.create(meeting(BOB))
    copy_id = bob.events()[0]["id"]
    _, link = bob.delta()
    assert (
        bob.respond(copy_id, "decline", comment="Sorry").status_code == 202
    )  # sendResponse defaults to true
    assert bob.call("GET", event_path(copy_id)).status_code == 404
    changes, _ = bob.delta(link)
    assert [(c["id"], "@removed" in c) for c in changes] == [(copy_id, True)]
    assert status_of(alice.get(made["id"]), BOB) == "declined"


def test_an_answer_without_send_response_stays_with_the_attendee(
    ms: RunningMicrosoftEmulator, alice: Mailbox, bob: Mailbox
) -> None:
    made = alice.create(meeting(BOB))
    copy_id = bob.events()[0]["id"]
    assert bob.respond(copy_id, "accept", sendResponse=False).status_code == 202
    assert bob.get(copy_id)["responseStatus"]["response"] == "accepted"
    organizers = alice.get(made["id"])
    assert (organizers["changeKey"], status_of(organizers, BOB)) == (made["changeKey"], "none")
    assert ms.emulator.sent_responses(BOB) == []


def test_the_organizer_cannot_answer_and_a_cancelled_meeting_takes_no_answer(
    ms: RunningMicrosoftEmulator, alice: Mailbox, bob: Mailbox
) -> None:
    made = alice.create(meeting(BOB))
    refused = alice.respond(made["id"], "accept")
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "ErrorInvalidRequest")
    copy_id = bob.events()[0]["id"]
    alice.call("DELETE", event_path(made["id"]))
    assert bob.respond(copy_id, "accept").status_code == 400
    assert bob.respond(copy_id, "accept", sendResponse="yes").status_code == 400


def test_an_invitation_from_elsewhere_lands_unanswered_and_answers_go_back(
    ms: RunningMicrosoftEmulator, alice: Mailbox
) -> None:
    uid = "040000008200E00074C5B7101A82E00800000000FROMELSEWHERE"
    body = meeting(CAROL, subject="Partner call")
    delivered = ms.emulator.deliver_invitation(ALICE, uid, CAROL, body, organizer_name="Carol C")
    copy = alice.get(delivered["id"])
    assert (copy["iCalUId"], copy["isOrganizer"], copy["responseStatus"]["response"]) == (
        uid,
        False,
        "notResponded",
    )
    assert copy["organizer"]["emailAddress"] == {"name": "Carol C", "address": CAROL}
    assert ALICE in addresses(copy)
    assert alice.respond(copy["id"], "tentativelyAccept").status_code == 202
    assert ms.emulator.sent_responses(ALICE) == [("tentativelyAccepted", CAROL, uid)]
    # The organizer sends an update: the same copy changes.
    again = ms.emulator.deliver_invitation(ALICE, uid, CAROL, {**body, "subject": "Partner call (moved)"})
    assert again["id"] == copy["id"]
    assert by_uid(ms, ALICE, uid)["subject"] == "Partner call (moved)"


def test_the_control_api_serves_what_was_sent(ms: RunningMicrosoftEmulator, alice: Mailbox) -> None:
    made = alice.create(meeting(BOB))
    answer = requests.get(f"{ms.graph_url}/_control/invitations", params={"email": ALICE}, timeout=10)
    assert answer.json() == {"value": [{"kind": "invitation", "recipient": BOB, "iCalUId": made["iCalUId"]}]}
    copy_id = by_uid(ms, BOB, made["iCalUId"])["id"]
    posted = requests.post(
        f"{ms.graph_url}/_control/events/respond",
        json={"email": BOB, "event_id": copy_id, "action": "accept"},
        timeout=10,
    )
    assert posted.status_code == 200, posted.text
    assert status_of(alice.get(made["id"]), BOB) == "accepted"


# --------------------------------------------------------------------------- Teams


def test_the_calendar_offers_teams(alice: Mailbox) -> None:
    [calendar] = alice.ok("GET", "me/calendars")["value"]
    assert calendar["allowedOnlineMeetingProviders"] == ["teamsForBusiness"]
    assert calendar["defaultOnlineMeetingProvider"] == "teamsForBusiness"


def test_a_teams_meeting_has_a_join_url_its_copies_share(
    ms: RunningMicrosoftEmulator, alice: Mailbox, bob: Mailbox
) -> None:
    made = alice.create(meeting(BOB, isOnlineMeeting=True, onlineMeetingProvider="teamsForBusiness"))
    assert (made["isOnlineMeeting"], made["onlineMeetingProvider"]) == (True, "teamsForBusiness")
    join_url = made["onlineMeeting"]["joinUrl"]
    assert join_url.startswith(TEAMS_JOIN)
    assert alice.get(made["id"])["onlineMeeting"] == {"joinUrl": join_url}
    copy = bob.events()[0]
    assert (copy["isOnlineMeeting"], copy["onlineMeeting"]) == (True, {"joinUrl": join_url})
    other = alice.create(meeting(isOnlineMeeting=True, onlineMeetingProvider="teamsForBusiness"))
    assert other["onlineMeeting"]["joinUrl"] not in (join_url, None)
    # Once online, Outlook ignores further changes to isOnlineMeeting.
    assert alice.patch(made["id"], {"isOnlineMeeting": False})["onlineMeeting"] == {"joinUrl": join_url}


def test_a_patch_makes_an_existing_meeting_a_teams_meeting_and_updates_the_attendees(
    ms: RunningMicrosoftEmulator, alice: Mailbox, bob: Mailbox
) -> None:
    made = alice.create(meeting(BOB))
    assert (made["isOnlineMeeting"], made["onlineMeeting"], made["onlineMeetingProvider"]) == (
        False,
        None,
        "unknown",
    )
    ms.emulator.clear_sent_mail()
    patched = alice.patch(made["id"], {"isOnlineMeeting": True, "onlineMeetingProvider": "teamsForBusiness"})
    assert patched["onlineMeeting"]["joinUrl"].startswith(TEAMS_JOIN)
    assert sent(ms) == [("update", BOB, made["iCalUId"])]
    assert bob.events()[0]["onlineMeeting"] == patched["onlineMeeting"]


def test_a_provider_the_calendar_does_not_allow_makes_no_online_meeting(alice: Mailbox) -> None:
    made = alice.create(meeting(isOnlineMeeting=True, onlineMeetingProvider="skypeForBusiness"))
    assert (made["isOnlineMeeting"], made["onlineMeeting"]) == (False, None)
    refused = alice.call("POST", alice.calendar("events"), meeting(onlineMeetingProvider="zoom"))
    assert refused.status_code == 400


def test_the_demo_page_shows_invitations(ms: RunningMicrosoftEmulator, alice: Mailbox) -> None:
    alice.create(meeting(BOB, isOnlineMeeting=True))
    page = requests.get(f"{ms.graph_url}/", timeout=10).text
    assert f"invited by {ALICE}, notResponded" in page
    assert "Teams" in page
