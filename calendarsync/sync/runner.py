"""Run the engine for one account: claim it, sync, store the cursor and the outcome (R9, R10).

No Celery here (``tasks.py`` is the thin wrapper). An account is claimed with one conditional
UPDATE (a lease with a token, the healthchecks pattern), so two workers never sync it at once
and a worker that dies mid-run only delays the next run until its lease expires. A run that
finds nothing to do costs three SQL queries (claim, load, finish) and one HTTP request; every
run that changed, skipped or failed something is also recorded as a ``SyncRun``; a run that
changes items writes that row as it goes (outcome "running", its counts so far), so the
preferences page can show the first sync's progress.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from activities.models import Activity
from calendarsync.models import (
    AccountState,
    CalendarAccount,
    EventLink,
    LinkState,
    SyncPreferences,
    SyncRun,
    SyncRunEntry,
)
from calendarsync.providers.base import CalendarProvider, ProviderError
from calendarsync.providers.redaction import redact
from calendarsync.sync import item_errors
from calendarsync.sync.accounts import provider_for
from calendarsync.sync.context import SyncResult
from calendarsync.sync.engine import NothingToSync, cursor_fields, sync
from calendarsync.sync.errors import DETAIL_MAX, classify, error_summary, item_failures_detail
from calendarsync.sync.push import upcoming_or_linked

logger = logging.getLogger(__name__)

SYNCABLE_STATES = (AccountState.ACTIVE, AccountState.SYNCING, AccountState.ERROR)
DEFAULT_LEASE_SECONDS = 600
DEFAULT_RUN_RETENTION_DAYS = 14
# Transient failures in a row before the account shows "Error" (it keeps retrying).
FAILURES_BEFORE_ERROR_STATE = 5
# Beat ticks once a minute, a little early or late, and a run starts a moment after its tick: an
# account due within this much of a tick is taken on that tick, so the interval users get is the
# configured one, not one more minute (see the README's sync section).
BEAT_TOLERANCE = dt.timedelta(seconds=15)

ProviderFactory = Callable[[CalendarAccount], CalendarProvider]


class RunStatus(enum.StrEnum):
    OK = "ok"
    BUSY = "busy"  # another worker holds the account
    NOT_SYNCING = "not_syncing"  # stopped, blocked, not started, or no adapter
    RETRY = "retry"  # transient failure: run again after ``retry_after``
    THROTTLED = "throttled"  # the provider asked to wait (Retry-After): not before ``retry_after``
    BLOCKED = "blocked"  # the user must act (reconnect, permissions): no retry
    FAILED = "failed"


@dataclass(frozen=True)
class RunOutcome:
    account_id: int
    status: RunStatus
    result: SyncResult | None = None
    error: str = ""
    retry_after: float | None = None


def sync_interval() -> dt.timedelta:
    interval: dt.timedelta = settings.CALSYNC_SYNC_INTERVAL
    return interval


def lease_length() -> dt.timedelta:
    return dt.timedelta(seconds=getattr(settings, "CALSYNC_SYNC_LEASE_SECONDS", DEFAULT_LEASE_SECONDS))


def syncing_accounts() -> QuerySet[CalendarAccount]:
    """Accounts whose sync is started and not stopped, with a calendar, in a state that syncs."""
    started = SyncPreferences.objects.filter(
        account_id=OuterRef("pk"),
        sync_started_at__isnull=False,
        sync_stopped_at__isnull=True,
        calendar__isnull=False,
    )
    return CalendarAccount.objects.filter(Exists(started), stopped_at__isnull=True, state__in=SYNCABLE_STATES)


def _lease_free(now: dt.datetime) -> Q:
    return Q(sync_lease_until__isnull=True) | Q(sync_lease_until__lte=now)


def _not_throttled(now: dt.datetime) -> Q:
    """The provider's Retry-After is over (or there was none): calling it again is allowed."""
    return Q(sync_not_before__isnull=True) | Q(sync_not_before__lte=now)


def _schedule(started: dt.datetime, finished: dt.datetime, retry_after: float | None) -> dict[str, object]:
    """When the account runs next: an interval after this run started (so runs start an interval
    apart, whatever they take), and never before the provider's Retry-After."""
    next_sync_at = started + sync_interval()
    if retry_after is None:
        return {"next_sync_at": next_sync_at, "sync_not_before": None}
    not_before = finished + dt.timedelta(seconds=retry_after)
    return {"next_sync_at": max(next_sync_at, not_before), "sync_not_before": not_before}


