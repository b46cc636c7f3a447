"""Two workers sync the same account at the same moment: exactly one does the work (PostgreSQL)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, connections

from activities.models import Activity, SyncStatus
from calendarsync.models import CalendarAccount, EventLink
from calendarsync.providers.base import CalendarProvider
from calendarsync.sync import runner
from tests.calendarsync.sync.conftest import SyncEnv, assert_in_step, soon

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row-level concurrency needs PostgreSQL"),
]


def test_two_workers_at_once_sync_the_account_exactly_once(sync_env: SyncEnv) -> None:
    sync_env.start()
    sync_env.sync()
    for n in range(10):
        sync_env.activity(subject=f"Meeting {n}", start_at=soon(2, 8 + n % 9))
    start = threading.Barrier(2)
    loser_done = threading.Event()
    factory = sync_env.setup.provider_factory

    def slow_factory(account: CalendarAccount) -> CalendarProvider:
        # The winner holds its claim until the other worker has tried and given up.
        loser_done.wait(timeout=10)
        return factory(account)

    outcomes: list[runner.RunOutcome] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait(timeout=10)
            outcome = runner.run_account_sync(sync_env.account.pk, provider_factory=slow_factory)
            outcomes.append(outcome)
            if outcome.status == runner.RunStatus.BUSY:
                loser_done.set()
        except BaseException as exc:
            errors.append(exc)
            loser_done.set()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(o.status for o in outcomes) == [runner.RunStatus.BUSY, runner.RunStatus.OK]
    assert EventLink.objects.filter(account=sync_env.account).count() == 10
    assert len(sync_env.control.events()) == 10
    assert set(Activity.objects.values_list("sync_status", flat=True)) == {SyncStatus.SYNCED}
    sync_env.account.refresh_from_db()
    assert_in_step(sync_env)


def test_claim_is_exclusive_under_a_crowd(sync_env: SyncEnv) -> None:
    sync_env.start()
    from django.utils import timezone

    now = timezone.now()
    barrier = threading.Barrier(8)
    tokens: list[Any] = []

    def claim() -> None:
        try:
            barrier.wait(timeout=10)
            tokens.append(runner.claim(sync_env.account.pk, now))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len([t for t in tokens if t is not None]) == 1
