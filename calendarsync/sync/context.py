"""What one sync run knows and what it reports: the context shared by pull and push, and the result."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.db.models import DateTimeField
from django.db.models.expressions import RawSQL

from activities.models import Activity, SyncStatus
from calendarsync.models import (
    CalendarAccount,
    ExternalVisibility,
    LinkOrigin,
    PrivateEvents,
    SyncPreferences,
    SyncType,
)
from calendarsync.providers.base import CalendarProvider, TransientError
from calendarsync.sync.mapping import Fields, details_block
from calendarsync.sync.merge import FieldConflict
from calendarsync.sync.reasons import WORDING, Kind, Reason

if TYPE_CHECKING:
    from accounts.models import User

DEFAULT_RECURRENCE_HORIZON_DAYS = 180
# A full listing (no cursor) covers this window; it runs on the first sync, when the cursor
# expired, and once a day so recurring occurrences entering the horizon are picked up (R7).
FULL_SYNC_WINDOW = dt.timedelta(days=366)
FULL_SYNC_INTERVAL = dt.timedelta(days=1)
READ_ONLY_OCCURRENCE = (
    "This is one occurrence of a recurring event from your calendar. "
    "Change it in the calendar; CalSync keeps it read-only."
)
_TAG_PATTERN = re.compile(r"^calsync-u(?P<user>\d+)-a(?P<activity>\d+)$")
# Progress reports during a run are written at most this often (a write per item would cost a query each).
PROGRESS_INTERVAL_SECONDS = 1.0
# O11: the CRM changes that mail a meeting's guests an update.
NOTIFYING_FIELDS = frozenset({"time", "location", "attendees"})


def recurrence_horizon() -> dt.timedelta:
    return dt.timedelta(
        days=getattr(settings, "CALSYNC_RECURRENCE_HORIZON_DAYS", DEFAULT_RECURRENCE_HORIZON_DAYS)
    )


def tag_for(activity: Activity) -> str:
    """Our private tag on events the CRM made: owner and activity (links after a crash or reconnect)."""
    return f"calsync-u{activity.owner_id}-a{activity.pk}"


def parse_tag(tag: str | None) -> tuple[int, int] | None:
    """(owner id, activity id) of one of our tags, else None."""
    match = _TAG_PATTERN.match(tag or "")
    return (int(match["user"]), int(match["activity"])) if match else None


def idempotency_key(activity: Activity, account: CalendarAccount, attempt: int = 0) -> str:
    """Creates are idempotent per (activity, account); ``attempt`` > 0 after the event was deleted."""
    base = f"activity-{activity.pk}-{account.pk}"
    return base if attempt == 0 else f"{base}-{attempt}"


@dataclass(frozen=True)
class Skip:
    """An item the run left alone or failed: ``reason`` for the log, ``code`` for the user (D1)."""

    item: str
    reason: str
    code: Reason
    title: str = ""
    activity_id: int | None = None


@dataclass(frozen=True)
class LogEntry:
    """One line of the account's sync log (D2): ``action`` is a ``SyncRunEntry.Action`` value."""

    action: str
    code: Reason
    title: str
    detail: str = ""
    activity_id: int | None = None
    external_id: str = ""


# A run keeps at most this many skip lines per side (a first full sync may list thousands of
# events it does not import; the counts stay exact), and changes and failures up to the second
# limit, so a failure is never crowded out by skips.
MAX_LOG_SKIPS = 1000
MAX_LOG_ENTRIES = 5000


