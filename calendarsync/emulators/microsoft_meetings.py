"""Meetings between the emulated mailboxes: invitations, updates, cancellations, copies, RSVPs, Teams.

What Exchange Online does, as Graph documents it:

- Graph has no switch that keeps mail from attendees. Creating an event with attendees sends each
  of them an invitation (https://learn.microsoft.com/en-us/graph/api/user-post-events). Updating a
  meeting the mailbox organizes sends invitations to added attendees and cancellations to removed
  ones; "an event update that includes only the attendees property in the request body sends a
  meeting update to only the attendees that have changed", otherwise the others get an update too
  (https://learn.microsoft.com/en-us/graph/api/event-update). Deleting a meeting on the
  organizer's calendar sends every attendee a cancellation
  (https://learn.microsoft.com/en-us/graph/api/event-delete).
- An invitation to a mailbox puts the meeting in its calendar: another event id, the same
  ``iCalUId``, ``isOrganizer`` false, ``organizer`` the organizer, ``responseStatus``
  "notResponded" (https://learn.microsoft.com/en-us/graph/api/resources/event). Updates change
  that copy; a cancellation leaves it in the calendar with ``isCancelled`` true (and Outlook's
  "Canceled: " before the subject) until its owner removes it.
- ``accept`` / ``tentativelyAccept`` / ``decline`` answer on the attendee's copy; with
  ``sendResponse`` (default true) the organizer's event shows the answer in that attendee's
  ``status`` (https://learn.microsoft.com/en-us/graph/api/event-accept). Outlook moves a declined
  meeting to Deleted Items: it leaves the calendar.
- ``isOnlineMeeting`` with ``onlineMeetingProvider`` "teamsForBusiness" (the calendars' only
  allowed provider) makes a Teams meeting with ``onlineMeeting.joinUrl``; "after you set
  isOnlineMeeting to true ... Outlook ignores any further changes to isOnlineMeeting"
  (https://learn.microsoft.com/en-us/graph/outlook-calendar-online-meetings). A provider the
  calendar does not allow makes no online meeting.

The emulator's own choices where the documentation says nothing: an update is sent when one of
``MEETING_PROPERTIES`` changed value; updates and cancellations reach only copies still in the
calendar (a declined or removed copy stays gone); changing or cancelling one occurrence of a
series sends an "update" or a "cancellation" to every attendee and their copies follow the series;
responses are to a whole meeting only; the attendee's copy is shown "tentative" until accepted
(Outlook's default for new requests) and a time change keeps the responses given.

Callers hold ``MicrosoftState.lock``.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from calendarsync.emulators.google_http import JsonDict
from calendarsync.emulators.microsoft_state import (
    TENANT_ID,
    Calendar,
    GraphError,
    MicrosoftState,
    MicrosoftUser,
    OccurrenceChange,
    SentMail,
    StoredEvent,
    format_graph_timestamp,
    new_event_id,
    now,
    user_oid,
)

INVITATION, UPDATE, CANCELLATION = "invitation", "update", "cancellation"
NOT_RESPONDED = "notResponded"
# The RSVP actions (POST /me/events/{id}/{action}) and the response each one records.
RSVP_ACTIONS = {"accept": "accepted", "tentativelyAccept": "tentativelyAccepted", "decline": "declined"}
# A change of one of these sends the attendees an update (compared by value).
MEETING_PROPERTIES = (
    "subject",
    "body",
    "start",
    "end",
    "isAllDay",
    "location",
    "recurrence",
    "sensitivity",
    "importance",
    "isOnlineMeeting",
)
# What an attendee's copy takes from the organizer's event.
COPIED_PROPERTIES = (*MEETING_PROPERTIES, "attendees", "onlineMeetingProvider")
ONLINE_MEETING_PROVIDERS = ("unknown", "teamsForBusiness", "skypeForBusiness", "skypeForConsumer")
# GET /me/calendars shows these as allowedOnlineMeetingProviders and defaultOnlineMeetingProvider.
ALLOWED_ONLINE_MEETING_PROVIDERS = ("teamsForBusiness",)
DEFAULT_ONLINE_MEETING_PROVIDER = "teamsForBusiness"
CANCELED_PREFIX = "Canceled: "
NO_TIME = "0001-01-01T00:00:00Z"


def _bad_value(value: object, type_name: str) -> GraphError:
    return GraphError(
        400,
        "RequestBodyRead",
        f"Cannot convert the literal '{value}' to the expected type 'microsoft.graph.{type_name}'.",
    )


# -- Teams -------------------------------------------------------------------------------------


def clean_online_meeting(body: JsonDict, fields: JsonDict) -> None:
    """``isOnlineMeeting`` / ``onlineMeetingProvider`` of a create or PATCH, into the stored fields."""
    provider = body.get("onlineMeetingProvider")
    if provider is not None and provider not in ONLINE_MEETING_PROVIDERS:
        raise _bad_value(provider, "onlineMeetingProviderType")
    wanted = body.get("isOnlineMeeting")
    if wanted is not None and not isinstance(wanted, bool):
        raise _bad_value(wanted, "Boolean")
    if fields.get("isOnlineMeeting") or not wanted:
        return  # once online, Outlook ignores further changes to isOnlineMeeting
    chosen = DEFAULT_ONLINE_MEETING_PROVIDER if provider in (None, "unknown") else provider
    if chosen in ALLOWED_ONLINE_MEETING_PROVIDERS:
        fields["isOnlineMeeting"], fields["onlineMeetingProvider"] = True, chosen


def teams_join_url(ical_uid: str, organizer: str) -> str:
    """The meeting's Teams link: the same for every copy of the meeting, and on every call."""
    digest = base64.b32encode(hashlib.sha256(ical_uid.encode()).digest()).decode().rstrip("=")
    thread = urllib.parse.quote(f"19:meeting_{digest[:48]}@thread.v2", safe="").lower()
    context = json.dumps({"Tid": TENANT_ID, "Oid": user_oid(organizer)}, separators=(",", ":"))
    return f"https://teams.microsoft.com/l/meetup-join/{thread}/0?context={urllib.parse.quote(context)}"


