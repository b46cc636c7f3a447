"""What the account header says about the sync (R9, O9): one read model for the page and its polling fragment.

``account_status`` turns the account's state, its lease, its queued request and its latest
``SyncRun`` (the runner writes counts into a running one as it goes) into one ``SyncStatus``.
The template shows it; while a sync is queued or running the fragment asks again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.timesince import timesince
from django.utils.translation import ngettext

from calendarsync.models import AccountState, CalendarAccount, SyncPreferences, SyncRun
from calendarsync.sync.runner import lease_length
from calendarsync.tasks import REQUEST_STALE_AFTER

# A sync that ended less than this ago is reported with what it did ("Synced 3 activities, ...").
JUST_NOW = dt.timedelta(minutes=1)


class Phase(models.TextChoices):
    """Where the account's sync stands; the label is the badge the page shows."""

    NOT_STARTED = "not_started", "Not started"  # connected; the user has not pressed Start sync (O9)
    QUEUED = "queued", "Syncing…"  # a sync was requested and no worker has taken it yet
    RUNNING = "running", "Syncing…"  # a worker holds the account's lease
    WAITING = "waiting", "Active"  # started, never synced, nothing queued (the interval sync runs it)
    SYNCED = "synced", "Active"
    NEEDS_RECONNECT = AccountState.NEEDS_RECONNECT.value, AccountState.NEEDS_RECONNECT.label
    INSUFFICIENT_PERMISSIONS = (
        AccountState.INSUFFICIENT_PERMISSIONS.value,
        AccountState.INSUFFICIENT_PERMISSIONS.label,
    )
    ERROR = AccountState.ERROR.value, AccountState.ERROR.label


POLLING_PHASES = frozenset({Phase.QUEUED, Phase.RUNNING})


@dataclass(frozen=True)
class Counts:
    """What a run did: CRM activities sent to the calendar, calendar events brought into the CRM."""

    activities: int = 0
    events: int = 0

    @classmethod
    def of_run(cls, counts: Mapping[str, Any]) -> Counts:
        return cls(activities=_changed(counts.get("pushed")), events=_changed(counts.get("pulled")))

    @property
    def activities_text(self) -> str:
        return ngettext("%(n)d activity", "%(n)d activities", self.activities) % {"n": self.activities}

    @property
    def events_text(self) -> str:
        return ngettext("%(n)d event", "%(n)d events", self.events) % {"n": self.events}


def _changed(side: object) -> int:
    if not isinstance(side, Mapping):
        return 0
    return sum(int(side.get(key) or 0) for key in ("created", "updated", "deleted"))


@dataclass(frozen=True)
class SyncStatus:
    phase: Phase
    # RUNNING: what the run has done so far; SYNCED just now: what the last run did.
    counts: Counts | None = None
    last_synced_at: dt.datetime | None = None
    synced_ago: str = ""  # "2 minutes" (empty when ``just_now``)
    just_now: bool = False
    # Items the calendar refuses (R16), as the last run counted them.
    refused_items: int = 0

    @property
    def refused_text(self) -> str:
        return ngettext(
            "%(n)d item could not be synced", "%(n)d items could not be synced", self.refused_items
        ) % {"n": self.refused_items}

    @property
    def badge(self) -> str:
        return str(self.phase.label)

    @property
    def polls(self) -> bool:
        return self.phase in POLLING_PHASES


def account_status(
    account: CalendarAccount, preferences: SyncPreferences | None, *, now: dt.datetime | None = None
) -> SyncStatus:
    """The sync status the account header shows; at most one query (the latest run's counts)."""
    now = now or timezone.now()
    phase = _phase(account, preferences, now)
    refused = account.refused_items if phase != Phase.NOT_STARTED else 0
    if phase == Phase.RUNNING:
        return SyncStatus(phase, counts=_running_counts(account, now), refused_items=refused)
    if phase != Phase.SYNCED or account.last_synced_at is None:
        return SyncStatus(phase, last_synced_at=account.last_synced_at, refused_items=refused)
    last = account.last_synced_at
    if now - last < JUST_NOW:
        return SyncStatus(
            phase,
            counts=_finished_counts(account, last),
            last_synced_at=last,
            just_now=True,
            refused_items=refused,
        )
    return SyncStatus(
        phase, last_synced_at=last, synced_ago=timesince(last, now, depth=1), refused_items=refused
    )


def _phase(account: CalendarAccount, preferences: SyncPreferences | None, now: dt.datetime) -> Phase:
    if account.state == AccountState.NEEDS_RECONNECT:
        return Phase.NEEDS_RECONNECT
    if account.state == AccountState.INSUFFICIENT_PERMISSIONS:
        return Phase.INSUFFICIENT_PERMISSIONS
    if preferences is None or preferences.sync_started_at is None or preferences.sync_stopped_at is not None:
        return Phase.NOT_STARTED
    lease = account.sync_lease_until
    if account.state == AccountState.SYNCING and lease is not None and lease > now:
        return Phase.RUNNING
    if account.state == AccountState.ERROR:
        return Phase.ERROR
    requested = account.sync_requested_at
    if requested is not None and requested > now - REQUEST_STALE_AFTER:
        return Phase.QUEUED
    return Phase.WAITING if account.last_synced_at is None else Phase.SYNCED


def _running_counts(account: CalendarAccount, now: dt.datetime) -> Counts:
    run = (
        SyncRun.objects.filter(
            account=account, outcome=SyncRun.Outcome.RUNNING, started_at__gte=now - lease_length()
        )
        .order_by("-started_at", "-pk")
        .values("counts")
        .first()
    )
    return Counts.of_run(run["counts"]) if run is not None else Counts()


def _finished_counts(account: CalendarAccount, synced_at: dt.datetime) -> Counts:
    # The run that set last_synced_at; a run that changed nothing leaves no row (zero counts).
    run = SyncRun.objects.filter(account=account, finished_at=synced_at).values("counts").first()
    return Counts.of_run(run["counts"]) if run is not None else Counts()
