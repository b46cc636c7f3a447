"""O9/R9: a run writes what it has done so far into its SyncRun row, so the page can show the progress."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from calendarsync.models import CalendarAccount, SyncRun
from calendarsync.providers.base import AuthRevoked, CalendarProvider
from calendarsync.sync import runner
from calendarsync.sync_status import Counts, Phase, account_status
from tests.calendarsync.sync.conftest import SyncEnv, soon

pytestmark = pytest.mark.django_db


class WatchedProvider:
    """The real adapter; just before it sends the CRM's new events it notes the account's running run."""

    def __init__(self, inner: CalendarProvider, account_id: int, *, fail_creates: bool = False) -> None:
        self.inner = inner
        self.account_id = account_id
        self.fail_creates = fail_creates
        self.seen: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def create_events(self, calendar_id: str, items: Any, **options: Any) -> Any:
        running = SyncRun.objects.filter(account_id=self.account_id, outcome=SyncRun.Outcome.RUNNING)
        self.seen.extend(dict(row) for row in running.values("counts", "finished_at"))
        if self.fail_creates:
            raise AuthRevoked("access revoked mid-run")
        return self.inner.create_events(calendar_id, items, **options)


def run_watched(sync_env: SyncEnv, **options: Any) -> tuple[runner.RunOutcome, WatchedProvider]:
    watched: list[WatchedProvider] = []

    def factory(account: CalendarAccount) -> Any:
        watched.append(WatchedProvider(sync_env.setup.provider_factory(account), account.pk, **options))
        return watched[0]

    outcome = runner.run_account_sync(sync_env.account.pk, provider_factory=factory)
    sync_env.account.refresh_from_db()
    return outcome, watched[0]


def two_events_and_three_activities(sync_env: SyncEnv) -> None:
    sync_env.start(settle=1.1)
    for day in (2, 3):
        start = soon(day, 9)
        sync_env.control.create_event(f"From the calendar {day}", start, start + dt.timedelta(hours=1))
    for day in (4, 5, 6):
        sync_env.activity(subject=f"From the CRM {day}", start_at=soon(day, 14))


def test_o9_r9_a_run_records_its_counts_while_it_works_then_finishes_the_same_row(sync_env: SyncEnv) -> None:
    two_events_and_three_activities(sync_env)
    outcome, provider = run_watched(sync_env)
    assert outcome.status == runner.RunStatus.OK
    # Mid-run, before the CRM's events went out: the calendar's two events were already counted.
    [mid_run] = provider.seen
    assert mid_run["finished_at"] is None
    assert Counts.of_run(mid_run["counts"]) == Counts(activities=0, events=2)
    [run] = SyncRun.objects.filter(account=sync_env.account)
    assert run.outcome == SyncRun.Outcome.OK
    assert run.finished_at == sync_env.account.last_synced_at
    assert Counts.of_run(run.counts) == Counts(activities=3, events=2)
    status = account_status(sync_env.account, sync_env.preferences)
    assert (status.phase, status.just_now, status.counts) == (Phase.SYNCED, True, Counts(3, 2))


def test_r9_a_run_that_changes_nothing_still_writes_no_row(sync_env: SyncEnv) -> None:
    sync_env.start()
    sync_env.sync()  # the first run lists everything (a full sync is recorded)
    SyncRun.objects.all().delete()
    _, provider = run_watched(sync_env)
    assert provider.seen == []
    assert not SyncRun.objects.exists()


def test_r9_a_failed_run_keeps_what_it_had_done_in_its_row(sync_env: SyncEnv) -> None:
    two_events_and_three_activities(sync_env)
    outcome, _ = run_watched(sync_env, fail_creates=True)
    assert outcome.status == runner.RunStatus.BLOCKED
    [run] = SyncRun.objects.filter(account=sync_env.account)
    assert run.outcome == SyncRun.Outcome.FAILED
    assert run.finished_at is not None
    assert Counts.of_run(run.counts) == Counts(activities=0, events=2)
    assert account_status(sync_env.account, sync_env.preferences).phase == Phase.NEEDS_RECONNECT


def test_r9_a_row_left_running_by_a_dead_worker_is_closed_by_the_next_run(sync_env: SyncEnv) -> None:
    long_ago = timezone.now() - dt.timedelta(hours=2)
    dead = SyncRun.objects.create(
        account=sync_env.account, started_at=long_ago, outcome=SyncRun.Outcome.RUNNING, counts={}
    )
    two_events_and_three_activities(sync_env)
    run_watched(sync_env)
    dead.refresh_from_db()
    assert dead.outcome == SyncRun.Outcome.FAILED
    assert dead.error == "The run was interrupted"
    assert SyncRun.objects.filter(outcome=SyncRun.Outcome.RUNNING).count() == 0
