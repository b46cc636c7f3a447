"""R8 push triggers (signals, debounced Celery request after commit) and R9 statuses."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from accounts.models import User
from activities.models import Activity, Person, SyncStatus
from calendarsync import tasks
from calendarsync.models import AccountState, CalendarAccount, SyncRun
from calendarsync.providers.base import CalendarProvider
from tests.calendarsync.sync.conftest import SyncEnv, company_of, soon

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Sync tasks sent to the broker (recorded instead of sent)."""
    sent: list[dict[str, Any]] = []

    def apply_async(args: tuple[Any, ...], kwargs: dict[str, Any] | None = None, **options: Any) -> None:
        sent.append({"args": args, "kwargs": kwargs or {}, **options})

    monkeypatch.setattr(tasks.sync_account, "apply_async", apply_async)
    return sent


def test_r8_a_synced_field_change_marks_pending_and_queues_one_sync_after_commit(
    sync_env: SyncEnv, queued: list[dict[str, Any]], django_capture_on_commit_callbacks: Any
) -> None:
    sync_env.start()
    with django_capture_on_commit_callbacks(execute=True):
        activity = sync_env.activity(subject="Review", start_at=soon(2, 10))
        activity.location = "Room 1"
        activity.save()
    activity.refresh_from_db()
    assert activity.sync_status == SyncStatus.PENDING
    assert activity.calendar_account == sync_env.account
    assert queued == [
        {"args": (sync_env.account.pk,), "kwargs": {"requested": True}, "countdown": tasks.debounce_seconds()}
    ]
    # Debounced: more saves before the sync runs add no second task.
    with django_capture_on_commit_callbacks(execute=True):
        activity.subject = "Review (2)"
        activity.save()
    assert len(queued) == 1
    # The run clears the request; the next change queues again.
    sync_env.sync()
    with django_capture_on_commit_callbacks(execute=True):
        activity.note = "Agenda"
        activity.save()
    assert len(queued) == 2


def test_r8_changes_outside_the_synced_fields_do_not_push(
    sync_env: SyncEnv, queued: list[dict[str, Any]], django_capture_on_commit_callbacks: Any
) -> None:
    sync_env.start()
    activity = sync_env.activity(subject="Review", start_at=soon(2, 10))
    sync_env.sync()
    activity.refresh_from_db()
    changed_at = activity.sync_changed_at
    with django_capture_on_commit_callbacks(execute=True):
        activity.done = True
        activity.save()
    activity.refresh_from_db()
    assert activity.sync_changed_at == changed_at
    assert activity.sync_status == SyncStatus.SYNCED
    assert queued == []


def test_r8_participant_changes_push(
    sync_env: SyncEnv, queued: list[dict[str, Any]], django_capture_on_commit_callbacks: Any
) -> None:
    owner: User = sync_env.owner
    sync_env.start()
    activity = sync_env.activity(subject="Review", start_at=soon(2, 10))
    sync_env.sync()
    person = Person.objects.create(
        company=company_of(owner), owner=owner, name="Kim", email="kim@client.test"
    )
    with django_capture_on_commit_callbacks(execute=True):
        activity.participants.add(person)
    assert len(queued) == 1
    sync_env.sync()
    event = sync_env.event_of(activity)
    assert event is not None
    assert [a.email for a in event.attendees] == ["kim@client.test"]


def test_r8_what_the_sync_pulls_is_not_pushed_back(sync_env: SyncEnv, queued: list[dict[str, Any]]) -> None:
    sync_env.start()
    activity = sync_env.activity(subject="Review", start_at=soon(2, 10))
    sync_env.sync()
    event_id = sync_env.link_of(activity).external_id
    sync_env.control.update_event(event_id, subject="Renamed in calendar")
    before = sync_env.control.event(event_id)
    outcome = sync_env.sync()
    assert outcome.result is not None
    assert (outcome.result.pulled.updated, outcome.result.pushed.updated) == (1, 0)
    assert queued == []
    after = sync_env.control.event(event_id)
    assert before is not None
    assert after is not None
    assert (after.etag, after.updated) == (before.etag, before.updated)  # nothing written back
    again = sync_env.sync()
    assert again.result is not None
    assert not again.result.changed


def test_r9_item_status_error_with_the_reason_and_the_run_goes_on(sync_env: SyncEnv) -> None:
    sync_env.start()
    refused = sync_env.activity(subject="Bad guest", start_at=soon(2, 9), guests=["not an e-mail"])
    fine = sync_env.activity(subject="Fine", start_at=soon(2, 10))
    outcome = sync_env.sync()
    assert outcome.result is not None
    refused.refresh_from_db()
    fine.refresh_from_db()
    assert refused.sync_status == SyncStatus.ERROR
    assert "refused" in refused.sync_error
    assert fine.sync_status == SyncStatus.SYNCED
    assert [e.subject for e in sync_env.control.events()] == ["Fine"]
    # Fixed by the user: it goes out with the next run.
    refused.guests = ["guest@example.test"]
    refused.save()
    sync_env.sync()
    refused.refresh_from_db()
    assert refused.sync_status == SyncStatus.SYNCED


def test_r9_account_is_syncing_while_it_runs_then_active_with_last_sync(sync_env: SyncEnv) -> None:
    seen: list[str] = []
    factory = sync_env.setup.provider_factory

    def recording_factory(account: CalendarAccount) -> CalendarProvider:
        seen.append(CalendarAccount.objects.get(pk=account.pk).state)
        return factory(account)

    sync_env.setup.provider_factory = recording_factory
    sync_env.start()
    before = dt.datetime.now(dt.UTC)
    sync_env.sync()
    assert seen == [AccountState.SYNCING]
    account = sync_env.account
    assert account.state == AccountState.ACTIVE
    assert account.last_synced_at is not None
    assert account.last_synced_at >= before
    assert account.next_sync_at is not None
    assert account.sync_lease_token == ""
    run = SyncRun.objects.get(account=account)
    assert run.outcome == SyncRun.Outcome.OK
    assert run.full_sync  # the first run lists everything once (the baseline)


def test_beat_enqueues_only_due_started_accounts(sync_env: SyncEnv, queued: list[dict[str, Any]]) -> None:
    assert tasks.enqueue_due_syncs() == 0  # not started yet
    sync_env.start()
    assert tasks.enqueue_due_syncs() == 1
    assert queued == [{"args": (sync_env.account.pk,), "kwargs": {}}]
    assert tasks.enqueue_due_syncs() == 0  # already queued for this interval
    sync_env.sync()
    CalendarAccount.objects.filter(pk=sync_env.account.pk).update(
        next_sync_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    )
    assert tasks.enqueue_due_syncs() == 1
    CalendarAccount.objects.filter(pk=sync_env.account.pk).update(
        state=AccountState.NEEDS_RECONNECT, next_sync_at=None
    )
    assert tasks.enqueue_due_syncs() == 0


def test_activity_of_a_user_without_sync_is_untouched(
    owner: User, django_capture_on_commit_callbacks: Any
) -> None:
    from tests.conftest import make_activity

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        activity = make_activity(owner, subject="No calendar")
    activity.refresh_from_db()
    assert activity.sync_status is None
    assert callbacks == []
    assert Activity.objects.filter(pk=activity.pk, sync_changed_at__isnull=False).exists()
