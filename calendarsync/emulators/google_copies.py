"""Guests' copies of a meeting in the emulated Google Calendar.

Inviting someone puts a copy of the event on their calendar; the invitee can answer and, to some
extent, change their copy (color, reminders), while the shared properties belong to the organizer
(https://developers.google.com/calendar/api/concepts/sharing). Each guest who is a user here gets
a copy in their primary calendar with the organizer's event id and iCalUID, `organizer` without
`self`, and their own attendee entry marked `"self": true`. Properties private to one copy
(https://developers.google.com/calendar/api/v3/reference/events: `extendedProperties.private`,
reminders, colorId, transparency) stay the guest's; everything else follows the organizer's event.

Callers hold `EmulatorState.lock`.
"""

from __future__ import annotations

import copy
from typing import Any

from calendarsync.emulators.google_events import (
    BOOLEAN_FIELDS,
    INSTANCE_ID_PATTERN,
    cancel_stored,
    html_link,
    ordered,
    stamp,
    timing_of,
)
from calendarsync.emulators.google_http import ApiError, JsonDict
from calendarsync.emulators.google_instances import find_instance
from calendarsync.emulators.google_state import Calendar, EmulatorState, StoredEvent

# Properties each copy keeps for itself (extendedProperties.private is handled apart).
PER_COPY_FIELDS = ("reminders", "colorId", "transparency")
# An attendee may change these of their own entry; the rest of the guest list is the organizer's.
OWN_ENTRY_FIELDS = ("responseStatus", "comment", "additionalGuests")
# Defaults Google assumes when a boolean property is absent.
BOOLEAN_DEFAULTS = {"guestsCanInviteOthers": True, "guestsCanSeeOtherGuests": True}
STAMP_FIELDS = ("etag", "updated")


def forbidden_for_non_organizer() -> ApiError:
    # https://developers.google.com/calendar/api/guides/errors
    return ApiError(
        403,
        "forbiddenForNonOrganizer",
        "Shared properties can only be changed by the organizer of the event.",
        domain="calendar",
    )


# -- who is who ------------------------------------------------------------------------------------


def is_copy(resource: JsonDict) -> bool:
    """A guest's copy: the calendar holding it does not organize the event."""
    organizer = resource.get("organizer")
    return isinstance(organizer, dict) and not organizer.get("self")


def organizer_email(resource: JsonDict) -> str:
    organizer = resource.get("organizer")
    return str(organizer.get("email", "")) if isinstance(organizer, dict) else ""


def same_address(first: object, second: object) -> bool:
    return str(first or "").strip().lower() == str(second or "").strip().lower()


def own_entry(resource: JsonDict, email: str) -> JsonDict | None:
    for entry in resource.get("attendees") or ():
        if same_address(entry.get("email"), email):
            return dict(entry)
    return None


def mark_self(attendees: list[JsonDict], email: str) -> list[JsonDict]:
    """The attendee list as `email`'s copy shows it: their entry carries `"self": true`."""
    marked = []
    for entry in attendees:
        entry = {key: value for key, value in entry.items() if key != "self"}
        if same_address(entry.get("email"), email):
            entry["self"] = True
        marked.append(entry)
    return marked


def current_resource(calendar: Calendar, event_id: str) -> JsonDict | None:
    """The live event or instance an id names (None when it does not exist or was deleted)."""
    stored = calendar.events.get(event_id)
    if stored is not None:
        return None if stored.deleted else stored.resource
    ref = find_instance(calendar, event_id)
    if ref is None or (ref.exception is not None and ref.exception.deleted):
        return None
    return ref.current


def top_id(event_id: str, calendar: Calendar) -> str:
    """The event whose copies carry this id: the event itself, or the series of an instance."""
    if event_id in calendar.events:
        return event_id
    match = INSTANCE_ID_PATTERN.fullmatch(event_id)
    return match["series"] if match else event_id


# -- making copies look like the organizer's event ---------------------------------------------------


