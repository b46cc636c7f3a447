"""The emulated Outlook user's meetings: organize and send, receive an outside invitation, answer.

A mixin of ``ExchangeEmulator`` (tests and the control API drive it): each method does what the
EWS requests of ``exchange_meetings`` do on the wire, through the same delivery code, so a meeting
organized here reaches the attendees' mailboxes exactly as one an EWS client sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from calendarsync.emulators.exchange_meetings import (
    MeetingSnapshot,
    apply_response,
    find_meeting,
    send_cancellations,
    send_invitations,
    send_updates,
)
from calendarsync.emulators.exchange_state import CALENDAR, ExchangeState, Mailbox, StoredItem, validate_item
from calendarsync.emulators.exchange_user import describe, item_data

# What the user can answer (MyResponseType values).
ANSWERS = ("Accept", "Tentative", "Decline")


def _calendar_item(mailbox: Mailbox, item_id: str) -> StoredItem:
    for folder in mailbox.folders.values():
        if folder.is_calendar and item_id in folder.items:
            return folder.items[item_id]
    raise KeyError(f"no event {item_id!r} in the calendars of {mailbox.email}")


class MeetingControls:
    """The meeting side of the emulated Outlook user (mixed into ``ExchangeEmulator``)."""

    state: ExchangeState

    def user_create_meeting(self, email: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Organize a meeting and press Send (SendToAllAndSaveCopy): every attendee is invited, and
        those with a mailbox here get a copy. Fields as ``user_create_event`` (``attendees``)."""
        with self.state.lock:
            mailbox = self.state.mailbox(email)
            item = self.state.create_item(mailbox.folder(CALENDAR), item_data(fields))
            send_invitations(self.state, mailbox, item)
            return describe(item)

    def user_send_meeting_update(
        self, email: str, item_id: str, changes: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Change a meeting one organizes and send the update to everyone (SendToAllAndSaveCopy)."""
        with self.state.lock:
            mailbox = self.state.mailbox(email)
            item = _calendar_item(mailbox, item_id)
            before = MeetingSnapshot.of(item)
            data = item_data(changes, base=item.data)
            validate_item(data)
            item.data = data
            self.state.touch(item)
            send_updates(self.state, mailbox, item, before, "SendToAllAndSaveCopy")
            return describe(item)

    def user_cancel_meeting(self, email: str, item_id: str) -> None:
        """Cancel a meeting one organizes: a cancellation to every attendee; it goes to Deleted Items."""
        with self.state.lock:
            mailbox = self.state.mailbox(email)
            item = _calendar_item(mailbox, item_id)
            if not item.is_copy:
                send_cancellations(self.state, mailbox, item)
            self.state.remove_item(mailbox, item, hard=False)

    def user_receive_invitation(
        self, email: str, uid: str, *, organizer: str, fields: Mapping[str, Any]
    ) -> dict[str, Any]:
        """An invitation from an organizer elsewhere lands in the calendar: a copy with that UID,
        naming the organizer, not answered yet (a second one with the UID updates the copy)."""
        with self.state.lock:
            mailbox = self.state.mailbox(email)
            data = item_data(fields)
            item = find_meeting(mailbox, uid, is_copy=True)
            if item is None:
                item = self.state.create_item(mailbox.folder(CALENDAR), data, uid)
                item.my_response = "NoResponseReceived"
            else:
                data.extended = item.data.extended
                item.data = data
                item.is_cancelled = False
                self.state.touch(item)
            item.organizer = organizer.strip().lower()
            return describe(item)

    def user_respond(self, email: str, item_id: str, response: str, *, send: bool = True) -> None:
        """Answer an invitation ("Accept", "Tentative" or "Decline") on one's copy, and send the
        answer (unless ``send`` is False): the organizer's item here shows it. A declined copy
        goes to Deleted Items."""
        if response not in ANSWERS:
            raise ValueError(f"response must be one of {ANSWERS}")
        with self.state.lock:
            mailbox = self.state.mailbox(email)
            item = _calendar_item(mailbox, item_id)
            if not item.is_copy:
                raise ValueError("the organizer does not answer their own meeting")
            apply_response(self.state, mailbox, item, response, send=send)

    def user_find_by_uid(self, email: str, uid: str) -> dict[str, Any] | None:
        """The calendar item with that iCalendar UID (one's own meeting or a copy), cancelled or not."""
        with self.state.lock:
            item = find_meeting(self.state.mailbox(email), uid, is_copy=None)
            return None if item is None else describe(item)

    def meeting_messages(self, email: str) -> list[tuple[str, str, str]]:
        """What the mailbox mailed about its meetings, oldest first: (kind, recipient, UID), kind
        "invitation", "update" or "cancellation"."""
        with self.state.lock:
            return list(self.state.mailbox(email).meeting_messages)
