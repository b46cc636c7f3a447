"""The calendar provider protocol: our own dataclasses in and out, one error hierarchy.

Every provider adapter (Google, Microsoft 365, Exchange) implements ``CalendarProvider``
and speaks only in these types, so the engine never sees a provider's raw JSON. Errors
are raised as ``ProviderError`` subclasses; turning them into account and item state
happens in one place in the engine (CONVENTIONS, habit 3).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal, Protocol

from calendarsync.providers.redaction import error_code, redact

# --------------------------------------------------------------------------- errors


class ProviderError(Exception):
    """Base of every provider failure. ``permanent`` errors are not worth retrying as is.

    ``message`` is for the log only (it may carry what the provider said); ``code`` is the
    provider's error code (Google's reason, Graph's error.code, an EWS ResponseCode, a token
    endpoint's error, an HTTP status), kept only when it is a short plain token. What is stored
    and shown is built from the error's class and ``code`` (``calendarsync.sync.errors``).
    """

    permanent: bool = True

    def __init__(self, message: str, *, permanent: bool | None = None, code: str | int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = error_code(code)
        if permanent is not None:
            self.permanent = permanent

    def __str__(self) -> str:
        return redact(self.message)

    def __repr__(self) -> str:
        code = f", code={self.code!r}" if self.code else ""
        return f"{type(self).__name__}({redact(self.message)!r}{code})"


class TransientError(ProviderError):
    """Rate limit, server error, timeout or reset: try again later (after ``retry_after`` seconds)."""

    permanent = False

    def __init__(
        self, message: str, retry_after: float | None = None, *, code: str | int | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class AuthRevoked(ProviderError):
    """The refresh token or password no longer works: the user must reconnect (R9, R10)."""


class InsufficientPermissions(ProviderError):
    """Calendar access was not granted or the provider answers "forbidden" (C4)."""


class CursorExpired(ProviderError):
    """The incremental-sync cursor is no longer valid: do a full listing (cursor=None) again."""


class Conflict(ProviderError):
    """The event changed on the provider since we read it (stale etag): re-read, then decide."""


class NotFound(ProviderError):
    """The event does not exist (any more) on the provider."""


class InvalidEvent(ProviderError):
    """The provider refused what we wrote, or sent an event we cannot understand."""


# --------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class Attendee:
    email: str
    name: str = ""
    # Provider-neutral response: "accepted", "declined", "tentative" or "needsAction".
    response: str = "needsAction"
    optional: bool = False
    # The provider's own entry as read (opaque to the engine): an update that keeps this attendee
    # sends it back as it was, so what we do not model (RSVP time, organizer, self, comments...)
    # is never overwritten (R11).
    raw: Any = field(default=None, compare=False, repr=False)


# What ``update_event`` can write, by name (``fields``): the content fields, our private tag, and
# a request for a video call (``EventData.video_call``: adds one, never removes one).
CONTENT_FIELDS = ("subject", "time", "location", "description", "attendees", "busy", "private")
TAG = "tag"
VIDEO_CALL = "video_call"
ALL_FIELDS = frozenset((*CONTENT_FIELDS, TAG, VIDEO_CALL))

# Provider-neutral RSVP answers (``Attendee.response``, ``RemoteEvent.my_response``).
ACCEPTED, DECLINED, TENTATIVE, NEEDS_ACTION = "accepted", "declined", "tentative", "needsAction"
RESPONSES = (ACCEPTED, DECLINED, TENTATIVE, NEEDS_ACTION)


def fields_to_write(fields: Collection[str] | None) -> frozenset[str]:
    """The fields an update writes: ``None`` means all of them; an unknown name is refused."""
    if fields is None:
        return ALL_FIELDS
    unknown = set(fields) - ALL_FIELDS
    if unknown:
        raise InvalidEvent(f"unknown event fields: {sorted(unknown)}")
    return frozenset(fields)


@dataclass(frozen=True, slots=True, kw_only=True)
class EventData:
    """What we write to a calendar (and the content part of what we read).

    A timed event has aware ``start``/``end``; an all-day event has ``start_date``/
    ``end_date`` instead, ``end_date`` exclusive (Google-style: a one-day event on
    the 5th has start_date=5th, end_date=6th). All-day items stay dates, never
    midnight datetimes, so they do not move a day west of UTC.
    """

    subject: str
    start: datetime | None = None
    end: datetime | None = None
    start_date: date | None = None
    end_date: date | None = None
    location: str = ""
    description: str = ""
    attendees: tuple[Attendee, ...] = ()
    busy: bool = True
    private: bool = False
    tag: str | None = None
    # Ask the calendar for a video call (Google Meet, Microsoft Teams) when creating, or when
    # ``VIDEO_CALL`` is among the fields an update writes; ignored where unsupported.
    video_call: bool = False

    @property
    def all_day(self) -> bool:
        return self.start_date is not None

    def validate(self) -> None:
        """Raise ``InvalidEvent`` unless this is a well-formed timed or all-day event."""
        validate_event_data(self)

    def content(self) -> EventData:
        """Just the content fields, as a plain ``EventData`` (drops provider metadata)."""
        return EventData(
            subject=self.subject,
            start=self.start,
            end=self.end,
            start_date=self.start_date,
            end_date=self.end_date,
            location=self.location,
            description=self.description,
            attendees=self.attendees,
            busy=self.busy,
            private=self.private,
            tag=self.tag,
            video_call=self.video_call,
        )


def validate_event_data(event: EventData) -> None:
    """End after start; timed events use aware datetimes, all-day events use dates only."""
    timed = event.start is not None or event.end is not None
    dated = event.start_date is not None or event.end_date is not None
    if timed and dated:
        raise InvalidEvent("an event is either timed (start/end) or all-day (start_date/end_date), not both")
    if timed:
        if event.start is None or event.end is None:
            raise InvalidEvent("a timed event needs both start and end")
        if event.start.tzinfo is None or event.start.utcoffset() is None:
            raise InvalidEvent("start must be an aware datetime")
        if event.end.tzinfo is None or event.end.utcoffset() is None:
            raise InvalidEvent("end must be an aware datetime")
        if event.end <= event.start:
            raise InvalidEvent("end must be after start")
    elif dated:
        if event.start_date is None or event.end_date is None:
            raise InvalidEvent("an all-day event needs both start_date and end_date")
        # datetime is a subclass of date: refuse it so all-day items stay dates.
        if isinstance(event.start_date, datetime) or isinstance(event.end_date, datetime):
            raise InvalidEvent("all-day events use dates, not datetimes")
        if event.end_date <= event.start_date:
            raise InvalidEvent("end_date is exclusive and must be after start_date")
    else:
        raise InvalidEvent("an event needs a start and an end")


def all_day_end_exclusive(last_day: date) -> date:
    """The exclusive end date of an all-day event whose last day is ``last_day``."""
    return last_day + timedelta(days=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteEvent(EventData):
    """An event as the provider holds it.

    Cancelled (deleted) events may come back as tombstones: ``is_cancelled`` set,
    content fields empty and ``updated`` possibly ``None``. Every other event has an
    aware ``updated`` stamp from the provider's clock (compare those, not local clocks).
    """

    external_id: str
    etag: str | None = None
    updated: datetime | None = None
    is_recurring_instance: bool = False
    series_id: str | None = None
    is_cancelled: bool = False
    # The iCalendar UID every copy of one meeting shares, in every attendee's calendar.
    ical_uid: str | None = None
    # The organizer's e-mail address; ``is_organizer``: this calendar's owner organizes it (so
    # this copy is the authoritative one). ``my_response``: this calendar owner's own RSVP when
    # invited (``RESPONSES``), None when organizing.
    organizer: str | None = None
    is_organizer: bool = True
    my_response: str | None = None
    # The link to join the event's video call, once the calendar has one (may come later than
    # the create that asked for it: ``video_call_pending``).
    join_url: str | None = None
    video_call_pending: bool = False
    # The link that opens the event in the provider's web calendar (``web_links.safe_web_url``).
    web_url: str | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of a change listing.

    ``deleted`` changes may carry the tombstone ``event``; a change that could not be
    understood has ``error`` set (skip it and record why, never fail the whole run): ``error``
    is for the log, ``code`` the provider's error code when a failed read made it unreadable.
    """

    external_id: str
    event: RemoteEvent | None
    deleted: bool = False
    error: str | None = None
    code: str | None = None

    @property
    def kind(self) -> Literal["upserted", "deleted", "skipped"]:
        if self.error is not None:
            return "skipped"
        return "deleted" if self.deleted else "upserted"