def _without_self(person: object) -> object:
    if not isinstance(person, dict):
        return person
    return {key: value for key, value in person.items() if key != "self"}


def personalize(source: JsonDict, guest: str, guest_calendar: Calendar, own: JsonDict | None) -> JsonDict:
    """The organizer's event (or instance) as `guest`'s copy shows it.

    `own`: the copy as it is (its per-copy properties stay), None for a new copy.
    """
    resource = {
        key: copy.deepcopy(value)
        for key, value in source.items()
        if key not in (*STAMP_FIELDS, *PER_COPY_FIELDS, "extendedProperties")
    }
    resource["htmlLink"] = html_link(str(source["id"]), guest_calendar.id)
    resource["organizer"] = _without_self(source.get("organizer"))
    if "creator" in source:
        resource["creator"] = _without_self(source["creator"])
    if source.get("attendees"):
        resource["attendees"] = mark_self(copy.deepcopy(source["attendees"]), guest)
    keeper = own if own is not None else {"reminders": {"useDefault": True}, **_initial(source)}
    for key in PER_COPY_FIELDS:
        if key in keeper:
            resource[key] = copy.deepcopy(keeper[key])
    properties = {}
    if (source.get("extendedProperties") or {}).get("shared"):
        properties["shared"] = dict(source["extendedProperties"]["shared"])
    if (keeper.get("extendedProperties") or {}).get("private"):
        properties["private"] = dict(keeper["extendedProperties"]["private"])
    if properties:
        resource["extendedProperties"] = properties
    return ordered(resource)


def _initial(source: JsonDict) -> JsonDict:
    return {"transparency": source["transparency"]} if "transparency" in source else {}


def _differs(current: JsonDict, wanted: JsonDict) -> bool:
    def strip(resource: JsonDict) -> JsonDict:
        return {key: value for key, value in resource.items() if key not in STAMP_FIELDS}

    return strip(current) != strip(wanted)


def _dismissed(existing: StoredEvent | None, source: JsonDict, guest: str) -> bool:
    """The guest deleted their copy (so declined) and has not been asked again since."""
    entry = own_entry(source, guest)
    return (
        existing is not None
        and existing.deleted
        and entry is not None
        and entry.get("responseStatus") == "declined"
    )


def _store_copy(state: EmulatorState, existing: StoredEvent | None, wanted: JsonDict) -> StoredEvent:
    if existing is None:
        seq = stamp(state, wanted)
        return StoredEvent(resource=ordered(wanted), changed_seq=seq)
    if _differs(existing.resource, wanted):
        existing.changed_seq = stamp(state, wanted)
        existing.resource = ordered(wanted)
    return existing


def _mirror_one(
    state: EmulatorState, source: JsonDict, existing: StoredEvent | None, guest: str, guest_calendar: Calendar
) -> StoredEvent | None:
    """The guest's copy of one event or instance made to match `source`; None: no copy wanted."""
    live = source.get("status") != "cancelled" and own_entry(source, guest) is not None
    if not live or _dismissed(existing, source, guest):
        if existing is not None and not existing.deleted:
            cancel_stored(state, existing)
        return existing
    own = existing.resource if existing is not None else None
    return _store_copy(state, existing, personalize(source, guest, guest_calendar, own))


def _mirror_exceptions(
    state: EmulatorState,
    organizer: StoredEvent,
    guest_copy: StoredEvent,
    guest: str,
    guest_calendar: Calendar,
) -> None:
    for instance_id in [i for i in guest_copy.exceptions if i not in organizer.exceptions]:
        del guest_copy.exceptions[instance_id]
    for instance_id, exception in organizer.exceptions.items():
        existing = guest_copy.exceptions.get(instance_id)
        if existing is None and (exception.deleted or own_entry(exception.resource, guest) is None):
            # The guest never saw this instance as an exception: it goes with its series' copy.
            wanted = personalize(exception.resource, guest, guest_calendar, guest_copy.resource)
            wanted["status"] = "cancelled"
            guest_copy.exceptions[instance_id] = _store_copy(state, None, wanted)
            continue
        mirrored = _mirror_one(state, exception.resource, existing, guest, guest_calendar)
        if mirrored is not None:
            guest_copy.exceptions[instance_id] = mirrored
    guest_copy.retired_instances = copy.deepcopy(organizer.retired_instances)


