"""Meetings in the Exchange emulator, as Exchange does them: invitations, updates and cancellations
are mailed only when a request asks to send, reach the attendees' calendars as copies with the same
UID, and answers (AcceptItem, TentativelyAcceptItem, DeclineItem) reach the organizer's item.

Checked with exchangelib itself and on the wire (raw SOAP), like test_exchange_emulator.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import requests
from exchangelib.errors import (
    ErrorCalendarIsCancelledForAccept,
    ErrorCalendarIsOrganizerForAccept,
    ErrorItemNotFound,
)
from exchangelib.items import (
    SEND_ONLY,
    SEND_ONLY_TO_ALL,
    SEND_ONLY_TO_CHANGED,
    SEND_TO_ALL_AND_SAVE_COPY,
    SEND_TO_CHANGED_AND_SAVE_COPY,
    SEND_TO_NONE,
    CalendarItem,
)
from exchangelib.properties import Attendee, ItemId, Mailbox
from exchangelib.services import GetItem, SyncFolderItems

from calendarsync.providers.exchange import client as exchange_client
from calendarsync.providers.exchange.services import fields
from tests.calendarsync.conftest_exchange import RunningExchangeEmulator

ERIN = "erin@example.com"  # the organizer (the fixture's mailbox)
BOB, CAROL, DAVE = "bob@example.com", "carol@example.com", "dave@example.com"
OUTSIDER = "olga@elsewhere.example"  # no mailbox on this Exchange
PASSWORD = "colleague-password-1"
START = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)
END = START + dt.timedelta(hours=1)
READ = (
    "subject",
    "start",
    "end",
    "location",
    "uid",
    "organizer",
    "my_response_type",
    "is_cancelled",
    "is_meeting",
    "required_attendees",
    "optional_attendees",
    "last_modified_time",
)
SENDING_MODES = [SEND_ONLY_TO_ALL, SEND_TO_ALL_AND_SAVE_COPY]
ENVELOPE = """<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"
  xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"
  xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
  <s:Header><t:RequestServerVersion Version="Exchange2016"/></s:Header>
  <s:Body>{body}</s:Body>
</s:Envelope>"""


@pytest.fixture
def ews(exchange_emulator: RunningExchangeEmulator) -> RunningExchangeEmulator:
    for email in (BOB, CAROL, DAVE):
        exchange_emulator.emulator.add_user(email, PASSWORD)
    return exchange_emulator


def connected(ews: RunningExchangeEmulator, email: str = ERIN) -> tuple[Any, Any]:
    """An exchangelib Account of that mailbox, and its calendar folder."""
    password = ews.password if email == ERIN else PASSWORD
    login = exchange_client.ExchangeLogin.from_credentials(ews.credentials(email, password))
    client = exchange_client.ExchangeClient(login)
    return client.account, client.calendar_folder("calendar")


def attendees(*emails: str) -> list[Any]:
    return [Attendee(mailbox=Mailbox(email_address=email), response_type="Unknown") for email in emails]


def organize(
    ews: RunningExchangeEmulator,
    mode: str = SEND_TO_ALL_AND_SAVE_COPY,
    *,
    required: tuple[str, ...] = (BOB, CAROL),
    optional: tuple[str, ...] = (),
) -> Any:
    """Erin creates a meeting over EWS (CreateItem with SendMeetingInvitations=mode)."""
    account, folder = connected(ews)
    item = CalendarItem(
        account=account,
        folder=folder,
        subject="Budget review",
        start=START,
        end=END,
        required_attendees=attendees(*required),
        optional_attendees=attendees(*optional) or None,
    )
    item.save(send_meeting_invitations=mode)
    return read(account, item.id)


def read(account: Any, item_id: str) -> Any:
    """GetItem with the meeting fields: the item, or the error Exchange answered for it."""
    [found] = GetItem(account=account).call(
        items=[ItemId(id=item_id)], additional_fields=fields(*READ), shape="IdOnly"
    )
    return found


def copy_in(ews: RunningExchangeEmulator, email: str, uid: str) -> Any:
    """The mailbox's copy of the meeting, read over EWS as that mailbox (None without one)."""
    found = ews.emulator.user_find_by_uid(email, uid)
    if found is None:
        return None
    account, _ = connected(ews, email)
    return read(account, found["id"])


def summary(ews: RunningExchangeEmulator, email: str, *, uid: str = "", item_id: str = "") -> dict[str, Any]:
    """The emulator's summary of an item (by UID, or by id), which must exist."""
    found = ews.emulator.user_find_by_uid(email, uid) if uid else ews.emulator.user_get_event(email, item_id)
    assert found is not None
    return found


