"""Writes to events of the emulated Google Calendar as meetings: copies, answers, mail, Meet.

Every insert, patch, update and delete (through the API or as the emulated user) goes through
here. An organizer's write changes their event, records the mail Google would send for it
(`sendUpdates`), asks for a Google Meet conference (`conferenceDataVersion=1`) and updates the
guests' copies (google_copies.py). A guest's write to their copy may only change what is theirs
(their answer, per-copy properties); their answer reaches the organizer's event and the other
copies. Deleting a copy declines the invitation. Parameters:
https://developers.google.com/calendar/api/v3/reference/events/insert,
https://developers.google.com/calendar/api/v3/reference/events/patch,
https://developers.google.com/calendar/api/v3/reference/events/update,
https://developers.google.com/calendar/api/v3/reference/events/delete (`sendUpdates`: "all",
"externalOnly" or "none", default none; the deprecated `sendNotifications=true` is "all").

Callers hold `EmulatorState.lock`.
"""

from __future__ import annotations

import base64
import copy
import hashlib
from dataclasses import dataclass

from calendarsync.emulators.google_conference import (
    apply_conference,
    complete_conferences,
    conference_version,
)
from calendarsync.emulators.google_copies import (
    OWN_ENTRY_FIELDS,
    PER_COPY_FIELDS,
    current_resource,
    forbidden_for_non_organizer,
    is_copy,
    mark_self,
    mirror_copies,
    organizer_email,
    own_entry,
    same_address,
    shared_changes,
    top_id,
)
from calendarsync.emulators.google_events import (
    RESPONSE_STATUSES,
    SERVER_FIELDS,
    clean_body,
    insert_event,
    merge_patch,
    ordered,
)
from calendarsync.emulators.google_http import ApiError, JsonDict, Request
from calendarsync.emulators.google_instances import INSTANCE_FIELDS, delete_any, update_any
from calendarsync.emulators.google_state import Calendar, EmulatorState, StoredEvent

SEND_UPDATES = ("all", "externalOnly", "none")
# A change to one of these mails the guests an update (when the request asks for mail).
NOTIFYING_FIELDS = ("summary", "description", "location", "start", "end", "recurrence", "conferenceData")


@dataclass(frozen=True)
class WriteOptions:
    send_updates: str = "none"
    conference_version: int = 0


def write_options(req: Request) -> WriteOptions:
    """`sendUpdates` (or the deprecated `sendNotifications`) and `conferenceDataVersion` of a write."""
    send_updates = req.arg("sendUpdates")
    if send_updates is None or send_updates == "":
        send_updates = "all" if (req.arg("sendNotifications") or "").lower() == "true" else "none"
    return WriteOptions(
        checked_send_updates(send_updates), conference_version(req.arg("conferenceDataVersion"))
    )


def checked_send_updates(value: str) -> str:
    if value not in SEND_UPDATES:
        raise ApiError(400, "invalid", "Invalid value for: sendUpdates")
    return value


def complete_pending(state: EmulatorState) -> None:
    """Make the Meet conferences asked for since the last request (Google makes them right after)."""
    complete_conferences(state, mirror_copies)


# -- mail --------------------------------------------------------------------------------------------


def _recipients(resource: JsonDict | None, calendar: Calendar) -> list[str]:
    if resource is None or resource.get("status") == "cancelled":
        return []
    return [
        str(entry["email"])
        for entry in resource.get("attendees") or ()
        if entry.get("email") and not same_address(entry["email"], calendar.id)
    ]


def record_mail(
    state: EmulatorState,
    calendar: Calendar,
    before: JsonDict | None,
    after: JsonDict | None,
    send_updates: str,
) -> None:
    """What Google mails for an organizer's write: invitations, updates and cancellations."""
    if send_updates == "none":
        return
    uid = str((after or before or {}).get("iCalUID", ""))
    old, new = _recipients(before, calendar), _recipients(after, calendar)
    old_keys, new_keys = {e.lower() for e in old}, {e.lower() for e in new}
    changed = (
        before is not None
        and after is not None
        and any(before.get(k) != after.get(k) for k in NOTIFYING_FIELDS)
    )
    mails = [("invitation", email) for email in new if email.lower() not in old_keys]
    if changed:
        mails += [("update", email) for email in new if email.lower() in old_keys]
    mails += [("cancellation", email) for email in old if email.lower() not in new_keys]
    outbox = state.sent_mail.setdefault(calendar.owner, [])
    for kind, email in mails:
        if send_updates == "all" or email.strip().lower() not in state.users:
            outbox.append((kind, email, uid))