def _guests(state: EmulatorState, calendar: Calendar, organizer: StoredEvent) -> list[str]:
    """Users who are (or were) invited: the attendees with a mailbox here and anyone holding a copy."""
    found: list[str] = []
    resources = [organizer.resource, *(e.resource for e in organizer.exceptions.values())]
    for resource in resources:
        for entry in resource.get("attendees") or ():
            email = str(entry.get("email", "")).strip().lower()
            if email in state.users and not same_address(email, calendar.id) and email not in found:
                found.append(email)
    for email, user in state.users.items():
        held = user.calendars[email].events.get(organizer.id)
        if (
            email not in found
            and held is not None
            and same_address(organizer_email(held.resource), calendar.id)
        ):
            found.append(email)
    return found


def mirror_copies(state: EmulatorState, calendar: Calendar, event_id: str) -> None:
    """Make every guest's copy of the organizer's event `event_id` match it (new etag where changed)."""
    organizer = calendar.events.get(event_id)
    if organizer is None or is_copy(organizer.resource):
        return
    for guest in _guests(state, calendar, organizer):
        guest_calendar = state.users[guest].calendars[guest]
        if guest_calendar is calendar:
            continue
        existing = guest_calendar.events.get(event_id)
        if existing is not None and not same_address(organizer_email(existing.resource), calendar.id):
            continue  # the guest has an event of their own under this id: leave it alone
        mirrored = _mirror_one(state, organizer.resource, existing, guest, guest_calendar)
        if mirrored is None:
            continue
        guest_calendar.events[event_id] = mirrored
        if not mirrored.deleted:
            _mirror_exceptions(state, organizer, mirrored, guest, guest_calendar)


# -- what a guest may change -------------------------------------------------------------------------


def _text(resource: JsonDict, key: str) -> Any:
    return resource.get(key) or ""


def _attendee_view(attendees: object, guest: str) -> dict[str, JsonDict]:
    """Attendees by address, without the flags and, for the guest's entry, without their answer."""
    view: dict[str, JsonDict] = {}
    for entry in attendees if isinstance(attendees, list) else ():
        kept = {key: value for key, value in entry.items() if key not in ("self", "organizer")}
        email = str(kept.get("email", "")).strip().lower()
        if email == guest.strip().lower():
            kept = {key: value for key, value in kept.items() if key not in OWN_ENTRY_FIELDS}
        kept.pop("email", None)
        view[email] = kept
    return view


def shared_changes(current: JsonDict, wanted: JsonDict, guest: str) -> list[str]:
    """The shared properties `wanted` (a cleaned body) changes on the guest's copy `current`."""
    changed = [
        key for key in ("summary", "description", "location") if _text(current, key) != _text(wanted, key)
    ]
    for key in BOOLEAN_FIELDS:
        flag = BOOLEAN_DEFAULTS.get(key, False)
        if bool(current.get(key, flag)) != bool(wanted.get(key, flag)):
            changed.append(key)
    for key, value in (("visibility", "default"), ("status", "confirmed")):
        if current.get(key, value) != wanted.get(key, value):
            changed.append(key)
    for key in ("recurrence", "source"):
        if (current.get(key) or None) != (wanted.get(key) or None):
            changed.append(key)
    if timing_of(current) != timing_of(wanted):
        changed.append("start/end")
    shared = (
        (current.get("extendedProperties") or {}).get("shared") or {},
        (wanted.get("extendedProperties") or {}).get("shared") or {},
    )
    if shared[0] != shared[1]:
        changed.append("extendedProperties.shared")
    if _attendee_view(current.get("attendees"), guest) != _attendee_view(wanted.get("attendees"), guest):
        changed.append("attendees")
    return changed