def sent(ews: RunningExchangeEmulator, email: str = ERIN) -> list[tuple[str, str, str]]:
    return ews.emulator.meeting_messages(email)


def sync(account: Any, folder: Any, state: str | None) -> tuple[list[tuple[str, str]], str]:
    """SyncFolderItems since ``state``: (change kind, item id) and the new state."""
    service = SyncFolderItems(account=account)
    changes = service.call(
        folder=folder,
        shape="IdOnly",
        additional_fields=None,
        sync_state=state,
        ignore=None,
        max_changes_returned=100,
        sync_scope=None,
    )
    return [(kind, item.id) for kind, item in changes], service.sync_state


def soap(ews: RunningExchangeEmulator, body: str, email: str = ERIN) -> str:
    password = ews.password if email == ERIN else PASSWORD
    response = requests.post(
        ews.server_url,
        data=ENVELOPE.format(body=body).encode(),
        headers={"Content-Type": "text/xml; charset=utf-8"},
        auth=(email, password),
        timeout=5,
    )
    assert response.status_code == 200, response.text
    return response.text


def emails(entries: Any) -> list[str]:
    return sorted(str(entry.mailbox.email_address) for entry in entries or ())


def response_of(item: Any, email: str) -> str:
    everyone = [*(item.required_attendees or ()), *(item.optional_attendees or ())]
    return str(next(entry.response_type for entry in everyone if entry.mailbox.email_address == email))


# --------------------------------------------------------------------------- invitations on create


def test_a_meeting_saved_without_sending_invites_nobody_and_stays_out_of_their_calendars(
    ews: RunningExchangeEmulator,
) -> None:
    meeting = organize(ews, SEND_TO_NONE)
    assert sent(ews) == []
    assert ews.emulator.user_find_by_uid(BOB, meeting.uid) is None
    assert ews.emulator.user_find_by_uid(CAROL, meeting.uid) is None
    assert meeting.is_meeting is True
    assert meeting.my_response_type == "Organizer"
    assert meeting.organizer.email_address == ERIN


@pytest.mark.parametrize("mode", SENDING_MODES)
def test_a_sent_meeting_invites_every_attendee_once_and_copies_reach_their_calendars(
    ews: RunningExchangeEmulator, mode: str
) -> None:
    meeting = organize(ews, mode, required=(BOB, OUTSIDER), optional=(CAROL,))
    assert sorted(sent(ews)) == [
        ("invitation", BOB, meeting.uid),
        ("invitation", CAROL, meeting.uid),
        ("invitation", OUTSIDER, meeting.uid),
    ]
    account, folder = connected(ews, BOB)
    changes, _ = sync(account, folder, None)
    assert len(changes) == 1
    assert changes[0][0] == "create"
    bobs = read(account, changes[0][1])
    assert bobs.id != meeting.id
    assert bobs.uid == meeting.uid
    assert bobs.organizer.email_address == ERIN
    assert bobs.my_response_type == "NoResponseReceived"
    assert bobs.is_cancelled is False
    assert (bobs.subject, bobs.start, bobs.end) == ("Budget review", START, END)
    assert emails(bobs.required_attendees) == [BOB, OUTSIDER]
    assert emails(bobs.optional_attendees) == [CAROL]
    assert copy_in(ews, CAROL, meeting.uid).uid == meeting.uid
    # Nobody but the organizer mailed anything.
    assert sent(ews, BOB) == []
    assert sent(ews, CAROL) == []


def test_a_meeting_without_attendees_sends_nothing_even_when_asked(ews: RunningExchangeEmulator) -> None:
    organize(ews, SEND_TO_ALL_AND_SAVE_COPY, required=())
    assert sent(ews) == []


# --------------------------------------------------------------------------- updates

SUBJECT_ONLY = {"subject": "Budget review (moved)"}
ATTENDEES_ONLY = {"required_attendees": (BOB, DAVE)}  # Carol out, Dave in
BOTH = {**SUBJECT_ONLY, **ATTENDEES_ONLY}


