"""CRM activity <-> calendar event fields, in one neutral, JSON-able shape (``Fields``).

Both sides are reduced to the same keys so they can be compared with each other and with the
snapshot both last agreed on (field-by-field merge, no echo):

``subject``      text
``time``         ``{"start", "end"}`` (UTC, whole seconds) or ``{"start_date", "end_date"}``
                 (all-day, end exclusive; all-day items stay dates, never midnight datetimes)
``location``     text
``description``  the activity's note; the O7 details block is stripped from what comes back
``attendees``    sorted lower-case e-mails: guests + participants with an e-mail (never the
                 account's own address, which the calendar adds as organizer)
``busy``         busy (True) or free (False)
``private``      the item is private (activity visibility "only owner" / private event)

The CRM's change time of each of these fields comes from the activity's per-field stamps
(``crm_change_times``, R11). Attendees written to a calendar start from the event's own entries
(``event_attendees``), so what the CRM does not model is kept.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from activities.models import Activity, Person, Visibility
from activities.tracking import PARTICIPANTS
from activities.visibility import linked_item_visible_to
from calendarsync.providers.base import CONTENT_FIELDS, Attendee, EventData

Fields = dict[str, Any]

FIELD_NAMES = CONTENT_FIELDS  # the same names the provider protocol writes by
# The activity's own fields each synced field is made of (their CRM change times, R11).
FIELD_SOURCES: dict[str, tuple[str, ...]] = {
    "subject": ("subject",),
    "time": ("due_date", "start_at", "duration"),
    "location": ("location",),
    "description": ("note",),
    "attendees": ("guests", PARTICIPANTS),
    "busy": ("busy",),
    "private": ("visibility",),
}
# A timed activity without a duration still needs an end in the calendar.
DEFAULT_DURATION = dt.timedelta(minutes=30)
SUBJECT_MAX = 255
LOCATION_MAX = 255
# O7: the block of deal / contact details appended to outgoing descriptions starts at this line;
# everything from it on is ours and is cut off again when the description comes back.
DETAILS_MARKER = "-- Details from CalSync CRM (edits below this line are not saved) --"


# --------------------------------------------------------------------------- helpers


def _utc_iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).replace(microsecond=0).isoformat()


def _from_iso(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def normalize_text(text: str) -> str:
    return text.replace("\r\n", "\n").rstrip()


def strip_details(description: str) -> str:
    """The description without our O7 details block (so it never leaks into the note)."""
    index = description.find(DETAILS_MARKER)
    if index >= 0:
        description = description[:index]
    return normalize_text(description)


def details_block(activity: Activity) -> str:
    """O7: deal, person and organization details for the event description ('' if none).

    Only what the owner may view now (A5): an item made owner-only by a colleague drops out,
    and the next push rewrites the description without it.
    """
    owner_id = activity.owner_id
    lines: list[str] = []
    deal, person, organization = activity.deal, activity.person, activity.organization
    if deal is not None and linked_item_visible_to(deal, owner_id):
        lines.append(f"Deal: {deal.title}")
    if person is not None and linked_item_visible_to(person, owner_id):
        contact = ", ".join(part for part in (person.email, person.phone) if part)
        lines.append(f"Person: {person.name}" + (f" ({contact})" if contact else ""))
    if organization is not None and linked_item_visible_to(organization, owner_id):
        lines.append(f"Organization: {organization.name}")
    return "\n".join([DETAILS_MARKER, *lines]) if lines else ""


def written_details(snapshot: Any, current: str) -> str:
    """The O7 block last written to the event (``current`` when the link predates recording it)."""
    if isinstance(snapshot, Mapping) and isinstance(snapshot.get("details"), str):
        return str(snapshot["details"])
    return current


def with_details(note: str, block: str) -> str:
    if not block:
        return note
    return f"{note}\n\n{block}" if note else block


def _emails(addresses: Iterable[str], excluded: frozenset[str]) -> list[str]:
    return sorted({a.strip().lower() for a in addresses if a and a.strip()} - excluded)


# --------------------------------------------------------------------------- CRM side


def activity_time(activity: Activity) -> dict[str, str]:
    if activity.start_at is None:
        days = activity.duration.days if activity.duration and activity.duration.days > 1 else 1
        return {
            "start_date": activity.due_date.isoformat(),
            "end_date": (activity.due_date + dt.timedelta(days=days)).isoformat(),
        }
    start = activity.start_at.replace(microsecond=0)
    duration = activity.duration if activity.duration and activity.duration > dt.timedelta(0) else None
    return {"start": _utc_iso(start), "end": _utc_iso(start + (duration or DEFAULT_DURATION))}


def crm_fields(activity: Activity, participant_emails: Iterable[str], excluded: frozenset[str]) -> Fields:
    guests = [str(g) for g in activity.guests] if isinstance(activity.guests, list) else []
    return {
        "subject": activity.subject,
        "time": activity_time(activity),
        "location": activity.location,
        "description": normalize_text(activity.note),
        "attendees": _emails([*guests, *participant_emails], excluded),
        "busy": bool(activity.busy),
        "private": activity.visibility == Visibility.OWNER,
    }


def crm_change_times(activity: Activity) -> dict[str, dt.datetime | None]:
    """When each synced field last changed in the CRM: the latest stamp of the fields it is made
    of, else the activity's last synced change (an activity stamped before per-field times)."""
    stamps = activity.sync_field_changed_at if isinstance(activity.sync_field_changed_at, dict) else {}
    times: dict[str, dt.datetime | None] = {}
    for name, sources in FIELD_SOURCES.items():
        found = [_from_iso(str(stamps[source])) for source in sources if stamps.get(source)]
        times[name] = max(found) if found else activity.sync_changed_at
    return times