# -- organizer's writes --------------------------------------------------------------------------------


def insert(
    state: EmulatorState, calendar: Calendar, body: JsonDict, options: WriteOptions, *, lenient: bool = False
) -> StoredEvent:
    stored = insert_event(state, calendar, body, lenient=lenient)
    if options.conference_version >= 1:
        apply_conference(state, calendar, stored.id, stored, body, replace=False)
    record_mail(state, calendar, None, stored.resource, options.send_updates)
    mirror_copies(state, calendar, stored.id)
    return stored


def update(
    state: EmulatorState,
    calendar: Calendar,
    event_id: str,
    body: JsonDict,
    options: WriteOptions,
    *,
    patch: bool,
    if_match: str | None = None,
    lenient: bool = False,
) -> StoredEvent:
    before = current_resource(calendar, event_id)
    if before is not None and is_copy(before):
        return _guest_update(state, calendar, event_id, body, options, patch=patch, if_match=if_match)
    before = copy.deepcopy(before)
    stored = update_any(state, calendar, event_id, body, patch=patch, if_match=if_match, lenient=lenient)
    if options.conference_version >= 1 and not stored.deleted:
        apply_conference(state, calendar, top_id(event_id, calendar), stored, body, replace=not patch)
    record_mail(state, calendar, before, stored.resource, options.send_updates)
    mirror_copies(state, calendar, top_id(event_id, calendar))
    return stored


def delete(
    state: EmulatorState,
    calendar: Calendar,
    event_id: str,
    options: WriteOptions,
    *,
    if_match: str | None = None,
) -> None:
    before = current_resource(calendar, event_id)
    if before is not None and is_copy(before):
        _guest_delete(state, calendar, event_id, if_match)
        return
    before = copy.deepcopy(before)
    delete_any(state, calendar, event_id, if_match)
    record_mail(state, calendar, before, None, options.send_updates)
    mirror_copies(state, calendar, top_id(event_id, calendar))


# -- guests' writes ----------------------------------------------------------------------------------


def _wanted(current: JsonDict, body: JsonDict, calendar: Calendar, *, patch: bool) -> JsonDict:
    """The writable fields the guest's write asks for (as the write would store them)."""
    kept = (*SERVER_FIELDS, *INSTANCE_FIELDS)
    sent = {key: value for key, value in body.items() if key not in kept}
    if patch:
        sent = merge_patch({key: value for key, value in current.items() if key not in kept}, sent)
    return clean_body(sent, calendar, lenient=True)


def _guest_update(
    state: EmulatorState,
    calendar: Calendar,
    event_id: str,
    body: JsonDict,
    options: WriteOptions,
    *,
    patch: bool,
    if_match: str | None,
) -> StoredEvent:
    current = copy.deepcopy(current_resource(calendar, event_id) or {})
    wanted = _wanted(current, body, calendar, patch=patch)
    if wanted.get("status") == "cancelled":
        _guest_delete(state, calendar, event_id, if_match)
        return calendar.events.get(event_id) or _stored_of(calendar, event_id)
    conference_changed = (
        options.conference_version >= 1
        and "conferenceData" in body
        and (body["conferenceData"] != current.get("conferenceData"))
    )
    if shared_changes(current, wanted, calendar.id) or conference_changed:
        raise forbidden_for_non_organizer()
    resource = {
        key: value for key, value in current.items() if key not in (*PER_COPY_FIELDS, "extendedProperties")
    }
    resource.update({key: wanted[key] for key in PER_COPY_FIELDS if key in wanted})
    properties = dict(current.get("extendedProperties") or {})
    properties.pop("private", None)
    if (wanted.get("extendedProperties") or {}).get("private"):
        properties["private"] = wanted["extendedProperties"]["private"]
    if properties:
        resource["extendedProperties"] = properties
    answer = own_entry(wanted, calendar.id) or {}
    resource["attendees"] = _with_answer(current.get("attendees") or [], calendar.id, answer)
    stored = update_any(state, calendar, event_id, resource, patch=False, if_match=if_match, lenient=True)
    stored.resource["attendees"] = mark_self(stored.resource.get("attendees") or [], calendar.id)
    _tell_organizer(state, calendar, event_id, current, answer)
    return stored


def _with_answer(attendees: list[JsonDict], guest: str, answer: JsonDict) -> list[JsonDict]:
    """The guest list with `guest`'s entry carrying their answer (response, comment, guests)."""
    changed = []
    for entry in attendees:
        entry = dict(entry)
        if same_address(entry.get("email"), guest):
            for key in OWN_ENTRY_FIELDS:
                entry.pop(key, None)
                if key in answer:
                    entry[key] = answer[key]
            entry.setdefault("responseStatus", "needsAction")
        changed.append(entry)
    return changed