@pytest.mark.parametrize(
    ("mode", "changes", "expected"),
    [
        (SEND_TO_NONE, BOTH, []),
        (SEND_ONLY_TO_ALL, SUBJECT_ONLY, [("update", BOB), ("update", CAROL)]),
        (SEND_TO_ALL_AND_SAVE_COPY, SUBJECT_ONLY, [("update", BOB), ("update", CAROL)]),
        (SEND_TO_ALL_AND_SAVE_COPY, ATTENDEES_ONLY, [("cancellation", CAROL), ("invitation", DAVE)]),
        (
            SEND_TO_ALL_AND_SAVE_COPY,
            BOTH,
            [("cancellation", CAROL), ("invitation", DAVE), ("update", BOB)],
        ),
        (SEND_ONLY_TO_CHANGED, SUBJECT_ONLY, []),
        (SEND_ONLY_TO_CHANGED, BOTH, [("cancellation", CAROL), ("invitation", DAVE)]),
        (SEND_TO_CHANGED_AND_SAVE_COPY, BOTH, [("cancellation", CAROL), ("invitation", DAVE)]),
    ],
)
def test_an_update_mails_what_its_flag_says(
    ews: RunningExchangeEmulator, mode: str, changes: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    meeting = organize(ews)
    already = len(sent(ews))
    bobs_before = copy_in(ews, BOB, meeting.uid)
    account, _ = connected(ews)
    update_fields = []
    if "subject" in changes:
        meeting.subject = changes["subject"]
        update_fields.append("subject")
    if "required_attendees" in changes:
        meeting.required_attendees = attendees(*changes["required_attendees"])
        update_fields.append("required_attendees")
    meeting.account = account
    meeting.save(update_fields=update_fields, send_meeting_invitations=mode)

    assert sorted((kind, to) for kind, to, _ in sent(ews)[already:]) == expected
    assert {uid for _, _, uid in sent(ews)} == {meeting.uid}
    bobs_after = copy_in(ews, BOB, meeting.uid)
    if ("update", BOB) in expected:
        assert bobs_after.subject == "Budget review (moved)"
        assert bobs_after.changekey != bobs_before.changekey
    else:  # no message, no change: Exchange leaves the copies as they were
        assert (bobs_after.subject, bobs_after.changekey) == (bobs_before.subject, bobs_before.changekey)
    carols = copy_in(ews, CAROL, meeting.uid)
    assert carols.is_cancelled is (("cancellation", CAROL) in expected)
    daves = copy_in(ews, DAVE, meeting.uid)
    if ("invitation", DAVE) in expected:
        assert daves.uid == meeting.uid
        assert daves.my_response_type == "NoResponseReceived"
    else:
        assert daves is None


def test_a_sent_update_shows_in_the_attendees_sync_folder_items(ews: RunningExchangeEmulator) -> None:
    meeting = organize(ews)
    bob, bobs_folder = connected(ews, BOB)
    [(_, copy_id)], state = sync(bob, bobs_folder, None)
    account, _ = connected(ews)
    meeting.account = account
    meeting.location = "Room 4"
    meeting.save(update_fields=["location"], send_meeting_invitations=SEND_TO_NONE)
    assert sync(bob, bobs_folder, state)[0] == []
    meeting = read(account, meeting.id)
    meeting.account = account
    meeting.subject = "Budget review, round two"
    meeting.save(update_fields=["subject"], send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY)
    assert sync(bob, bobs_folder, state)[0] == [("update", copy_id)]
    # The update carries the meeting as it is now, the location saved earlier too.
    copy = read(bob, copy_id)
    assert (copy.subject, copy.location) == ("Budget review, round two", "Room 4")


# --------------------------------------------------------------------------- cancellations


@pytest.mark.parametrize("mode", [SEND_TO_NONE, *SENDING_MODES])
def test_deleting_a_meeting_cancels_it_for_the_attendees_only_when_sent(
    ews: RunningExchangeEmulator, mode: str
) -> None:
    meeting = organize(ews)
    bob, bobs_folder = connected(ews, BOB)
    [(_, copy_id)], state = sync(bob, bobs_folder, None)
    account, _ = connected(ews)
    meeting.account = account
    meeting.move_to_trash(send_meeting_cancellations=mode)

    cancellations = sorted(message for message in sent(ews) if message[0] == "cancellation")
    if mode == SEND_TO_NONE:
        assert cancellations == []
        assert read(bob, copy_id).is_cancelled is False
        assert sync(bob, bobs_folder, state)[0] == []
        return
    assert cancellations == [("cancellation", BOB, meeting.uid), ("cancellation", CAROL, meeting.uid)]
    # The copy stays (cancelled) until its owner removes it; the change shows in their sync.
    copy = read(bob, copy_id)
    assert copy.is_cancelled is True
    assert sync(bob, bobs_folder, state)[0] == [("update", copy_id)]
    assert copy_in(ews, CAROL, meeting.uid).is_cancelled is True


# --------------------------------------------------------------------------- answers


@pytest.mark.parametrize(("answer", "response"), [("accept", "Accept"), ("tentatively_accept", "Tentative")])
def test_an_answer_reaches_the_organizers_item_and_its_sync(
    ews: RunningExchangeEmulator, answer: str, response: str
) -> None:
    meeting = organize(ews)
    account, folder = connected(ews)
    _, state = sync(account, folder, None)
    copy = copy_in(ews, BOB, meeting.uid)
    getattr(copy, answer)()  # CreateItem with the response object, MessageDisposition SendAndSaveCopy

    answered = copy_in(ews, BOB, meeting.uid)
    assert answered.id == copy.id
    assert answered.my_response_type == response
    assert answered.changekey != copy.changekey
    organizers = read(account, meeting.id)
    assert response_of(organizers, BOB) == response
    assert response_of(organizers, CAROL) == "Unknown"
    assert organizers.changekey != meeting.changekey
    assert organizers.last_modified_time > meeting.last_modified_time
    assert sync(account, folder, state)[0] == [("update", meeting.id)]
    # An answer is not an invitation, an update or a cancellation.
    assert sent(ews, BOB) == []


def test_an_answer_sent_without_a_saved_copy_reaches_the_organizer_too(ews: RunningExchangeEmulator) -> None:
    meeting = organize(ews)
    copy_in(ews, CAROL, meeting.uid).accept(message_disposition=SEND_ONLY)
    account, _ = connected(ews)
    assert response_of(read(account, meeting.id), CAROL) == "Accept"


def test_declining_removes_the_copy_from_the_calendar(ews: RunningExchangeEmulator) -> None:
    meeting = organize(ews)
    bob, bobs_folder = connected(ews, BOB)
    [(_, copy_id)], state = sync(bob, bobs_folder, None)
    read(bob, copy_id).decline()

    assert isinstance(read(bob, copy_id), ErrorItemNotFound)
    assert sync(bob, bobs_folder, state)[0] == [("delete", copy_id)]
    assert ews.emulator.user_find_by_uid(BOB, meeting.uid) is None
    trashed = [e for e in ews.emulator.user_list_events(BOB, include_deleted=True) if e["uid"] == meeting.uid]
    assert [(e["folder"], e["my_response"]) for e in trashed] == [("deleteditems", "Decline")]
    account, _ = connected(ews)
    assert response_of(read(account, meeting.id), BOB) == "Decline"


def test_a_saved_but_unsent_answer_does_not_reach_the_organizer(ews: RunningExchangeEmulator) -> None:
    meeting = organize(ews)
    copy = copy_in(ews, BOB, meeting.uid)
    body = f"""<m:CreateItem MessageDisposition="SaveOnly"><m:Items>
      <t:AcceptItem><t:ReferenceItemId Id="{copy.id}" ChangeKey="{copy.changekey}"/></t:AcceptItem>
    </m:Items></m:CreateItem>"""
    assert "NoError" in soap(ews, body, BOB)
    assert copy_in(ews, BOB, meeting.uid).my_response_type == "Accept"
    account, _ = connected(ews)
    assert response_of(read(account, meeting.id), BOB) == "Unknown"


def test_the_organizer_cannot_answer_their_own_meeting(ews: RunningExchangeEmulator) -> None:
    meeting = organize(ews)
    account, _ = connected(ews)
    meeting.account = account
    with pytest.raises(ErrorCalendarIsOrganizerForAccept):
        meeting.accept()


def test_a_cancelled_meeting_cannot_be_accepted(ews: RunningExchangeEmulator) -> None:
    meeting = organize(ews)
    account, _ = connected(ews)
    meeting.account = account
    meeting.move_to_trash(send_meeting_cancellations=SEND_TO_ALL_AND_SAVE_COPY)
    with pytest.raises(ErrorCalendarIsCancelledForAccept):
        copy_in(ews, BOB, meeting.uid).accept()


# --------------------------------------------------------------------------- the wire


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (
            f"""<m:CreateItem MessageDisposition="SaveOnly"><m:Items><t:CalendarItem>
            <t:Subject>x</t:Subject><t:Start>{START:%Y-%m-%dT%H:%M:%SZ}</t:Start>
            <t:End>{END:%Y-%m-%dT%H:%M:%SZ}</t:End></t:CalendarItem></m:Items></m:CreateItem>""",
            "ErrorSendMeetingInvitationsRequired",
        ),
        (
            """<m:CreateItem><m:Items><t:AcceptItem><t:ReferenceItemId Id="{copy}"/></t:AcceptItem>
            </m:Items></m:CreateItem>""",
            "ErrorMessageDispositionRequired",
        ),
        (
            """<m:UpdateItem ConflictResolution="AlwaysOverwrite"><m:ItemChanges><t:ItemChange>
            <t:ItemId Id="{meeting}"/><t:Updates><t:SetItemField><t:FieldURI FieldURI="item:Subject"/>
            <t:CalendarItem><t:Subject>y</t:Subject></t:CalendarItem></t:SetItemField></t:Updates>
            </t:ItemChange></m:ItemChanges></m:UpdateItem>""",
            "ErrorSendMeetingInvitationsOrCancellationsRequired",
        ),
        (
            """<m:DeleteItem DeleteType="MoveToDeletedItems"><m:ItemIds><t:ItemId Id="{meeting}"/>
            </m:ItemIds></m:DeleteItem>""",
            "ErrorSendMeetingCancellationsRequired",
        ),
    ],
)
def test_calendar_requests_without_their_send_attribute_are_refused(
    ews: RunningExchangeEmulator, body: str, code: str
) -> None:
    meeting = organize(ews)
    copy = summary(ews, BOB, uid=meeting.uid)
    email = BOB if "AcceptItem" in body else ERIN
    answer = soap(ews, body.replace("{copy}", copy["id"]).replace("{meeting}", meeting.id), email)
    assert f"<m:ResponseCode>{code}</m:ResponseCode>" in answer
    assert len(sent(ews)) == 2  # the invitations of organize(), nothing more
    assert summary(ews, ERIN, item_id=meeting.id)["subject"] == "Budget review"


