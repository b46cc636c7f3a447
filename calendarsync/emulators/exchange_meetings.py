"""Meetings in the Exchange emulator: invitations, updates and cancellations between mailboxes, and RSVPs.

Exchange mails a meeting's attendees only when the request asks it to (``SendMeetingInvitations``
of CreateItem, ``SendMeetingInvitationsOrCancellations`` of UpdateItem, ``SendMeetingCancellations``
of DeleteItem); with ``SendToNone`` nothing is sent, "the meeting is not created in each
attendee's Calendar folder", and the attendees' copies stay as they were:
https://learn.microsoft.com/en-us/openspecs/exchange_server_protocols/ms-oxwsmtgs/9823e144-2f70-4e64-9b3a-b72e08628583
https://learn.microsoft.com/en-us/openspecs/exchange_server_protocols/ms-oxwsmtgs/89b9cac4-f7a8-45b2-99a7-886334cdb419

Each message sent is recorded in the sender's ``Mailbox.meeting_messages``. A message to another
mailbox of the emulator lands in its calendar: an invitation or update makes or refreshes the
copy (same UID, the organizer named, MyResponseType NoResponseReceived), a cancellation marks the
copy IsCancelled. Answers are CreateItem with AcceptItem / TentativelyAcceptItem / DeclineItem:
https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/createitem-operation-meeting-request
Callers hold ``ExchangeState.lock``.
"""

from __future__ import annotations

import copy
import dataclasses
from xml.etree.ElementTree import Element

from calendarsync.emulators.exchange_state import (
    CALENDAR,
    ExchangeState,
    ItemData,
    Mailbox,
    StoredItem,
    parse_occurrence_id,
)
from calendarsync.emulators.exchange_xml import EwsError, SoapError, t

INVITATION, UPDATE, CANCELLATION = "invitation", "update", "cancellation"
SEND_TO_NONE = "SendToNone"
# CalendarItemCreateOrDeleteOperationType (CreateItem, DeleteItem).
CREATE_OR_DELETE_MODES = ("SendToNone", "SendOnlyToAll", "SendToAllAndSaveCopy")
# CalendarItemUpdateOperationType (UpdateItem): the "Changed" ones mail only added and removed attendees.
UPDATE_MODES = (*CREATE_OR_DELETE_MODES, "SendOnlyToChanged", "SendToChangedAndSaveCopy")
TO_CHANGED_ONLY = ("SendOnlyToChanged", "SendToChangedAndSaveCopy")
MESSAGE_DISPOSITIONS = ("SaveOnly", "SendOnly", "SendAndSaveCopy")
# Response object element -> the MyResponseType it gives, and the verb Exchange's error codes use.
RESPONSE_OBJECTS = {
    "AcceptItem": ("Accept", "Accept"),
    "TentativelyAcceptItem": ("Tentative", "Tentative"),
    "DeclineItem": ("Decline", "Decline"),
}
RESPONSE_TAGS = frozenset(t(name) for name in RESPONSE_OBJECTS)
REQUIRED_MESSAGES = {
    "SendMeetingInvitations": (
        "ErrorSendMeetingInvitationsRequired",
        "SendMeetingInvitations attribute is required for calendar items.",
    ),
    "SendMeetingInvitationsOrCancellations": (
        "ErrorSendMeetingInvitationsOrCancellationsRequired",
        "SendMeetingInvitationsOrCancellations attribute is required for calendar items.",
    ),
    "SendMeetingCancellations": (
        "ErrorSendMeetingCancellationsRequired",
        "SendMeetingCancellations attribute is required for calendar items.",
    ),
}


# --------------------------------------------------------------------------- request attributes


def send_mode(request: Element, attribute: str, allowed: tuple[str, ...]) -> str | None:
    """The request's send attribute (None when absent); a value outside the schema is a fault."""
    value = request.attrib.get(attribute)
    if value is not None and value not in allowed:
        raise SoapError("ErrorSchemaValidation", f"{attribute} {value!r} is not valid.")
    return value


def require_mode(mode: str | None, attribute: str) -> str:
    """Calendar items need the send attribute: Exchange answers the item with an error without it."""
    if mode is None:
        code, message = REQUIRED_MESSAGES[attribute]
        raise EwsError(code, message)
    return mode


