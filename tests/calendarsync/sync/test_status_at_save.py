"""The status a save gives (calendarsync.tracking.status_at_save) is the one the next run keeps (R2, R9)."""

from __future__ import annotations

import pytest

from activities.models import Activity, SyncStatus
from calendarsync.sync.save_status import PAST_REASON
from tests.calendarsync.sync.conftest import SyncEnv, soon

pytestmark = pytest.mark.django_db


def status_of(activity: Activity) -> tuple[str | None, str, int | None]:
    activity.refresh_from_db()
    return activity.sync_status, activity.sync_error, activity.calendar_account_id


def test_r2_r9_the_run_agrees_with_the_status_given_at_save(sync_env: SyncEnv) -> None:
    sync_env.start()
    past = sync_env.activity(subject="Yesterday", start_at=soon(-1, 10))
    task = sync_env.activity(subject="A task", start_at=soon(2, 10), type=sync_env.activity_type("Task"))
    call = sync_env.activity(subject="A call", start_at=soon(2, 11), type=sync_env.activity_type("Call"))
    account = sync_env.account.pk
    task_reason = "Activity type Task is not sent to the calendar"
    assert status_of(past) == (SyncStatus.SKIPPED, PAST_REASON, account)
    assert status_of(task) == (SyncStatus.SKIPPED, task_reason, account)
    assert status_of(call) == (SyncStatus.PENDING, "", account)

    sync_env.sync()
    assert status_of(past) == (SyncStatus.SKIPPED, PAST_REASON, account)
    assert status_of(task) == (SyncStatus.SKIPPED, task_reason, account)
    assert status_of(call) == (SyncStatus.SYNCED, "", account)
    assert [event.subject for event in sync_env.control.events()] == ["A call"]