@dataclass
class SideCounts:
    """What one run changed on one side (the CRM: pulled; the calendar: pushed)."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    skipped: list[Skip] = field(default_factory=list)
    errors: list[Skip] = field(default_factory=list)
    conflicts: list[dict[str, str]] = field(default_factory=list)
    entries: list[LogEntry] = field(default_factory=list)

    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)

    def done(
        self, action: str, code: Reason, title: str, *, activity_id: int | None = None, external_id: str = ""
    ) -> None:
        """Count a change the run made (``action``: created, updated or deleted) and log it."""
        setattr(self, action, getattr(self, action) + 1)
        self._log(LogEntry(action, code, title, "", activity_id, external_id))

    def skip(self, skip: Skip, *, log: bool = True) -> None:
        self.skipped.append(skip)
        if log:
            self._log(
                LogEntry("skipped", skip.code, skip.title, skip.reason, skip.activity_id, _event_id(skip))
            )

    def fail(self, skip: Skip) -> None:
        self.errors.append(skip)
        self._log(LogEntry("failed", skip.code, skip.title, skip.reason, skip.activity_id, _event_id(skip)))

    def _log(self, entry: LogEntry) -> None:
        if (
            entry.action == "skipped"
            and WORDING[entry.code].kind != Kind.ERROR
            and len(self.skipped) > MAX_LOG_SKIPS
        ):
            return
        if len(self.entries) < MAX_LOG_ENTRIES:
            self.entries.append(entry)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "deleted": self.deleted,
            "skipped": len(self.skipped),
            "skipped_reasons": dict(Counter(skip.reason for skip in self.skipped)),
            "errors": [{"item": e.item, "reason": e.reason} for e in self.errors[:20]],
            "conflicts": self.conflicts[:20],
        }


@dataclass
class SyncResult:
    calendar_id: str
    pulled: SideCounts = field(default_factory=SideCounts)
    pushed: SideCounts = field(default_factory=SideCounts)
    cursor: str | None = None
    full_sync: bool = False
    cursor_expired: bool = False
    # Some item failed transiently: run again soon. While pulled changes are unsettled the
    # old cursor is kept, so the calendar lists them again (nothing is dropped, R10).
    transient: TransientError | None = None
    pull_incomplete: bool = False

    @property
    def changed(self) -> bool:
        return self.pulled.changed() or self.pushed.changed()

    def progress_key(self) -> tuple[int, ...]:
        """What a progress report shows: items changed on each side so far."""
        return tuple(
            count
            for side in (self.pulled, self.pushed)
            for count in (side.created, side.updated, side.deleted)
        )

    @property
    def idle(self) -> bool:
        """Nothing happened at all: no change, skip, error or conflict, no full listing."""
        sides = (self.pulled, self.pushed)
        return (
            not self.changed
            and not self.full_sync
            and self.transient is None
            and not any(side.skipped or side.errors or side.conflicts for side in sides)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "pulled": self.pulled.as_dict(),
            "pushed": self.pushed.as_dict(),
            "full_sync": self.full_sync,
            "cursor_expired": self.cursor_expired,
        }


@dataclass
class SyncContext:
    account: CalendarAccount
    preferences: SyncPreferences
    provider: CalendarProvider
    calendar_id: str
    owner: User
    now: dt.datetime
    result: SyncResult
    # Activities settled by the pull; the push leaves them alone this run.
    handled: set[int] = field(default_factory=set)
    # Series of which this account links an occurrence (R14): their other occurrences belong to
    # the sync whenever they were made (set by each pull for the series it lists).
    synced_series: set[str] = field(default_factory=set)
    # The push marked an event for deletion (its activity was deleted while it was made).
    deletions_queued: bool = False
    # Told what the run has changed so far (the caller records it, so the page can show progress).
    progress: Callable[[SyncResult], None] | None = None
    _outgoing_type_ids: set[int] | None = None
    _progress_reported: tuple[tuple[int, ...], float] | None = None

    def set_status(
        self,
        activity_ids: dict[int, dt.datetime | None],
        status: SyncStatus,
        code: Reason,
        reason: str = "",
        *,
        acknowledge: bool = True,
    ) -> None:
        """``set_status`` for this run's account, at this run's time."""
        set_status(
            activity_ids, self.account, status, reason, code=code, now=self.now, acknowledge=acknowledge
        )

    def report_progress(self, *, force: bool = False) -> None:
        """Hand the counts so far to ``progress``: only when they changed, and at most once a second
        unless ``force``d (at the end of each phase). A run that changes nothing reports nothing."""
        if self.progress is None:
            return
        key = self.result.progress_key()
        now = time.monotonic()
        if self._progress_reported is None:
            if not any(key):
                return
        else:
            last_key, last_at = self._progress_reported
            if key == last_key or (not force and now - last_at < PROGRESS_INTERVAL_SECONDS):
                return
        self._progress_reported = (key, now)
        self.progress(self.result)

    @property
    def tz(self) -> ZoneInfo:
        return self.owner.tzinfo

    @property
    def two_way(self) -> bool:
        return self.preferences.sync_type == SyncType.TWO_WAY

    @property
    def started_at(self) -> dt.datetime:
        started = self.preferences.sync_started_at
        if started is None:  # the engine refuses accounts whose sync is not started
            raise ValueError("sync is not started")
        return started

    @property
    def excluded_emails(self) -> frozenset[str]:
        """The account's own addresses: the calendar lists them as organizer, never a guest."""
        return frozenset({self.account.email.lower(), self.owner.email.lower()})

    @property
    def guests_stay_in_crm(self) -> bool:
        """O11 where the calendar mails guests whenever they are written (Graph): with
        invitations off, a meeting's guests are never written to the calendar."""
        return self.provider.always_notifies_guests and not self.preferences.send_invitations

    def notifies_guests(self, fields: Collection[str]) -> bool:
        """O11: a CRM change of time, place or guests mails the guests an update (if the user
        wants invitations); any other write mails no one."""
        return self.preferences.send_invitations and bool(NOTIFYING_FIELDS.intersection(fields))

    def video_call(self, activity: Activity) -> bool:
        """M4: the activity asks for a video call and the calendar can add one."""
        return activity.video_call and self.provider.video_call_service is not None

    def outgoing_type_ids(self) -> set[int]:
        if self._outgoing_type_ids is None:
            self._outgoing_type_ids = set(self.preferences.outgoing_types.values_list("pk", flat=True))
        return self._outgoing_type_ids

    def type_selected(self, activity: Activity) -> bool:
        annotated = getattr(activity, "type_selected", None)
        if annotated is not None:
            return bool(annotated)
        return activity.type_id in self.outgoing_type_ids()

    def private_for_crm(self, origin: str, event_private: bool) -> bool:
        """How a calendar privacy flag shows in the CRM (O5, O6; two-way, calendar-made items).

        CRM-made items and one-way sync keep the flag as is: an activity made private in the
        CRM is a private event, and the other way round.
        """
        if origin == LinkOrigin.CRM or not self.two_way:
            return event_private
        if event_private:
            return self.preferences.private_events != PrivateEvents.EVERYONE
        return self.preferences.external_visibility == ExternalVisibility.ONLY_ME

    def to_crm_for(self, origin: str) -> Any:
        def translate(name: str, value: Any) -> Any:
            return self.private_for_crm(origin, bool(value)) if name == "private" else value

        return translate

    def details_for(self, activity: Activity) -> str:
        return details_block(activity) if self.preferences.include_details else ""