def test_organizer_and_answers_are_on_the_wire(ews: RunningExchangeEmulator) -> None:
    meeting = organize(ews)
    copy = summary(ews, BOB, uid=meeting.uid)
    body = f"""<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties>
      <t:FieldURI FieldURI="calendar:UID"/><t:FieldURI FieldURI="calendar:IsCancelled"/>
      <t:FieldURI FieldURI="calendar:MyResponseType"/><t:FieldURI FieldURI="calendar:Organizer"/>
      </t:AdditionalProperties></m:ItemShape><m:ItemIds><t:ItemId Id="{copy["id"]}"/></m:ItemIds></m:GetItem>"""
    answer = soap(ews, body, BOB)
    assert f"<t:UID>{meeting.uid}</t:UID>" in answer
    assert "<t:IsCancelled>false</t:IsCancelled>" in answer
    assert "<t:MyResponseType>NoResponseReceived</t:MyResponseType>" in answer
    assert f"<t:Organizer><t:Mailbox><t:Name>{ERIN}</t:Name><t:EmailAddress>{ERIN}</t:EmailAddress>" in answer


# --------------------------------------------------------------------------- the Python API


def test_the_outlook_user_organizes_updates_and_cancels_meetings(ews: RunningExchangeEmulator) -> None:
    made = ews.emulator.user_create_meeting(
        ERIN, {"subject": "Kick-off", "start": START, "end": END, "attendees": [BOB, OUTSIDER]}
    )
    uid = made["uid"]
    assert sent(ews) == [("invitation", BOB, uid), ("invitation", OUTSIDER, uid)]
    bobs = summary(ews, BOB, uid=uid)
    assert (bobs["organizer"], bobs["is_organizer"], bobs["my_response"]) == (
        ERIN,
        False,
        "NoResponseReceived",
    )
    ews.emulator.user_respond(BOB, bobs["id"], "Tentative")
    assert summary(ews, ERIN, item_id=made["id"])["attendees"][0]["response"] == "Tentative"
    ews.emulator.user_send_meeting_update(ERIN, made["id"], {"subject": "Kick-off (new room)"})
    assert sent(ews)[2:] == [("update", BOB, uid), ("update", OUTSIDER, uid)]
    assert summary(ews, BOB, uid=uid)["subject"] == "Kick-off (new room)"
    ews.emulator.user_cancel_meeting(ERIN, made["id"])
    assert sent(ews)[4:] == [("cancellation", BOB, uid), ("cancellation", OUTSIDER, uid)]
    assert summary(ews, BOB, uid=uid)["is_cancelled"] is True


def test_an_invitation_from_outside_lands_and_is_answered(ews: RunningExchangeEmulator) -> None:
    uid = "040000008200E00074C5B7101A82E00800000000outside-1"
    copy = ews.emulator.user_receive_invitation(
        BOB,
        uid,
        organizer=OUTSIDER,
        fields={"subject": "Vendor call", "start": START, "end": END, "attendees": [OUTSIDER, BOB]},
    )
    account, _ = connected(ews, BOB)
    item = read(account, copy["id"])
    assert (item.uid, item.organizer.email_address, item.my_response_type) == (
        uid,
        OUTSIDER,
        "NoResponseReceived",
    )
    item.decline()
    assert ews.emulator.user_find_by_uid(BOB, uid) is None
    assert sent(ews, BOB) == []
