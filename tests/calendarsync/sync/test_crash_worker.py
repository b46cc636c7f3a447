"""Crash test (issue #12): a real Celery worker is killed with SIGKILL in the middle of a 500-activity
initial push, then a new worker takes over. R10: every activity ends up as exactly one event.

The emulator runs in this process, so the test holds the worker at a known point: the third bulk
create is carried out by the emulator, and its answer held back until the worker is dead. That is
the worst moment (the calendar has the events, our database does not know them). The killed
worker's lease is then made to run out (a real deployment waits CALSYNC_SYNC_LEASE_SECONDS), beat
enqueues the account again and the new worker must adopt what the dead one made.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from activities.models import Activity, ActivityType, SyncStatus
from calendarsync.models import CalendarAccount, EventLink, LinkState
from tests.calendarsync.sync.conftest import SyncEnv
from tests.calendarsync.sync.test_worker_beat import _broker_url, _test_database_url

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ACTIVITIES = 500
# The bulk create request the emulator carries out and then holds its answer back.
HELD_BULK_REQUEST = 3
WAIT_SECONDS = 120


class HeldAnswer:
    """Wraps the emulator's WSGI entry: after the n-th bulk create is done, the answer waits."""

    def __init__(self, count: Callable[[], int], at: int) -> None:
        self.count = count
        self.at = at
        self.reached = threading.Event()
        self.release = threading.Event()

    def install(self, monkeypatch: pytest.MonkeyPatch, emulator: Any) -> None:
        real_call = type(emulator).__call__

        def call(app: Any, environ: Any, start_response: Any) -> Any:
            answer = real_call(app, environ, start_response)
            if not self.reached.is_set() and self.count() >= self.at:
                self.reached.set()
                self.release.wait(WAIT_SECONDS)
            return answer

        monkeypatch.setattr(type(emulator), "__call__", call)


def bulk_activities(sync_env: SyncEnv) -> list[int]:
    """ACTIVITIES future meetings changed after the start (one INSERT; as the CRM would save them)."""
    owner = sync_env.owner
    meeting = ActivityType.objects.get(company=owner.company, name="Meeting")
    now = timezone.now().replace(microsecond=0)
    activities = []
    for n in range(ACTIVITIES):
        start = now + dt.timedelta(days=1 + n % 30, hours=n % 9)
        activities.append(
            Activity(
                company=owner.company,
                owner=owner,
                type=meeting,
                subject=f"Crash-test meeting {n}",
                start_at=start,
                due_date=start.astimezone(owner.tzinfo).date(),
                duration=dt.timedelta(minutes=30),
                location=f"Room {n % 12}",
                note="Agenda",
                sync_changed_at=now + dt.timedelta(seconds=1),
            )
        )
    return [a.pk for a in Activity.objects.bulk_create(activities)]


@pytest.fixture
def celery(sync_env: SyncEnv, tmp_path: Path) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    """Starts ``celery beat`` / ``celery worker`` processes on the configured broker; kills them all at the end."""
    if not sync_env.setup.worker_env:
        pytest.skip("this provider's setup gives no worker environment (SyncSetup.worker_env)")
    for sub in ("queue", "processed", "control"):
        (tmp_path / "broker" / sub).mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        **sync_env.setup.worker_env,
        "DATABASE_URL": _test_database_url(),
        "CELERY_BROKER_URL": _broker_url(),
        "CALSYNC_VAR_DIR": str(tmp_path),
        "CALSYNC_SYNC_INTERVAL_MINUTES": "5",
        # A development worker against the local emulators (plain-HTTP OAuth, the repository's
        # keys): with DEBUG off it refuses to start, as production must (issue #13).
        "DEBUG": "1",
    }
    processes: list[subprocess.Popen[bytes]] = []
    base = [sys.executable, "-m", "celery", "-A", "tests.calendarsync.sync.celery_beat_app"]

    def start(kind: str) -> subprocess.Popen[bytes]:
        if kind == "beat":
            command = [*base, "beat", "-l", "WARNING", "-s", str(tmp_path / "celerybeat-schedule")]
        else:
            command = [*base, "worker", "--pool", "solo", "-l", "WARNING"]
        process = subprocess.Popen(command, cwd=settings.BASE_DIR, env=env)  # noqa: S603 - our own interpreter
        processes.append(process)
        return process

    try:
        yield start
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=10)
        if env["CELERY_BROKER_URL"].startswith("redis://"):
            from calsync_project.celery import app

            with app.connection_for_write(env["CELERY_BROKER_URL"]) as connection:
                connection.default_channel.queue_purge(app.conf.task_default_queue)  # type: ignore[attr-defined]


def wait_for(condition: Callable[[], bool], what: str, alive: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        assert alive is None or alive.poll() is None, "the worker died on its own"
        time.sleep(0.2)
    pytest.fail(f"no {what} within {WAIT_SECONDS} s")


def test_r10_worker_killed_mid_initial_push_makes_no_duplicate(
    sync_env: SyncEnv,
    celery: Callable[[str], subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    control = sync_env.control
    held = HeldAnswer(control.bulk_requests, HELD_BULK_REQUEST)
    held.install(monkeypatch, control.emulator)  # type: ignore[attr-defined]
    sync_env.start()
    ids = bulk_activities(sync_env)
    account_id = sync_env.account.pk

    celery("beat")
    first = celery("worker")
    wait_for(held.reached.is_set, "bulk create in the middle of the push", first)
    made_before_kill = len(control.events())
    assert 0 < made_before_kill < ACTIVITIES, made_before_kill
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    held.release.set()
    assert EventLink.objects.filter(account_id=account_id).count() < ACTIVITIES
    # The dead worker's lease runs out; the next interval comes (beat enqueues the account again).
    CalendarAccount.objects.filter(pk=account_id).update(
        sync_lease_until=timezone.now() - dt.timedelta(seconds=1), next_sync_at=timezone.now()
    )
    second = celery("worker")

    def all_synced() -> bool:
        return not Activity.objects.filter(pk__in=ids).exclude(sync_status=SyncStatus.SYNCED).exists()

    wait_for(all_synced, "complete sync after the restart", second)
    events = control.events()
    event_ids = [event.external_id for event in events]
    tags = [event.tag for event in events]
    assert len(events) == ACTIVITIES, f"{len(events)} events for {ACTIVITIES} activities"
    assert len(set(event_ids)) == ACTIVITIES
    assert len(set(tags)) == ACTIVITIES
    assert None not in tags
    links = EventLink.objects.filter(account_id=account_id, state=LinkState.ACTIVE)
    assert links.count() == ACTIVITIES
    assert sorted(links.values_list("external_id", flat=True)) == sorted(event_ids)
    assert sorted(links.values_list("activity_id", flat=True)) == sorted(ids)
    assert set(Activity.objects.filter(pk__in=ids).values_list("sync_status", flat=True)) == {
        SyncStatus.SYNCED
    }