def _start_online_meeting(calendar: Calendar, stored: StoredEvent) -> None:
    if stored.fields.get("isOnlineMeeting") and stored.join_url is None:
        stored.join_url = teams_join_url(stored.ical_uid, stored.organizer_address or calendar.owner)


def online_meeting(stored: StoredEvent) -> JsonDict | None:
    """The event's ``onlineMeeting`` (onlineMeetingInfo), or None."""
    return {"joinUrl": stored.join_url} if stored.join_url else None


# -- what the event resource shows ---------------------------------------------------------------


def organizer_of(calendar: Calendar, stored: StoredEvent) -> JsonDict:
    """The ``organizer`` recipient: the organizer of a copy, else the calendar's owner."""
    if stored.organizer_address is not None:
        return {"emailAddress": {"name": stored.organizer_name, "address": stored.organizer_address}}
    return {"emailAddress": {"name": calendar.owner, "address": calendar.owner}}


def response_status(stored: StoredEvent) -> JsonDict:
    moment = stored.response_time
    return {"response": stored.response, "time": format_graph_timestamp(moment) if moment else NO_TIME}


# -- sending -------------------------------------------------------------------------------------


def _recipients(owner: str, fields: JsonDict) -> dict[str, str]:
    """The meeting's attendees other than the organizer: lower-case address -> address as written."""
    found: dict[str, str] = {}
    for attendee in fields.get("attendees") or []:
        address = str(attendee["emailAddress"]["address"])
        if address.lower() != owner:
            found.setdefault(address.lower(), address)
    return found


Delivery = Callable[[MicrosoftState, StoredEvent, "Recipient"], None]


@dataclass(frozen=True)
class Recipient:
    """A recipient with a mailbox here, their copy of the meeting (if any) and who organizes it."""

    user: MicrosoftUser
    found: StoredEvent | None
    organizer: tuple[str, str]  # address, display name


def _send(
    state: MicrosoftState,
    calendar: Calendar,
    stored: StoredEvent,
    kind: str,
    recipients: list[str],
    deliver: Delivery | None = None,
) -> None:
    """Mail ``kind`` to each recipient; a recipient with a mailbox here gets it in their calendar."""
    sent = state.sent_mail.setdefault(calendar.owner, [])
    handle = deliver or _DELIVERY[kind]
    owner = state.users.get(calendar.owner)
    organizer = (calendar.owner, owner.display_name if owner is not None else calendar.owner)
    for address in recipients:
        sent.append(SentMail(kind, address, stored.ical_uid))
        user = state.users.get(address.lower())
        if user is not None and user.email != calendar.owner:
            found = find_copy(user, stored.ical_uid)
            handle(state, stored, Recipient(user, found, organizer))