def _event_id(skip: Skip) -> str:
    return "" if skip.activity_id is not None and skip.item == f"activity {skip.activity_id}" else skip.item


def conflicts_as_dicts(item: str, conflicts: list[FieldConflict]) -> list[dict[str, str]]:
    return [{"item": item, **conflict.as_dict()} for conflict in conflicts]


def set_status(
    activity_ids: dict[int, dt.datetime | None],
    account: CalendarAccount,
    status: SyncStatus,
    reason: str = "",
    *,
    code: Reason,
    now: dt.datetime,
    acknowledge: bool = True,
) -> None:
    """One UPDATE: sync status (R9), why (D1) and, with ``acknowledge``, the change the run processed.

    ``sync_seen_at`` gets the ``sync_changed_at`` each activity had when the run read it, so
    an edit saved meanwhile stays due and is pushed by the next run (R10).
    """
    if not activity_ids:
        return
    values: dict[str, Any] = {
        "sync_status": status,
        "sync_error": reason[:500],
        "sync_code": code,
        "sync_status_at": now,
        "calendar_account_id": account.pk,
    }
    if acknowledge:
        values["sync_seen_at"] = _seen_values(activity_ids)
    Activity.objects.filter(pk__in=list(activity_ids)).update(**values)


def _seen_values(activity_ids: dict[int, dt.datetime | None]) -> Any:
    """A per-row value as one simple CASE on the primary key.

    Written as SQL because the ORM's ``Case(When(pk=...))`` costs a lookup resolution per
    row (tens of milliseconds for a bulk push of a few hundred activities).
    """
    pk_column = connection.ops.quote_name(Activity._meta.pk.column)
    seen_column = connection.ops.quote_name(Activity._meta.get_field("sync_seen_at").column)
    branches = " ".join("WHEN %s THEN %s" for _ in activity_ids)
    params = [value for pk, changed in activity_ids.items() for value in (pk, changed)]
    # S611: only quoted column names are interpolated; every value is a query parameter.
    return RawSQL(f"CASE {pk_column} {branches} ELSE {seen_column} END", params, output_field=DateTimeField())  # noqa: S611


def fields_of_snapshot(snapshot: Any, side: str) -> Fields | None:
    if isinstance(snapshot, dict) and isinstance(snapshot.get(side), dict):
        return dict(snapshot[side])
    return None
