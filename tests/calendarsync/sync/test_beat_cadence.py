"""R9 and the README: the sync interval is the interval users get, whatever the beat's jitter.

Beat enqueues due accounts once a minute; its ticks come a little late or early, the queue takes
a moment and the run itself takes a few seconds. With a one-minute interval the account used to be
"not quite due" on every other tick and synced every two minutes (issue #12, hole 19). Simulated
ticks drive the real runner and adapter against the emulator, with the clock under the test's control.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from calendarsync.models import CalendarAccount
from calendarsync.providers.base import CalendarProvider, ChangePage
from calendarsync.sync import runner
from tests.calendarsync.sync.conftest import SyncEnv, soon

pytestmark = pytest.mark.django_db

TICKS = 10
RUN_SECONDS = 2.5  # what one run takes (a listing, a push)
QUEUE_SECONDS = 0.4  # from beat's enqueue to a worker starting it


class SlowProvider:
    """The real adapter; each listing takes ``RUN_SECONDS`` on the test's clock."""

    def __init__(self, provider: CalendarProvider, clock: Any) -> None:
        self._provider = provider
        self._clock = clock

    def list_changes(self, calendar_id: str, cursor: str | None, **window: Any) -> ChangePage:
        self._clock.shift(RUN_SECONDS)
        return self._provider.list_changes(calendar_id, cursor, **window)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._provider, name)


@pytest.fixture
def one_minute(settings: Any) -> None:
    settings.CALSYNC_SYNC_INTERVAL = dt.timedelta(minutes=1)


def run_ticks(sync_env: SyncEnv, jitter: list[float]) -> list[dt.datetime]:
    """Beat ticks once a minute (each ``jitter`` seconds off the minute); returns when runs started."""
    starts: list[dt.datetime] = []
    origin = timezone.now()
    with time_machine.travel(origin, tick=False) as clock:

        def factory(account: CalendarAccount) -> CalendarProvider:
            return SlowProvider(sync_env.setup.provider_factory(account), clock)

        for tick, off in enumerate(jitter, start=1):
            clock.move_to(origin + dt.timedelta(seconds=60 * tick + off))
            for account_id in runner.due_account_ids(timezone.now()):
                clock.shift(QUEUE_SECONDS)
                starts.append(timezone.now())
                outcome = runner.run_account_sync(account_id, provider_factory=factory)
                assert outcome.status == runner.RunStatus.OK, outcome
    return starts


@pytest.mark.usefixtures("one_minute")
def test_r9_a_one_minute_interval_syncs_on_every_beat_tick(sync_env: SyncEnv) -> None:
    sync_env.start()
    sync_env.activity(subject="Call", start_at=soon(2, 9))
    sync_env.sync()
    jitter = [random.Random(seed).uniform(-1.0, 1.5) for seed in range(TICKS)]
    starts = run_ticks(sync_env, jitter)
    assert len(starts) == TICKS
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(starts)]
    assert all(50 <= gap <= 70 for gap in gaps), gaps


@pytest.mark.usefixtures("one_minute")
def test_r9_an_account_synced_on_request_waits_for_its_interval(sync_env: SyncEnv) -> None:
    """The tolerance only absorbs jitter: an account synced half a minute ago is not due yet."""
    sync_env.start()
    sync_env.sync()
    now = timezone.now()
    assert runner.due_account_ids(now + dt.timedelta(seconds=30)) == []
    assert runner.due_account_ids(now + dt.timedelta(seconds=59)) == [sync_env.account.pk]