def claim(account_id: int, now: dt.datetime) -> str | None:
    """Take the account for one run (one conditional UPDATE); the lease token, or None if taken.

    Only the account's own columns are tested, so the UPDATE stays cheap and atomic; an
    account whose sync is not started is released again right after loading it.
    """
    token = uuid.uuid4().hex
    claimed = CalendarAccount.objects.filter(
        _lease_free(now),
        _not_throttled(now),
        pk=account_id,
        stopped_at__isnull=True,
        state__in=SYNCABLE_STATES,
    ).update(
        state=AccountState.SYNCING,
        sync_lease_until=now + lease_length(),
        sync_lease_token=token,
        sync_requested_at=None,
    )
    return token if claimed else None


def earliest_local_date(now: dt.datetime) -> dt.date:
    """The earliest "today" anywhere on Earth at ``now`` (UTC-12).

    The load's cheap "anything due?" check runs before the owner's zone is known: judged by this
    day, it never misses an item the push, judging by the owner's own day, would send (R2).
    """
    return (now.astimezone(dt.UTC) - dt.timedelta(hours=12)).date()


def _load(account_id: int, today: dt.date, now: dt.datetime) -> CalendarAccount:
    """The account with what the engine needs, and whether pushes or deletions are waiting.

    Items the calendar refused wait for their backoff (R16): they make no run busy meanwhile.
    """
    due = (
        Activity.objects.filter(
            owner_id=OuterRef("user_id"),
            # R2: since the user's first start (carried over a reconnect), else this account's start.
            sync_changed_at__gte=Coalesce(
                OuterRef("preferences__crm_changes_since"), OuterRef("preferences__sync_started_at")
            ),
        )
        .filter(upcoming_or_linked(today))
        .filter(Q(sync_seen_at__isnull=True) | Q(sync_changed_at__gt=F("sync_seen_at")))
        .exclude(item_errors.push_waiting(OuterRef(OuterRef("pk")), now))
    )
    deletions = EventLink.objects.filter(account_id=OuterRef("pk"), state=LinkState.DELETE_PENDING).exclude(
        item_errors.deletion_waiting(OuterRef(OuterRef("pk")), now)
    )
    refused = item_errors.counts_subqueries(OuterRef("pk"), now)
    return (
        CalendarAccount.objects.select_related(
            "user", "preferences", "preferences__calendar", "preferences__incoming_type"
        )
        .annotate(
            has_due_activities=Exists(due),
            has_pending_deletions=Exists(deletions),
            **refused,
        )
        .get(pk=account_id)
    )


class RunRecorder:
    """The run's ``SyncRun`` row: written with the counts so far while the engine works, then finished.

    Nothing is written until the run changes an item (an idle run stays a row-less run); a row
    left "running" by a worker that died is closed when the account's next run writes its own.
    """

    def __init__(self, account_id: int, started: dt.datetime) -> None:
        self.account_id = account_id
        self.started = started
        self.run_id: int | None = None
        self.counts: dict[str, object] = {}
        # The engine's result so far: a run that fails still logs what it did before (D2).
        self.result: SyncResult | None = None

    def watch(self, result: SyncResult) -> None:
        """The engine's result from its start: what a failed run did is still logged (D2)."""
        self.result = result

    def __call__(self, result: SyncResult) -> None:
        """The engine's progress callback."""
        self.result = result
        self.counts = result.as_dict()
        if self.run_id is not None:
            SyncRun.objects.filter(pk=self.run_id).update(counts=self.counts, full_sync=result.full_sync)
            return
        SyncRun.objects.filter(account_id=self.account_id, outcome=SyncRun.Outcome.RUNNING).update(
            outcome=SyncRun.Outcome.FAILED, finished_at=timezone.now(), error="The run was interrupted"
        )
        self.run_id = SyncRun.objects.create(
            account_id=self.account_id,
            started_at=self.started,
            outcome=SyncRun.Outcome.RUNNING,
            full_sync=result.full_sync,
            counts=self.counts,
        ).pk

    def finish(
        self, *, finished: dt.datetime, outcome: SyncRun.Outcome, error: str, result: SyncResult | None = None
    ) -> None:
        fields: dict[str, object] = {"finished_at": finished, "outcome": outcome, "error": error}
        if result is not None:
            fields.update(counts=result.as_dict(), full_sync=result.full_sync)
        else:
            fields["counts"] = self.counts  # what the run had done before it failed
        if self.run_id is None or not SyncRun.objects.filter(pk=self.run_id).update(**fields):
            self.run_id = SyncRun.objects.create(
                account_id=self.account_id, started_at=self.started, **fields
            ).pk
        _log_entries(self.run_id, result or self.result)