@dataclass(frozen=True, slots=True)
class ChangePage:
    """Every change since the given cursor (each event at most once) and the next cursor."""

    changes: tuple[Change, ...]
    cursor: str
    full_listing: bool = False


@dataclass(frozen=True, slots=True)
class RemoteCalendarInfo:
    external_id: str
    name: str
    is_primary: bool
    can_write: bool


# --------------------------------------------------------------------------- protocol


class CalendarProvider(Protocol):
    """What the sync engine needs from a calendar provider.

    All methods raise ``ProviderError`` subclasses only. Transient failures have
    already been retried a few times (honouring ``Retry-After``) when they surface.
    """

    #: True when an incremental listing reports the deletion of an event created after the
    #: cursor was taken, even though no listing ever returned that event (Google does; Graph
    #: delta and EWS SyncFolderItems do not, so the engine lists once more after creating).
    reports_unlisted_deletions: bool
    #: The video calls this calendar can add to an event ("Google Meet", "Microsoft Teams"), or
    #: None when it cannot (``EventData.video_call`` is then ignored).
    video_call_service: str | None
    #: True when the calendar mails guests whenever a meeting's guests are written at all (Graph:
    #: creating or updating an event with attendees always sends invitations or updates), so
    #: ``notify=False`` cannot hold for a write that includes guests.
    always_notifies_guests: bool

    def list_calendars(self) -> list[RemoteCalendarInfo]: ...

    def list_changes(
        self,
        calendar_id: str,
        cursor: str | None,
        *,
        window_start: datetime,
        window_end: datetime,
    ) -> ChangePage:
        """All changes since ``cursor`` (all pages), recurring events expanded into instances.

        ``cursor=None`` lists every event of the window and returns a fresh cursor.
        Raises ``CursorExpired`` when the cursor is no longer accepted.
        """
        ...

    def create_event(
        self, calendar_id: str, event: EventData, *, idempotency_key: str, notify: bool = False
    ) -> RemoteEvent:
        """Create once: repeating the call with the same key returns the same event.

        ``notify``: the calendar mails invitations to the event's guests (Google
        ``sendUpdates=all``, EWS ``SendToAllAndSaveCopy``); otherwise it sends none. A repeat
        that finds the event already made sends nothing either way.
        If the event made under this key was deleted in the calendar since, raises
        ``Conflict``: recreating it takes a new key.
        """
        ...

    def create_events(
        self, calendar_id: str, items: list[tuple[EventData, str]], *, notify: bool = False
    ) -> list[RemoteEvent | ProviderError]:
        """Bulk ``create_event`` of (event, idempotency_key) pairs; one result per item, in order.

        Per-item failures come back in the list; a dead grant raises ``AuthRevoked``.
        """
        ...

    def update_event(
        self,
        calendar_id: str,
        external_id: str,
        event: EventData,
        *,
        etag: str | None,
        fields: Collection[str] | None = None,
        notify: bool = False,
    ) -> RemoteEvent:
        """Write ``fields`` of ``event`` (names of ``ALL_FIELDS``; None: all) and nothing else (R11).

        With an ``etag``, raise ``Conflict`` if the event changed since. Attendees are written as
        ``event.attendees`` lists them: entries carrying ``raw`` go back as the provider gave them.
        ``notify``: the calendar mails the guests an update (and invitations to new guests);
        otherwise none (except where ``always_notifies_guests``).
        """
        ...

    def delete_event(
        self, calendar_id: str, external_id: str, *, etag: str | None = None, notify: bool = False
    ) -> None:
        """Delete; deleting an event that is already gone is not an error.

        ``notify``: the calendar mails the guests a cancellation; otherwise none (except where
        ``always_notifies_guests``).
        """
        ...

    def get_event(self, calendar_id: str, external_id: str) -> RemoteEvent:
        """The live event; raises ``NotFound`` if it does not exist or was deleted."""
        ...

    def find_by_tag(self, calendar_id: str, tag: str) -> RemoteEvent | None:
        """The live event we tagged with ``tag`` (our activity id), if any."""
        ...