def _stored_of(calendar: Calendar, event_id: str) -> StoredEvent:
    series = calendar.events[top_id(event_id, calendar)]
    return series.exceptions.get(event_id, series)


def _guest_delete(state: EmulatorState, calendar: Calendar, event_id: str, if_match: str | None) -> None:
    current = copy.deepcopy(current_resource(calendar, event_id) or {})
    delete_any(state, calendar, event_id, if_match)
    _tell_organizer(state, calendar, event_id, current, {"responseStatus": "declined"})


def _tell_organizer(
    state: EmulatorState, calendar: Calendar, event_id: str, copy_resource: JsonDict, answer: JsonDict
) -> None:
    """The guest's answer reaches the organizer's event (when the organizer is a user here)."""
    organizer_calendar = state.find_calendar(organizer_email(copy_resource))
    if organizer_calendar is None:
        return
    series = organizer_calendar.events.get(top_id(event_id, calendar))
    organizer_view = current_resource(organizer_calendar, event_id)
    if (
        series is None
        or organizer_view is None
        or series.resource.get("iCalUID") != copy_resource.get("iCalUID")
    ):
        return
    attendees = organizer_view.get("attendees") or []
    entry = own_entry(organizer_view, calendar.id)
    if entry is None or all(entry.get(key) == answer.get(key) for key in OWN_ENTRY_FIELDS):
        return
    new_attendees = _with_answer(attendees, calendar.id, answer)
    update_any(state, organizer_calendar, event_id, {"attendees": new_attendees}, patch=True, lenient=True)
    mirror_copies(state, organizer_calendar, series.id)


def respond(state: EmulatorState, calendar: Calendar, event_id: str, response: str) -> StoredEvent:
    """The guest answers the invitation on their copy (as Google Calendar's Yes / Maybe / No)."""
    if response not in RESPONSE_STATUSES:
        raise ValueError(f"unknown response {response!r}; expected one of {RESPONSE_STATUSES}")
    current = current_resource(calendar, event_id)
    if current is None or not is_copy(current):
        raise KeyError(f"{calendar.id!r} holds no invitation {event_id!r}")
    attendees = _with_answer(current.get("attendees") or [], calendar.id, {"responseStatus": response})
    return update(state, calendar, event_id, {"attendees": attendees}, WriteOptions(), patch=True)


# -- invitations from organizers elsewhere -----------------------------------------------------------


def copy_id_for_uid(ical_uid: str) -> str:
    """An event id (base32hex) for the copy of an invitation that came by mail, stable per UID."""
    digest = hashlib.sha256(ical_uid.encode()).digest()
    return base64.b32hexencode(digest).decode().rstrip("=").lower()


def receive_invitation(state: EmulatorState, calendar: Calendar, body: JsonDict) -> StoredEvent:
    """An invitation mailed by an organizer elsewhere lands in the calendar (or updates its copy).

    `body`: an event resource with `iCalUID`, `organizer.email` and the attendees; the calendar's
    owner is added to the attendees if missing, their answer kept when the copy exists already.
    """
    uid, organizer = body.get("iCalUID"), body.get("organizer")
    if not isinstance(uid, str) or not uid or not isinstance(organizer, dict) or not organizer.get("email"):
        raise ValueError("an invitation needs iCalUID and organizer.email")
    event_id = str(body.get("id") or copy_id_for_uid(uid))
    existing = calendar.events.get(event_id)
    attendees = [dict(a) for a in body.get("attendees") or ()]
    if not any(same_address(a.get("email"), calendar.id) for a in attendees):
        attendees.append({"email": calendar.id})
    if existing is not None:
        previous = own_entry(existing.resource, calendar.id) or {}
        attendees = _with_answer(attendees, calendar.id, previous)
        existing.resource["status"] = "confirmed"  # a cancelled copy comes back with the new invitation
    fields = {key: value for key, value in body.items() if key not in ("id", "organizer", "creator")}
    fields["attendees"] = attendees
    if existing is None:
        stored = insert_event(state, calendar, {**fields, "id": event_id}, lenient=True)
    else:
        stored = update_any(state, calendar, event_id, fields, patch=False, lenient=True)
    person = {key: value for key, value in organizer.items() if key in ("email", "displayName")}
    stored.resource["organizer"] = person
    stored.resource["creator"] = dict(person)
    stored.resource["attendees"] = mark_self(stored.resource["attendees"], calendar.id)
    stored.resource = ordered(stored.resource)
    return stored