def after_create(state: MicrosoftState, calendar: Calendar, stored: StoredEvent) -> None:
    """A new event: a Teams link if asked for, and invitations to its attendees."""
    _start_online_meeting(calendar, stored)
    _send(state, calendar, stored, INVITATION, list(_recipients(calendar.owner, stored.fields).values()))


def after_update(state: MicrosoftState, calendar: Calendar, stored: StoredEvent, before: JsonDict) -> None:
    """An event changed (``before``: its fields before): invitations, cancellations, updates."""
    _start_online_meeting(calendar, stored)
    if stored.is_copy:
        return  # an attendee's own changes to their copy are mailed to no one
    old, new = _recipients(calendar.owner, before), _recipients(calendar.owner, stored.fields)
    _send(state, calendar, stored, CANCELLATION, [old[key] for key in old if key not in new])
    _send(state, calendar, stored, INVITATION, [new[key] for key in new if key not in old])
    if any(before.get(name) != stored.fields.get(name) for name in MEETING_PROPERTIES):
        _send(state, calendar, stored, UPDATE, [new[key] for key in new if key in old])


def after_delete(state: MicrosoftState, calendar: Calendar, stored: StoredEvent) -> None:
    """The organizer deleted the meeting: every attendee gets a cancellation."""
    if not stored.is_copy:
        _send(
            state, calendar, stored, CANCELLATION, list(_recipients(calendar.owner, stored.fields).values())
        )


def after_occurrence_change(
    state: MicrosoftState, calendar: Calendar, series: StoredEvent, kind: str
) -> None:
    """One occurrence of a series the mailbox organizes changed ("update") or was cancelled."""
    if not series.is_copy:
        recipients = list(_recipients(calendar.owner, series.fields).values())
        _send(state, calendar, series, kind, recipients, deliver=_deliver_update)


# -- the attendees' copies -------------------------------------------------------------------------


def find_copy(user: MicrosoftUser, ical_uid: str) -> StoredEvent | None:
    """The user's copy of the meeting with that UID still in one of their calendars, if any."""
    for calendar in user.calendars.values():
        for stored in calendar.events.values():
            if stored.is_copy and not stored.deleted and stored.ical_uid == ical_uid:
                return stored
    return None


def _shown_as(intended: str, response: str) -> str:
    if intended == "free" or response == "accepted":
        return intended
    return "tentative"  # Outlook adds new requests to the calendar tentatively until answered


def _copy_fields(source: JsonDict, current: JsonDict | None, copied: StoredEvent) -> JsonDict:
    """The copy's fields: what the organizer sent, and its owner's own reminders and categories."""
    if current is None:
        fields = copy.deepcopy(source)
        fields.update(categories=[], isReminderOn=True, reminderMinutesBeforeStart=15)
    else:
        fields = copy.deepcopy(current)
        for name in COPIED_PROPERTIES:
            fields[name] = copy.deepcopy(source.get(name))
    copied.intended_show_as = str(source.get("showAs") or "busy")
    fields["showAs"] = _shown_as(copied.intended_show_as, copied.response)
    return fields


def _mirror_occurrences(series: StoredEvent, copied: StoredEvent) -> None:
    """The copy's occurrences follow the series: the same exceptions and cancellations."""

    def own(occurrence_id: str) -> str:
        return copied.id + occurrence_id[len(series.id) :]

    copied.cancelled_occurrences = {own(key) for key in series.cancelled_occurrences}
    copied.changed_occurrences = {
        own(key): OccurrenceChange(overrides=copy.deepcopy(change.overrides))
        for key, change in series.changed_occurrences.items()
    }


def new_copy(
    state: MicrosoftState,
    user: MicrosoftUser,
    ical_uid: str,
    organizer: tuple[str, str],
    fields: JsonDict,
) -> StoredEvent:
    """A meeting request lands in the user's default calendar, not answered yet."""
    calendar = user.calendars[user.default_calendar_id]
    moment = now()
    copied = StoredEvent(
        id=new_event_id(),
        calendar_id=calendar.id,
        fields={},
        created=moment,
        modified=moment,
        seq=state.next_seq(),
        ical_uid=ical_uid,
        organizer_address=organizer[0],
        organizer_name=organizer[1],
        response=NOT_RESPONDED,
    )
    copied.fields = _copy_fields(fields, None, copied)
    calendar.events[copied.id] = copied
    return copied


