"""Thin Celery tasks: ids in, call an action or the engine, record the result."""

from __future__ import annotations

import datetime as dt
import logging
import random
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from calendarsync.models import CalendarAccount, Heartbeat
from calendarsync.sync import runner

logger = logging.getLogger(__name__)

DEFAULT_DEBOUNCE_SECONDS = 5
# A sync request older than this without a run is assumed lost: a new one may be queued.
REQUEST_STALE_AFTER = dt.timedelta(minutes=2)
MAX_TRANSIENT_RETRIES = 8
RETRY_BASE_SECONDS = 15.0
RETRY_MAX_SECONDS = 900.0
# A requested sync that finds the account busy waits for that run, this many times at most.
MAX_BUSY_RETRIES = 5


@shared_task(name="calendarsync.tasks.heartbeat")
def heartbeat(name: str = "beat") -> str:
    """Proves beat -> broker -> worker -> database works end to end."""
    now = timezone.now()
    Heartbeat.objects.update_or_create(name=name, defaults={"beat_at": now})
    return now.isoformat()


@shared_task(name="calendarsync.tasks.enqueue_due_syncs")
def enqueue_due_syncs() -> int:
    """Beat, every minute: queue a sync for every account whose interval is up."""
    now = timezone.now()
    ids = runner.due_account_ids(now)
    for account_id in ids:
        sync_account.apply_async((account_id,))
    runner.prune_sync_runs(now)
    return len(ids)


def retry_countdown(retries: int, retry_after: float | None) -> float:
    """Exponential backoff with jitter, never sooner than the provider's Retry-After."""
    backoff = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2**retries)
    jitter = random.uniform(0, RETRY_BASE_SECONDS)  # noqa: S311 - spreading retries, not cryptography
    return float(max(retry_after or 0.0, backoff) + jitter)


@shared_task(bind=True, name="calendarsync.tasks.sync_account", max_retries=None)
def sync_account(self: Any, account_id: int, requested: bool = False) -> str:
    """Sync one account; transient failures retry with backoff, a dead grant stops (R9, R10)."""
    outcome = runner.run_account_sync(account_id)
    retries = int(self.request.retries or 0)
    if outcome.status == runner.RunStatus.RETRY and retries < MAX_TRANSIENT_RETRIES:
        raise self.retry(countdown=retry_countdown(retries, outcome.retry_after))
    if outcome.status == runner.RunStatus.THROTTLED and requested and retries < MAX_BUSY_RETRIES:
        # The provider asked to wait (Retry-After): this change goes out right after that.
        jitter = random.uniform(0, 1)  # noqa: S311 - spreading retries, not cryptography
        raise self.retry(countdown=float(outcome.retry_after or 0.0) + jitter)
    if outcome.status == runner.RunStatus.BUSY and requested and retries < MAX_BUSY_RETRIES:
        # The running sync may have read the activities before this change: run again after it.
        raise self.retry(countdown=debounce_seconds() * 2)
    return str(outcome.status)


def debounce_seconds() -> float:
    return float(getattr(settings, "CALSYNC_SYNC_DEBOUNCE_SECONDS", DEFAULT_DEBOUNCE_SECONDS))


def request_sync(account_id: int, *, force: bool = False) -> None:
    """R8: sync the account a few seconds after the current transaction commits.

    Debounced: the first request marks the account and queues one delayed run; later saves
    before that run starts ride along (the run clears the mark when it claims the account).
    ``force`` (Start sync, reconnect) always queues: a mark left while the account could not
    sync (revoked, stopped) was never honoured, and the user is told a sync is starting.
    """
    now = timezone.now()
    accounts = CalendarAccount.objects.filter(pk=account_id)
    if not force:
        accounts = accounts.filter(
            Q(sync_requested_at__isnull=True) | Q(sync_requested_at__lt=now - REQUEST_STALE_AFTER)
        )
    marked = accounts.update(sync_requested_at=now)
    if marked:
        transaction.on_commit(lambda: _send_requested(account_id), robust=True)


def _send_requested(account_id: int) -> None:
    try:
        sync_account.apply_async((account_id,), {"requested": True}, countdown=debounce_seconds())
    except Exception:
        # The interval sync picks the change up anyway; saving the activity must not fail.
        logger.exception("Could not queue the sync of calendar account %s", account_id)
