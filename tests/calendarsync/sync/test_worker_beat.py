"""A real Celery worker with embedded beat, on the configured broker: beat -> enqueue -> sync (not eager)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from activities.models import Activity, SyncStatus
from calendarsync import tasks
from calendarsync.models import CalendarAccount, EventLink, SyncRun
from tests.calendarsync.sync.conftest import SyncEnv, soon

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _test_database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    return f"postgres://{user}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def _broker_url() -> str:
    configured = os.environ.get("CELERY_BROKER_URL", "")
    return configured if configured.startswith("redis://") else "filesystem://"


@pytest.fixture
def worker_with_beat(sync_env: SyncEnv, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``celery beat`` and a ``celery worker``, two plain processes on the configured broker."""
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
    celery = [sys.executable, "-m", "celery", "-A", "tests.calendarsync.sync.celery_beat_app"]
    beat = subprocess.Popen(  # noqa: S603 - our own interpreter running Celery
        [*celery, "beat", "-l", "WARNING", "-s", str(tmp_path / "celerybeat-schedule")],
        cwd=settings.BASE_DIR,
        env=env,
    )
    worker = subprocess.Popen(  # noqa: S603 - our own interpreter running Celery
        [*celery, "worker", "--pool", "solo", "-l", "WARNING"], cwd=settings.BASE_DIR, env=env
    )
    try:
        yield worker
    finally:
        # Single processes without children: killing them leaves nothing behind, and a warm
        # shutdown would only wait for beat's sleep.
        for process in (beat, worker):
            process.kill()
            process.wait(timeout=10)
        if env["CELERY_BROKER_URL"].startswith("redis://"):
            # What beat queued after the worker stopped must not reach another test's worker.
            from calsync_project.celery import app

            with app.connection_for_write(env["CELERY_BROKER_URL"]) as connection:
                connection.default_channel.queue_purge(app.conf.task_default_queue)  # type: ignore[attr-defined]


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if condition():
            return
        assert process.poll() is None, "the worker died"
        time.sleep(0.2)
    pytest.fail(f"no {what} within 60 s")


def test_beat_enqueues_and_a_real_worker_syncs(
    sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch, worker_with_beat: subprocess.Popen[bytes]
) -> None:
    # Saving would also queue a requested sync; this test is about beat, so only beat enqueues.
    monkeypatch.setattr(tasks, "request_sync", lambda account_id: None)
    sync_env.start()
    activity = sync_env.activity(subject="Worker-made event", start_at=soon(2, 10))
    event_id = sync_env.control.create_event("Calendar-made event", soon(3, 10), soon(3, 11))

    def synced() -> bool:
        return (
            Activity.objects.filter(pk=activity.pk, sync_status=SyncStatus.SYNCED).exists()
            and EventLink.objects.filter(external_id=event_id).exists()
            # The items settle before the run records its end: wait for the whole run.
            and CalendarAccount.objects.filter(pk=sync_env.account.pk, last_synced_at__isnull=False).exists()
        )

    wait_for(synced, worker_with_beat, "first sync")
    account = CalendarAccount.objects.get(pk=sync_env.account.pk)
    assert account.last_synced_at is not None
    assert account.next_sync_at is not None
    assert account.next_sync_at > timezone.now() + dt.timedelta(minutes=4)
    # The next interval: the calendar edit comes back through beat again.
    sync_env.control.update_event(event_id, subject="Edited in the calendar")
    CalendarAccount.objects.filter(pk=account.pk).update(next_sync_at=timezone.now())
    wait_for(
        lambda: (
            Activity.objects.filter(subject="Edited in the calendar").exists()
            # The edit is applied before the run records its end (and writes its log): wait for that too.
            and SyncRun.objects.filter(account=account, outcome=SyncRun.Outcome.OK).count() >= 2
        ),
        worker_with_beat,
        "second sync",
    )
    assert [e.subject for e in sync_env.control.events()] == ["Worker-made event", "Edited in the calendar"]
    assert Activity.objects.count() == 2
    assert SyncRun.objects.filter(account=account, outcome=SyncRun.Outcome.OK).count() >= 2