# --------------------------------------------------------------------------- calendar side


def event_time(event: EventData) -> dict[str, str]:
    if event.start is not None and event.end is not None:
        return {"start": _utc_iso(event.start), "end": _utc_iso(event.end)}
    if event.start_date is not None and event.end_date is not None:
        return {"start_date": event.start_date.isoformat(), "end_date": event.end_date.isoformat()}
    raise ValueError("an event needs a start and an end")


def calendar_fields(event: EventData, excluded: frozenset[str]) -> Fields:
    return {
        "subject": event.subject,
        "time": event_time(event),
        "location": event.location,
        "description": strip_details(event.description),
        "attendees": _emails((a.email for a in event.attendees), excluded),
        "busy": bool(event.busy),
        "private": bool(event.private),
    }


def event_attendees(
    emails: Iterable[str], current: Sequence[Attendee], excluded: frozenset[str]
) -> tuple[Attendee, ...]:
    """The attendees to write: the event's own entries that stay, as they are (name, answer,
    optional, the account's own entry), then the new e-mails (R11: only add or remove)."""
    wanted = list(dict.fromkeys(emails))
    kept: list[Attendee] = []
    seen: set[str] = set()
    for attendee in current:
        email = attendee.email.strip().lower()
        if email in seen or (email not in wanted and email not in excluded):
            continue
        seen.add(email)
        kept.append(attendee)
    return (*kept, *(Attendee(email=email) for email in wanted if email not in seen))


def event_data(
    fields: Mapping[str, Any],
    *,
    tz: dt.tzinfo,
    tag: str | None,
    details: str,
    current_attendees: Sequence[Attendee] = (),
    excluded: frozenset[str] = frozenset(),
) -> EventData:
    """What to write to the calendar; timed events carry the owner's zone (DST-correct display).

    ``current_attendees``: the event's entries, kept for the e-mails that stay.
    """
    time = fields["time"]
    timing: dict[str, Any]
    if "start" in time:
        timing = {
            "start": _from_iso(time["start"]).astimezone(tz),
            "end": _from_iso(time["end"]).astimezone(tz),
        }
    else:
        timing = {
            "start_date": dt.date.fromisoformat(time["start_date"]),
            "end_date": dt.date.fromisoformat(time["end_date"]),
        }
    return EventData(
        subject=fields["subject"],
        location=fields["location"],
        description=with_details(fields["description"], details),
        attendees=event_attendees(fields["attendees"], current_attendees, excluded),
        busy=fields["busy"],
        private=fields["private"],
        tag=tag,
        **timing,
    )


# --------------------------------------------------------------------------- into the activity


def apply_fields(
    activity: Activity,
    fields: Mapping[str, Any],
    names: Iterable[str],
    *,
    tz: dt.tzinfo,
    participants: Sequence[Person],
) -> list[Person] | None:
    """Write ``fields[name]`` for each of ``names`` into ``activity`` (not saved).

    Returns the new participant list when the attendees changed it, else ``None``. Participants
    without an e-mail are never synced and stay; e-mails matching no participant are guests.
    """
    new_participants: list[Person] | None = None
    for name in names:
        value = fields[name]
        if name == "subject":
            activity.subject = str(value)[:SUBJECT_MAX] or "(no title)"
        elif name == "time":
            _apply_time(activity, value, tz)
        elif name == "location":
            activity.location = str(value)[:LOCATION_MAX]
        elif name == "description":
            activity.note = str(value)
        elif name == "busy":
            activity.busy = bool(value)
        elif name == "private":
            activity.visibility = Visibility.OWNER if value else Visibility.EVERYONE
        elif name == "attendees":
            new_participants = _apply_attendees(activity, list(value), participants)
    return new_participants


def _apply_time(activity: Activity, time: Mapping[str, str], tz: dt.tzinfo) -> None:
    if "start" in time:
        start, end = _from_iso(time["start"]), _from_iso(time["end"])
        activity.start_at = start
        activity.duration = end - start
        activity.due_date = start.astimezone(tz).date()
        return
    start_date = dt.date.fromisoformat(time["start_date"])
    days = (dt.date.fromisoformat(time["end_date"]) - start_date).days
    activity.start_at = None
    activity.due_date = start_date
    activity.duration = dt.timedelta(days=days) if days > 1 else None


def _apply_attendees(
    activity: Activity, emails: list[str], participants: Sequence[Person]
) -> list[Person] | None:
    wanted = set(emails)
    kept = [p for p in participants if not p.email or p.email.lower() in wanted]
    covered = {p.email.lower() for p in kept if p.email}
    existing = {str(g).lower(): str(g) for g in (activity.guests or [])}
    activity.guests = [existing.get(email, email) for email in emails if email not in covered]
    return kept if len(kept) != len(participants) else None


def is_past(fields: Mapping[str, Any], now: dt.datetime, tz: dt.tzinfo) -> bool:
    """R2: an item whose end has passed is left alone."""
    time = fields["time"]
    if "end" in time:
        return _from_iso(time["end"]) <= now
    return dt.date.fromisoformat(time["end_date"]) <= now.astimezone(tz).date()


def start_of(fields: Mapping[str, Any], tz: dt.tzinfo) -> dt.datetime:
    time = fields["time"]
    if "start" in time:
        return _from_iso(time["start"])
    return dt.datetime.combine(dt.date.fromisoformat(time["start_date"]), dt.time(), tzinfo=tz)