# --------------------------------------------------------------------------- what a meeting holds


def attendee_emails(data: ItemData) -> list[str]:
    """Required and optional attendees' addresses, lower case, each once, in order."""
    return list(dict.fromkeys(attendee.email.strip().lower() for attendee in data.attendees))


@dataclasses.dataclass(frozen=True)
class MeetingSnapshot:
    """A meeting before a change: who was invited and what they were told (not their answers)."""

    attendees: tuple[str, ...]
    content: object

    @classmethod
    def of(cls, item: StoredItem) -> MeetingSnapshot:
        told = dataclasses.replace(item.data, attendees=[], extended={})
        content = (told, copy.deepcopy(item.exceptions), frozenset(item.deleted_occurrences))
        return cls(tuple(attendee_emails(item.data)), copy.deepcopy(content))


def sends_from(mailbox: Mailbox, item: StoredItem) -> bool:
    """Only the organizer's item in a calendar mails the attendees."""
    folder = mailbox.folder(item.folder)
    return folder.is_calendar and not item.is_copy


def find_meeting(mailbox: Mailbox, uid: str, *, is_copy: bool | None) -> StoredItem | None:
    """The mailbox's calendar item with that UID: its copy of someone else's meeting (``is_copy``),
    its own meeting (``is_copy=False``) or either (None)."""
    for folder in mailbox.folders.values():
        if not folder.is_calendar:
            continue
        for item in folder.items.values():
            if item.uid == uid and is_copy in (None, item.is_copy):
                return item
    return None


# --------------------------------------------------------------------------- delivery


def _copy_content(state: ExchangeState, target: StoredItem, meeting: StoredItem) -> None:
    """The copy shows what the organizer sent; what is the attendee's own stays (free/busy, tags)."""
    data = copy.deepcopy(meeting.data)
    data.extended = dict(target.data.extended)
    data.free_busy = target.data.free_busy
    target.data = data
    target.exceptions = copy.deepcopy(meeting.exceptions)
    target.deleted_occurrences = set(meeting.deleted_occurrences)
    state.touch(target)


def _new_copy(state: ExchangeState, recipient: Mailbox, meeting: StoredItem, organizer: str) -> StoredItem:
    data = copy.deepcopy(meeting.data)
    data.extended = {}  # the organizer's private properties are not sent
    item = state.create_item(recipient.folder(CALENDAR), data, meeting.uid)
    item.organizer = organizer
    item.my_response = "NoResponseReceived"
    item.exceptions = copy.deepcopy(meeting.exceptions)
    item.deleted_occurrences = set(meeting.deleted_occurrences)
    return item


def deliver(state: ExchangeState, sender: Mailbox, meeting: StoredItem, kind: str, recipient: str) -> None:
    """Mail one meeting message; a recipient with a mailbox here finds it in their calendar."""
    sender.meeting_messages.append((kind, recipient, meeting.uid))
    mailbox = state.mailboxes.get(recipient)
    if mailbox is None or mailbox is sender:
        return
    found = find_meeting(mailbox, meeting.uid, is_copy=True)
    if kind == CANCELLATION:
        if found is not None and not found.is_cancelled:
            found.is_cancelled = True
            state.touch(found)
        return
    if found is None:
        _new_copy(state, mailbox, meeting, sender.email)
        return
    if found.is_cancelled:  # invited again after a cancellation: the meeting is back on
        found.is_cancelled = False
        found.my_response = "NoResponseReceived"
    _copy_content(state, found, meeting)


def _recipients(sender: Mailbox, emails: list[str] | tuple[str, ...]) -> list[str]:
    return [email for email in emails if email != sender.email]


def send_invitations(state: ExchangeState, sender: Mailbox, meeting: StoredItem) -> None:
    """After a CreateItem that asked to send: an invitation to every attendee."""
    for email in _recipients(sender, attendee_emails(meeting.data)):
        deliver(state, sender, meeting, INVITATION, email)