def _deliver_invitation(state: MicrosoftState, stored: StoredEvent, to: Recipient) -> None:
    found = to.found
    if found is None:
        found = new_copy(state, to.user, stored.ical_uid, to.organizer, stored.fields)
    else:
        found.fields = _copy_fields(stored.fields, found.fields, found)
        found.cancelled = False
    found.join_url = stored.join_url
    _mirror_occurrences(stored, found)
    state.touch(found)


def _deliver_update(state: MicrosoftState, stored: StoredEvent, to: Recipient) -> None:
    found = to.found
    if found is None or found.cancelled:
        return
    found.fields = _copy_fields(stored.fields, found.fields, found)
    found.join_url = stored.join_url
    _mirror_occurrences(stored, found)
    state.touch(found)


def _deliver_cancellation(state: MicrosoftState, stored: StoredEvent, to: Recipient) -> None:
    found = to.found
    if found is None or found.cancelled:
        return
    found.cancelled = True
    found.fields["subject"] = CANCELED_PREFIX + str(found.fields.get("subject") or "")
    state.touch(found)


_DELIVERY: dict[str, Delivery] = {
    INVITATION: _deliver_invitation,
    UPDATE: _deliver_update,
    CANCELLATION: _deliver_cancellation,
}


def receive_invitation(
    state: MicrosoftState, user: MicrosoftUser, ical_uid: str, organizer: tuple[str, str], fields: JsonDict
) -> StoredEvent:
    """An invitation from an organizer elsewhere: a new copy, or the copy already here updated."""
    if organizer[0].lower() == user.email:
        raise ValueError("the organizer's own mailbox gets no invitation")
    fields = copy.deepcopy(fields)
    if user.email not in _recipients("", fields):
        fields["attendees"].append(
            {
                "type": "required",
                "status": {"response": "none", "time": NO_TIME},
                "emailAddress": {"name": user.display_name, "address": user.email},
            }
        )
    found = find_copy(user, ical_uid)
    if found is None:
        found = new_copy(state, user, ical_uid, organizer, fields)
    else:
        found.fields = _copy_fields(fields, found.fields, found)
        found.cancelled = False
        state.touch(found)
    if found.fields.get("isOnlineMeeting") and found.join_url is None:
        found.join_url = teams_join_url(ical_uid, organizer[0])
    return found


# -- responses -------------------------------------------------------------------------------------


def _send_response(body: JsonDict) -> bool:
    comment, send = body.get("comment"), body.get("sendResponse", True)
    if comment is not None and not isinstance(comment, str):
        raise _bad_value(comment, "String")
    if not isinstance(send, bool):
        raise _bad_value(send, "Boolean")
    return send


def respond(
    state: MicrosoftState, calendar: Calendar, stored: StoredEvent, action: str, body: JsonDict
) -> None:
    """accept / tentativelyAccept / decline on the user's copy of a meeting."""
    send = _send_response(body)
    if not stored.is_copy:
        raise GraphError(
            400,
            "ErrorInvalidRequest",
            "Your request can't be completed. You can't respond to this meeting because you're the "
            "meeting organizer.",
        )
    if stored.cancelled:
        raise GraphError(
            400, "ErrorInvalidRequest", "Your request can't be completed. This meeting has been canceled."
        )
    response = RSVP_ACTIONS[action]
    stored.response, stored.response_time = response, now()
    stored.fields["showAs"] = _shown_as(stored.intended_show_as, response)
    if send and stored.organizer_address is not None:
        organizer = stored.organizer_address
        state.sent_responses.setdefault(calendar.owner, []).append(
            SentMail(response, organizer, stored.ical_uid)
        )
        _track_response(state, stored, calendar.owner)
    stored.deleted = action == "decline"  # Outlook moves a declined meeting to Deleted Items
    state.touch(stored)


def _track_response(state: MicrosoftState, answered: StoredEvent, attendee: str) -> None:
    """The organizer's event (in a mailbox here) shows the attendee's answer."""
    organizer = state.users.get(str(answered.organizer_address).lower())
    if organizer is None:
        return
    for calendar in organizer.calendars.values():
        for stored in calendar.events.values():
            if stored.deleted or stored.is_copy or stored.ical_uid != answered.ical_uid:
                continue
            entries = [
                entry
                for entry in stored.fields.get("attendees") or []
                if str(entry["emailAddress"]["address"]).lower() == attendee
            ]
            for entry in entries:
                entry["status"] = response_status(answered)
            if entries:
                state.touch(stored)
