"""Every reason the sync can give for what it did to an item, and its words (D1, D2).

The engine records a ``Reason`` whenever it sends, skips, defers or fails an item (the activity's
``sync_code``, the run's log entries); ``calendarsync.sync.explain`` turns a code into the words
the activity page, the list, the calendar, the sync log and the admin show. Nothing else words
a sync reason, so what the engine did and what the UI says cannot disagree.

A text may name: ``{type}`` (the activity type), ``{owner}`` (the activity's owner), ``{provider}``
(Google, Microsoft 365, Microsoft Exchange), ``{app}`` (its calendar app: Google Calendar,
Outlook), ``{email}`` (the calendar account), ``{time}`` (when
it synced), ``{started}`` (the day sync started), ``{detail}`` (the calendar's reason and code),
``{because}`` (the calendar's code in words, when known), ``{retry}`` (when a refused item is
sent again).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    # -- an activity and its calendar event agree
    SYNCED = "synced"
    SHARED_MEETING = "shared_meeting"
    # -- waiting for a run
    PENDING = "pending"
    AWAITING_CALENDAR_COPY = "awaiting_calendar_copy"
    CALENDAR_BUSY = "calendar_busy"
    CHANGED_MEANWHILE = "changed_meanwhile"
    NEEDS_RECONNECT = "needs_reconnect"
    INSUFFICIENT_PERMISSIONS = "insufficient_permissions"
    ACCOUNT_ERROR = "account_error"
    # -- not part of the sync (rules R1, R2, R6, O3, R13, C6)
    NO_ACCOUNT = "no_account"
    SYNC_NOT_STARTED = "sync_not_started"
    SYNC_STOPPED = "sync_stopped"
    OTHER_OWNER = "other_owner"
    BEFORE_START = "before_start"
    PAST = "past"
    MOVED_INTO_PAST = "moved_into_past"
    TYPE_NOT_SENT = "type_not_sent"
    TYPE_NO_LONGER_SENT = "type_no_longer_sent"
    OTHER_CALENDAR = "other_calendar"
    DELETED_IN_CALENDAR = "deleted_in_calendar"
    OCCURRENCE = "occurrence"
    # -- the calendar refused or failed (R16)
    REFUSED = "refused"
    NOT_FOUND = "not_found"
    FAILED = "failed"
    # -- calendar events the run did not import or apply (the sync log)
    ONE_WAY = "one_way"
    EVENT_BEFORE_START = "event_before_start"
    EVENT_PAST = "event_past"
    BEYOND_HORIZON = "beyond_horizon"
    PRIVATE_EVENT = "private_event"
    MADE_PRIVATE = "made_private"
    DECLINED = "declined"
    NO_INCOMING_TYPE = "no_incoming_type"
    INCOMING_TYPE_INACTIVE = "incoming_type_inactive"
    NO_COMPANY = "no_company"
    UNREADABLE_EVENT = "unreadable_event"
    NOT_APPLIED = "not_applied"
    DUPLICATE_MEETING = "duplicate_meeting"
    SERIES_KEPT = "series_kept"
    REASSIGNED = "reassigned"
    ACTIVITY_GONE = "activity_gone"
    LINKED_ELSEWHERE = "linked_elsewhere"
    MEETING_IN_PROGRESS = "meeting_in_progress"
    UNCONFIRMED_DELETION = "unconfirmed_deletion"
    DETACHED = "detached"
    # -- what a run changed (the sync log)
    SENT = "sent"
    SENT_UPDATE = "sent_update"
    SENT_DELETION = "sent_deletion"
    IMPORTED = "imported"
    APPLIED = "applied"
    OCCURRENCE_APPLIED = "occurrence_applied"
    TRASHED = "trashed"


class Kind(StrEnum):
    """The plain-words status an explanation opens with (also its CSS class)."""

    SYNCED = "synced"
    WAITING = "pending"
    ERROR = "error"
    NOT_SENT = "skipped"
    READ_ONLY = "read_only"
    NOT_SYNCING = "stopped"
    DONE = "done"  # a log entry: a change the run made


class Action(StrEnum):
    """What the user can do about it: a link on the explanation."""

    NONE = ""
    OPTIONS = "options"  # the Calendar Sync page's options
    CALENDAR_SYNC = "calendar_sync"  # the Calendar Sync page (connect, start, reconnect)
    EDIT = "edit"  # the activity's edit form


@dataclass(frozen=True)
class Wording:
    kind: Kind
    message: str
    hint: str = ""
    action: Action = Action.NONE
    action_label: str = ""


RETRY_HINT = "We'll retry {retry}, or when you edit it."

WORDING: dict[Reason, Wording] = {
    Reason.SYNCED: Wording(Kind.SYNCED, "Synced with {email} at {time}."),
    Reason.SHARED_MEETING: Wording(
        Kind.SYNCED,
        "In your calendar too: {owner} owns this meeting and you are in it.",
        "Changes {owner} makes reach your calendar with their sync.",
    ),
    Reason.PENDING: Wording(Kind.WAITING, "Waiting: goes out with the next sync (about a minute)."),
    Reason.AWAITING_CALENDAR_COPY: Wording(
        Kind.WAITING, "Waiting: the next sync reads the calendar's copy of this event first."
    ),
    Reason.CALENDAR_BUSY: Wording(
        Kind.WAITING, "Waiting: {provider} did not answer; we retry in a few minutes.", "{detail}"
    ),
    Reason.CHANGED_MEANWHILE: Wording(
        Kind.WAITING,
        "Waiting: the event changed in the calendar meanwhile; the next sync merges both changes.",
    ),
    Reason.NEEDS_RECONNECT: Wording(
        Kind.WAITING,
        "Waiting: your {provider} account needs to be reconnected.",
        "Sync is paused and nothing was lost; reconnect to carry on.",
        Action.CALENDAR_SYNC,
        "Reconnect",
    ),
    Reason.INSUFFICIENT_PERMISSIONS: Wording(
        Kind.WAITING,
        "Waiting: {provider} does not allow CalSync to use your calendar.",
        "Ask your IT admin to allow third-party calendar apps, then reconnect.",
        Action.CALENDAR_SYNC,
        "Reconnect",
    ),
    Reason.ACCOUNT_ERROR: Wording(
        Kind.WAITING,
        "Waiting: the last sync failed; we retry shortly.",
        "{detail}",
        Action.CALENDAR_SYNC,
        "See status",
    ),
    Reason.NO_ACCOUNT: Wording(
        Kind.NOT_SYNCING,
        "Not synced: you have no calendar connected.",
        "",
        Action.CALENDAR_SYNC,
        "Connect a calendar",
    ),
    Reason.SYNC_NOT_STARTED: Wording(
        Kind.NOT_SYNCING,
        "Not synced: your calendar sync is not started yet.",
        "",
        Action.CALENDAR_SYNC,
        "Start it",
    ),
    Reason.SYNC_STOPPED: Wording(
        Kind.NOT_SYNCING,
        "Not syncing: the calendar sync was stopped.",
        "",
        Action.CALENDAR_SYNC,
        "Calendar Sync",
    ),
    Reason.OTHER_OWNER: Wording(
        Kind.NOT_SENT,
        "Not sent to your calendar: {owner} owns it; each person's sync covers only their own activities.",
    ),
    Reason.BEFORE_START: Wording(
        Kind.NOT_SENT,
        "Not sent: created before you started the sync on {started}.",
        "Change its time, place, participants or description to send it.",
        Action.EDIT,
        "Edit",
    ),
    Reason.PAST: Wording(Kind.NOT_SENT, "Not sent: it's in the past."),
    Reason.MOVED_INTO_PAST: Wording(
        Kind.NOT_SENT,
        "No longer synced: it was moved into the past.",
        "The calendar event moved with it; past items are not synced.",
    ),
    Reason.TYPE_NOT_SENT: Wording(
        Kind.NOT_SENT, "Not sent: {type} is not among the types you send.", "", Action.OPTIONS, "Change"
    ),
    Reason.TYPE_NO_LONGER_SENT: Wording(
        Kind.NOT_SENT,
        "No longer synced: {type} is no longer among the types you send.",
        "Its calendar event is left as it is.",
        Action.OPTIONS,
        "Change",
    ),
    Reason.OTHER_CALENDAR: Wording(
        Kind.NOT_SENT,
        "No longer synced: its event is in a calendar you no longer sync with.",
        "",
        Action.OPTIONS,
        "Change",
    ),
    Reason.DELETED_IN_CALENDAR: Wording(
        Kind.NOT_SENT,
        "Not synced: its event was deleted in the calendar.",
        "Change the activity to send it again.",
        Action.EDIT,
        "Edit",
    ),
    Reason.OCCURRENCE: Wording(
        Kind.READ_ONLY, "Read-only: one occurrence of a recurring event; edit the series in {app}."
    ),
    Reason.REFUSED: Wording(
        Kind.ERROR, "Error: {provider} refused the change{because}.", "{detail}. " + RETRY_HINT
    ),
    Reason.NOT_FOUND: Wording(
        Kind.ERROR, "Error: {provider} could not find the event{because}.", "{detail}. " + RETRY_HINT
    ),
    Reason.FAILED: Wording(Kind.ERROR, "Error: the sync could not send it.", "{detail}. " + RETRY_HINT),
    Reason.ONE_WAY: Wording(
        Kind.NOT_SENT, "one-way sync: calendar events are not imported", "", Action.OPTIONS, "Change"
    ),
    Reason.EVENT_BEFORE_START: Wording(Kind.NOT_SENT, "existed before you started the sync"),
    Reason.EVENT_PAST: Wording(Kind.NOT_SENT, "in the past"),
    Reason.BEYOND_HORIZON: Wording(Kind.NOT_SENT, "occurrence too far in the future (over a year ahead)"),
    Reason.PRIVATE_EVENT: Wording(
        Kind.NOT_SENT, "private event, your setting is Don't sync", "", Action.OPTIONS, "Change"
    ),
    Reason.MADE_PRIVATE: Wording(
        Kind.DONE, "made private in the calendar, your setting is Don't sync: moved to the trash"
    ),
    Reason.DECLINED: Wording(Kind.NOT_SENT, "a meeting you declined"),
    Reason.NO_INCOMING_TYPE: Wording(
        Kind.NOT_SENT, "no activity type is chosen for calendar events", "", Action.OPTIONS, "Change"
    ),
    Reason.INCOMING_TYPE_INACTIVE: Wording(
        Kind.NOT_SENT,
        "the activity type chosen for calendar events is deactivated",
        "",
        Action.OPTIONS,
        "Change",
    ),
    Reason.NO_COMPANY: Wording(Kind.NOT_SENT, "your user belongs to no company"),
    Reason.UNREADABLE_EVENT: Wording(Kind.ERROR, "the calendar sent an event CalSync cannot read ({detail})"),
    Reason.NOT_APPLIED: Wording(Kind.ERROR, "the calendar change could not be applied ({detail})"),
    Reason.DUPLICATE_MEETING: Wording(
        Kind.NOT_SENT, "another event of this calendar already stands for this meeting"
    ),
    Reason.SERIES_KEPT: Wording(
        Kind.NOT_SENT, "its activity was given away or deleted, but a recurring series is never deleted"
    ),
    Reason.REASSIGNED: Wording(Kind.NOT_SENT, "given to another user: no longer synced with this calendar"),
    Reason.ACTIVITY_GONE: Wording(Kind.NOT_SENT, "the activity was deleted meanwhile"),
    Reason.LINKED_ELSEWHERE: Wording(Kind.NOT_SENT, "the activity is linked to another event"),
    Reason.MEETING_IN_PROGRESS: Wording(
        Kind.WAITING, "a colleague's sync is making this meeting's activity; the next sync links it"
    ),
    Reason.UNCONFIRMED_DELETION: Wording(
        Kind.ERROR,
        "missing from the calendar's listing but could not be read ({detail}); checked again next time",
    ),
    Reason.DETACHED: Wording(
        Kind.NOT_SENT, "no longer linked to an activity: the calendar's change is not applied"
    ),
    Reason.SENT: Wording(Kind.DONE, "sent to the calendar"),
    Reason.SENT_UPDATE: Wording(Kind.DONE, "change sent to the calendar"),
    Reason.SENT_DELETION: Wording(Kind.DONE, "deleted from the calendar"),
    Reason.IMPORTED: Wording(Kind.DONE, "imported as an activity"),
    Reason.APPLIED: Wording(Kind.DONE, "calendar change applied"),
    Reason.OCCURRENCE_APPLIED: Wording(Kind.DONE, "occurrence edited in the calendar, applied"),
    Reason.TRASHED: Wording(Kind.DONE, "deleted in the calendar: activity moved to the trash"),
}


def reason_of(code: str) -> Reason | None:
    """The ``Reason`` a stored code names; None for an empty or unknown (older) code."""
    try:
        return Reason(code)
    except ValueError:
        return None