def send_updates(
    state: ExchangeState, sender: Mailbox, meeting: StoredItem, before: MeetingSnapshot, mode: str
) -> None:
    """After an UpdateItem that asked to send: invitations to added attendees, cancellations to
    removed ones and, unless only the changed attendees are mailed, an update to the others when
    what they were told changed."""
    now = attendee_emails(meeting.data)
    added = [email for email in now if email not in before.attendees]
    removed = [email for email in before.attendees if email not in now]
    for email in _recipients(sender, added):
        deliver(state, sender, meeting, INVITATION, email)
    for email in _recipients(sender, removed):
        deliver(state, sender, meeting, CANCELLATION, email)
    if mode in TO_CHANGED_ONLY or MeetingSnapshot.of(meeting).content == before.content:
        return
    for email in _recipients(sender, [email for email in now if email in before.attendees]):
        deliver(state, sender, meeting, UPDATE, email)


def send_cancellations(state: ExchangeState, sender: Mailbox, meeting: StoredItem) -> None:
    """After a DeleteItem that asked to send: a cancellation to every attendee."""
    for email in _recipients(sender, attendee_emails(meeting.data)):
        deliver(state, sender, meeting, CANCELLATION, email)


def send_occurrence_cancellations(state: ExchangeState, sender: Mailbox, meeting: StoredItem) -> None:
    """One occurrence deleted: the attendees are told, and their copies lose that occurrence."""
    for email in _recipients(sender, attendee_emails(meeting.data)):
        sender.meeting_messages.append((CANCELLATION, email, meeting.uid))
        mailbox = state.mailboxes.get(email)
        found = find_meeting(mailbox, meeting.uid, is_copy=True) if mailbox is not None else None
        if found is not None:
            _copy_content(state, found, meeting)


# --------------------------------------------------------------------------- answers


def _answered_item(mailbox: Mailbox, elem: Element) -> StoredItem:
    reference = elem.find(t("ReferenceItemId"))
    item_id = reference.attrib.get("Id", "") if reference is not None else ""
    if not item_id:
        raise EwsError("ErrorInvalidIdEmpty", "The item id is empty.")
    item = mailbox.find_item(item_id)
    occurrence = parse_occurrence_id(item_id) if item is None else None
    if occurrence is not None:  # an answer to one occurrence answers the series here
        item = mailbox.find_item(occurrence[0])
    if item is None or not mailbox.folder(item.folder).is_calendar:
        raise EwsError("ErrorItemNotFound", "The specified object was not found in the store.")
    return item


def respond(state: ExchangeState, mailbox: Mailbox, elem: Element, disposition: str | None) -> None:
    """A response object of CreateItem: the copy takes the answer; unless only saved (SaveOnly),
    the organizer's item (in a mailbox here) shows it. A declined copy goes to Deleted Items."""
    response, verb = RESPONSE_OBJECTS[elem.tag.rpartition("}")[2]]
    if disposition is None:
        raise EwsError("ErrorMessageDispositionRequired", "MessageDisposition is required for this item.")
    if disposition not in MESSAGE_DISPOSITIONS:
        raise SoapError("ErrorSchemaValidation", f"MessageDisposition {disposition!r} is not valid.")
    item = _answered_item(mailbox, elem)
    if not item.is_copy:
        raise EwsError(f"ErrorCalendarIsOrganizerFor{verb}", "The organizer cannot respond to a meeting.")
    if item.is_cancelled:
        raise EwsError(f"ErrorCalendarIsCancelledFor{verb}", "The meeting has been cancelled.")
    apply_response(state, mailbox, item, response, send=disposition != "SaveOnly")


def apply_response(
    state: ExchangeState, mailbox: Mailbox, item: StoredItem, response: str, *, send: bool
) -> None:
    item.my_response = response
    if response == "Decline":
        state.remove_item(mailbox, item, hard=False)
    else:
        state.touch(item)
    organizer = state.mailboxes.get(item.organizer) if send else None
    meeting = find_meeting(organizer, item.uid, is_copy=False) if organizer is not None else None
    if meeting is None:
        return
    answered = False
    attendees = []
    for attendee in meeting.data.attendees:
        if attendee.email.strip().lower() == mailbox.email:
            attendee = dataclasses.replace(attendee, response=response)
            answered = True
        attendees.append(attendee)
    if answered:
        meeting.data.attendees = attendees
        state.touch(meeting)