def _log_entries(run_id: int, result: SyncResult | None) -> None:
    """D2: the run's log lines, one INSERT (none for a run that only counted)."""
    if result is None:
        return
    sides = ((SyncRunEntry.Direction.IN, result.pulled), (SyncRunEntry.Direction.OUT, result.pushed))
    named = {
        entry.activity_id for _, side in sides for entry in side.entries if entry.activity_id is not None
    }
    # An activity deleted since the run logged it is named by its title alone.
    alive = set(Activity.objects.filter(pk__in=named).values_list("pk", flat=True)) if named else set()
    entries = [
        SyncRunEntry(
            run_id=run_id,
            direction=direction,
            action=entry.action,
            code=entry.code,
            title=storable(entry.title, 255),
            detail=storable(entry.detail, 500),
            activity_id=entry.activity_id if entry.activity_id in alive else None,
            external_id=storable(entry.external_id, 1024),
        )
        for direction, side in sides
        for entry in side.entries
    ]
    if not entries:
        return
    try:
        with transaction.atomic():
            SyncRunEntry.objects.bulk_create(entries)
    except (DatabaseError, ValueError):
        # The log never costs the run: its bookkeeping is stored already.
        logger.exception("Calendar sync could not write the log of run %s", run_id)


def storable(text: str, limit: int) -> str:
    """Text any database stores: no NUL, no lone surrogate (both arrive in provider JSON), cut to ``limit``."""
    cleaned = text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    return cleaned[:limit]


def run_account_sync(
    account_id: int, *, provider_factory: ProviderFactory = provider_for, now: dt.datetime | None = None
) -> RunOutcome:
    """One sync of one account, start to finish; never raises for provider failures."""
    started = now or timezone.now()
    token = claim(account_id, started)
    if token is None:
        return _not_claimed(account_id, started)
    recorder = RunRecorder(account_id, started)
    try:
        account = _load(account_id, earliest_local_date(started), started)
        try:
            provider = provider_factory(account)
        except KeyError as exc:  # the registry has no adapter for this provider yet
            raise NothingToSync(str(exc)) from exc
        result = sync(
            account,
            provider,
            now=started,
            has_due_activities=bool(getattr(account, "has_due_activities", True)),
            has_pending_deletions=bool(getattr(account, "has_pending_deletions", True)),
            progress=recorder,
            on_result=recorder.watch,
        )
    except NothingToSync as exc:
        _release(account_id, token, AccountState.ACTIVE, str(exc))
        return RunOutcome(account_id, RunStatus.NOT_SYNCING, error=str(exc))
    except Exception as exc:
        if isinstance(exc, ProviderError):
            logger.debug("Calendar sync of account %s failed: %s", account_id, redact(repr(exc)))
        else:
            logger.exception("Calendar sync of account %s failed", account_id)
        return _failed(account_id, token, exc, recorder)
    return _succeeded(account, token, result, recorder)


def _not_claimed(account_id: int, now: dt.datetime) -> RunOutcome:
    """Why the account could not be claimed: another worker has it, the provider asked to wait, or
    it does not sync at all."""
    account = syncing_accounts().filter(pk=account_id).values("sync_not_before").first()
    if account is None:
        return RunOutcome(account_id, RunStatus.NOT_SYNCING)
    not_before = account["sync_not_before"]
    if not_before is not None and not_before > now:
        return RunOutcome(account_id, RunStatus.THROTTLED, retry_after=(not_before - now).total_seconds())
    return RunOutcome(account_id, RunStatus.BUSY)


def _succeeded(account: CalendarAccount, token: str, result: SyncResult, recorder: RunRecorder) -> RunOutcome:
    finished = timezone.now()
    fields: dict[str, object] = {
        **cursor_fields(account, result, recorder.started),
        "state": AccountState.ACTIVE,
        "state_detail": "",
        **_schedule(
            recorder.started, finished, result.transient.retry_after if result.transient is not None else None
        ),
        "sync_lease_until": None,
        "sync_lease_token": "",
    }
    refused = _refused_items(account, result, recorder.started)
    fields["refused_items"] = refused.failing
    if refused.lasting:
        # R16: items refused for more than a day; the rest keeps syncing (see the README).
        fields.update(state=AccountState.ERROR, state_detail=item_failures_detail(refused.lasting))
    error = ""
    if result.transient is None:
        fields.update(last_synced_at=finished, last_sync_error="", sync_failures=0)
    else:
        error = classify(result.transient).account_detail[:DETAIL_MAX]
        fields.update(last_sync_error=error, sync_failures=F("sync_failures") + 1)
    if not CalendarAccount.objects.filter(pk=account.pk, sync_lease_token=token).update(**fields):
        logger.warning(
            "Calendar sync of account %s outlived its lease; its cursor was not stored", account.pk
        )
    if result.idle and recorder.run_id is None:
        # A run that found nothing is recorded on the account alone (last_synced_at): one row
        # per account every few minutes would say nothing and cost a write per run.
        return RunOutcome(account.pk, RunStatus.OK, result)
    recorder.finish(
        finished=finished,
        outcome=SyncRun.Outcome.OK if result.transient is None else SyncRun.Outcome.RETRY,
        error=error,
        result=result,
    )
    if result.transient is not None:
        return RunOutcome(
            account.pk, RunStatus.RETRY, result, error=error, retry_after=result.transient.retry_after
        )
    return RunOutcome(account.pk, RunStatus.OK, result)


