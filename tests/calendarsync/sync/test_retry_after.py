"""R10 and PROVIDERS.md: a long Retry-After is honoured by rescheduling, never by sleeping in a worker.

The adapters wait inline only for short delays (a few seconds); a longer one comes back as a
``TransientError`` with the server's delay, and the account runs again no earlier than that: not
from beat (``next_sync_at``), not from a requested sync, not from the Celery retry (issue #12, hole 16).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from celery.exceptions import Retry
from django.utils import timezone

from activities.models import Activity
from calendarsync import tasks
from calendarsync.models import CalendarAccount
from calendarsync.providers.base import TransientError
from calendarsync.sync import runner
from tests.calendarsync.sync.conftest import SyncEnv, assert_in_step, soon

pytestmark = pytest.mark.django_db

RETRY_AFTER = 120


def throttled_run(sync_env: SyncEnv) -> tuple[dt.datetime, runner.RunOutcome]:
    sync_env.start()
    sync_env.sync()  # baseline
    for n in range(2):
        sync_env.activity(subject=f"Call {n}", start_at=soon(2, 9 + n))
    # Every call is throttled for two minutes (more often than the adapter would ever retry).
    sync_env.control.inject_failure("rate_limit", 10, retry_after=RETRY_AFTER)
    before = timezone.now()
    return before, sync_env.sync(expect="retry")


def test_r10_a_429_with_retry_after_120_is_not_slept_but_rescheduled(sync_env: SyncEnv) -> None:
    before, outcome = throttled_run(sync_env)

    assert sync_env.setup.sleeps == []  # no worker sat out the two minutes
    assert outcome.retry_after == RETRY_AFTER
    account = sync_env.account
    not_before = before + dt.timedelta(seconds=RETRY_AFTER)
    assert account.sync_not_before is not None
    assert account.sync_not_before >= not_before
    assert account.next_sync_at is not None
    assert account.next_sync_at >= not_before
    assert "busy" in account.last_sync_error

    # Beat does not enqueue it before the delay is over, even with its tick tolerance ...
    assert runner.due_account_ids(not_before - dt.timedelta(seconds=1)) == []
    # ... nor does a requested sync (a CRM edit meanwhile) call the provider.
    sync_env.control.reset_counts()
    early = runner.run_account_sync(account.pk, provider_factory=sync_env.setup.provider_factory)
    assert early.status == runner.RunStatus.THROTTLED
    assert early.retry_after is not None
    assert 0 < early.retry_after <= RETRY_AFTER
    assert sync_env.control.api_requests() == 0

    # Once the delay is over the run goes through, and nothing is made twice.
    sync_env.control.clear_faults()
    later = account.next_sync_at + dt.timedelta(seconds=1)
    assert runner.due_account_ids(later) == [account.pk]
    done = runner.run_account_sync(account.pk, provider_factory=sync_env.setup.provider_factory, now=later)
    assert done.status == runner.RunStatus.OK, done
    assert len(sync_env.control.events()) == 2
    assert Activity.objects.filter(owner=sync_env.owner, sync_status="synced").count() == 2
    sync_env.account.refresh_from_db()
    assert sync_env.account.sync_not_before is None
    assert_in_step(sync_env)


def test_r10_the_celery_task_retries_no_earlier_than_retry_after(
    sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task itself, with the registry's adapter (its real sleep): it reschedules instead."""
    sync_env.start()
    sync_env.sync()
    sync_env.activity(subject="Call", start_at=soon(2, 9))
    sync_env.control.inject_failure("rate_limit", 10, retry_after=RETRY_AFTER)
    retried: dict[str, Any] = {}

    def retry(**options: Any) -> Retry:
        retried.update(options)
        return Retry()

    monkeypatch.setattr(tasks.sync_account, "retry", retry)
    started = timezone.now()
    with pytest.raises(Retry):
        tasks.sync_account(sync_env.account.pk)
    assert timezone.now() - started < dt.timedelta(seconds=10)
    assert retried["countdown"] >= RETRY_AFTER

    # A requested sync that meets the wait is put off until it is over, not dropped.
    retried.clear()
    with pytest.raises(Retry):
        tasks.sync_account(sync_env.account.pk, requested=True)
    assert RETRY_AFTER - 5 <= retried["countdown"] <= RETRY_AFTER + tasks.RETRY_BASE_SECONDS


def test_r10_short_waits_are_still_slept_inline() -> None:
    from calendarsync.providers.retry import retry_delay, waits_inline

    assert waits_inline(retry_delay(TransientError("busy", retry_after=7), 1))
    assert not waits_inline(retry_delay(TransientError("busy", retry_after=RETRY_AFTER), 1))
    assert retry_delay(TransientError("busy", retry_after=RETRY_AFTER), 1) == RETRY_AFTER
    assert waits_inline(retry_delay(TransientError("busy"), 2))


def test_r10_a_throttled_account_is_due_again_after_the_delay(sync_env: SyncEnv) -> None:
    """Without any request in between, beat picks it up at its next due time, after the wait."""
    throttled_run(sync_env)
    account = CalendarAccount.objects.get(pk=sync_env.account.pk)
    assert account.sync_not_before is not None
    assert account.next_sync_at is not None
    assert account.next_sync_at >= account.sync_not_before
    assert runner.due_account_ids(account.next_sync_at + dt.timedelta(seconds=1)) == [account.pk]