__all__ = [
    "ACCEPTED",
    "ALL_FIELDS",
    "CONTENT_FIELDS",
    "DECLINED",
    "NEEDS_ACTION",
    "RESPONSES",
    "TAG",
    "TENTATIVE",
    "VIDEO_CALL",
    "Attendee",
    "AuthRevoked",
    "CalendarProvider",
    "Change",
    "ChangePage",
    "Conflict",
    "CursorExpired",
    "EventData",
    "InsufficientPermissions",
    "InvalidEvent",
    "NotFound",
    "ProviderError",
    "RemoteCalendarInfo",
    "RemoteEvent",
    "TransientError",
    "all_day_end_exclusive",
    "fields_to_write",
    "validate_event_data",
]


def same_content(
    remote: RemoteEvent,
    wanted: EventData,
    fields: Collection[str] | None = None,
    *,
    description: Callable[[str], str] = str,
) -> bool:
    """Does the provider's event already hold what we meant to write (of ``fields``)?

    Used after a failed conditional write (412, ChangeKey) to tell our own earlier write from a
    user's edit. ``description`` normalises our text the way the provider stores it.
    """
    written = fields_to_write(fields)
    checks = {
        "subject": remote.subject == wanted.subject,
        "time": (remote.start, remote.end, remote.start_date, remote.end_date)
        == (wanted.start, wanted.end, wanted.start_date, wanted.end_date),
        "location": remote.location == wanted.location,
        "description": remote.description == description(wanted.description),
        "busy": remote.busy == wanted.busy,
        "private": remote.private == wanted.private,
        "attendees": {a.email.lower() for a in remote.attendees}
        == {a.email.lower() for a in wanted.attendees},
        TAG: wanted.tag is None or remote.tag == wanted.tag,
    }
    return all(ok for name, ok in checks.items() if name in written)