def _refused_items(account: CalendarAccount, result: SyncResult, started: dt.datetime) -> item_errors.Counts:
    """The items the calendar refuses, and those refused for more than a day (R16).

    A run that changed nothing keeps what the load counted (no query); any other may have
    settled or refused items, and counts again.
    """
    if result.idle:
        return item_errors.Counts(
            failing=int(getattr(account, "refused_failing", 0) or 0),
            lasting=int(getattr(account, "refused_lasting", 0) or 0),
        )
    return item_errors.counts(account.pk, started)


def _failed(account_id: int, token: str, error: Exception, recorder: RunRecorder) -> RunOutcome:
    """The one place a failed run becomes account state (through ``errors.classify``)."""
    outcome = classify(error)
    detail = outcome.account_detail[:DETAIL_MAX]
    finished = timezone.now()
    fields: dict[str, object] = {
        "sync_lease_until": None,
        "sync_lease_token": "",
        "last_sync_error": detail,
        "sync_failures": F("sync_failures") + 1,
        **_schedule(recorder.started, finished, outcome.retry_after),
    }
    if outcome.blocks_account or outcome.account_state == AccountState.ERROR:
        fields.update(state=outcome.account_state, state_detail=detail)
    else:
        # Transient: keep syncing; after several failures in a row, show it (R9).
        fields["state"] = AccountState.ACTIVE
        account = CalendarAccount.objects.filter(pk=account_id).values("sync_failures").first()
        if account is not None and account["sync_failures"] + 1 >= FAILURES_BEFORE_ERROR_STATE:
            fields.update(state=AccountState.ERROR, state_detail=detail)
    CalendarAccount.objects.filter(pk=account_id, sync_lease_token=token).update(**fields)
    recorder.finish(
        finished=finished,
        outcome=SyncRun.Outcome.RETRY if outcome.retry else SyncRun.Outcome.FAILED,
        error=error_summary(error)[:DETAIL_MAX],
    )
    if outcome.blocks_account:
        status = RunStatus.BLOCKED
    elif outcome.retry:
        status = RunStatus.RETRY
    else:
        status = RunStatus.FAILED
    return RunOutcome(account_id, status, error=detail, retry_after=outcome.retry_after)


def _release(account_id: int, token: str, state: AccountState, detail: str) -> None:
    CalendarAccount.objects.filter(pk=account_id, sync_lease_token=token).update(
        state=state, last_sync_error=detail[:DETAIL_MAX], sync_lease_until=None, sync_lease_token=""
    )


# --------------------------------------------------------------------------- scheduling


def due_account_ids(now: dt.datetime, limit: int = 5000) -> list[int]:
    """Accounts due for their interval sync; their next due time moves on so beat enqueues once.

    Due means due by the next moment a tick may come (``BEAT_TOLERANCE``); a Retry-After is
    honoured to the second.
    """
    ids = list(
        syncing_accounts()
        .filter(_lease_free(now), _not_throttled(now))
        .filter(Q(next_sync_at__isnull=True) | Q(next_sync_at__lte=now + BEAT_TOLERANCE))
        .order_by(F("next_sync_at").asc(nulls_first=True), "pk")
        .values_list("pk", flat=True)[:limit]
    )
    if ids:
        CalendarAccount.objects.filter(pk__in=ids).update(next_sync_at=now + sync_interval())
    return ids


def prune_sync_runs(now: dt.datetime) -> int:
    days = getattr(settings, "CALSYNC_SYNC_RUN_RETENTION_DAYS", DEFAULT_RUN_RETENTION_DAYS)
    deleted, _ = SyncRun.objects.filter(started_at__lt=now - dt.timedelta(days=days)).delete()
    return deleted
