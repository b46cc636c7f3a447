"""R10 under fault injection: errors, throttling, timeouts, expired cursors, dead grants, crashes.

Every test ends with both sides equal, no duplicate on either side and no edit lost.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from activities.models import Activity, SyncStatus
from calendarsync import tasks
from calendarsync.models import AccountState, CalendarAccount, EventLink, PendingCreate, SyncRun
from calendarsync.providers.base import CalendarProvider, ChangePage
from calendarsync.sync import pull, push, runner
from calendarsync.sync.errors import PERMISSIONS_HELP, RECONNECT_HELP
from tests.calendarsync.sync.conftest import SyncEnv, assert_in_step, soon

pytestmark = pytest.mark.django_db


def populate(sync_env: SyncEnv, count: int = 3) -> list[Activity]:
    return [sync_env.activity(subject=f"Meeting {n}", start_at=soon(2, 8 + n)) for n in range(count)]


def test_r10_server_errors_retry_and_create_nothing_twice(sync_env: SyncEnv) -> None:
    sync_env.start()
    sync_env.sync()  # baseline
    activities = populate(sync_env)
    # Every bulk create fails more often than the adapter retries: the run asks to be retried.
    sync_env.control.inject_failure("server_error", 20, method="POST")
    outcome = sync_env.sync(expect="retry")
    assert sync_env.account.state == AccountState.ACTIVE
    assert sync_env.account.last_sync_error
    assert {a.sync_status for a in Activity.objects.filter(pk__in=[a.pk for a in activities])} == {
        SyncStatus.PENDING
    }
    assert outcome.retry_after is None
    sync_env.control.clear_faults()
    sync_env.sync()
    assert len(sync_env.control.events()) == 3
    assert_in_step(sync_env)


def test_r10_rate_limits_honour_retry_after(sync_env: SyncEnv) -> None:
    sync_env.start()
    sync_env.sync()
    populate(sync_env, 2)
    sync_env.control.inject_failure("rate_limit", 2, retry_after=7)
    sync_env.sync()
    assert sync_env.setup.sleeps[:2] == [7.0, 7.0]
    assert len(sync_env.control.events()) == 2
    assert_in_step(sync_env)
    # The Celery retry honours Retry-After too when the adapter gives up.
    assert tasks.retry_countdown(0, 120.0) >= 120.0
    assert tasks.retry_countdown(3, None) >= tasks.RETRY_BASE_SECONDS * 8


def test_r10_timeouts_are_retried(sync_env: SyncEnv, settings: Any) -> None:
    settings.CALSYNC_HTTP_TIMEOUT_SECONDS = 0.3
    sync_env.start()
    sync_env.sync()
    populate(sync_env, 2)
    sync_env.control.inject_failure("timeout", 1)
    sync_env.sync()
    assert len(sync_env.control.events()) == 2
    assert_in_step(sync_env)


def test_r10_expired_cursor_resyncs_without_duplicates(sync_env: SyncEnv) -> None:
    sync_env.start()
    first = populate(sync_env, 2)
    event_id = sync_env.control.create_event("From calendar", soon(3, 9), soon(3, 10))
    sync_env.sync()
    # Changes on both sides, then the provider forgets the cursor (410).
    sync_env.control.update_event(event_id, location="Moved room")
    sync_env.control.update_event(sync_env.link_of(first[0]).external_id, subject="Renamed in calendar")
    first[1].location = "CRM room"
    first[1].save()
    new_event = sync_env.control.create_event("New in calendar", soon(4, 9), soon(4, 10))
    sync_env.control.expire_cursor()
    outcome = sync_env.sync()
    assert outcome.result is not None
    assert outcome.result.cursor_expired
    assert outcome.result.full_sync
    assert sync_env.imported(event_id).location == "Moved room"
    assert Activity.objects.get(pk=first[0].pk).subject == "Renamed in calendar"
    assert sync_env.imported(new_event).subject == "New in calendar"
    assert Activity.objects.count() == 4
    assert_in_step(sync_env)


def test_r10_revoked_access_stops_the_account_and_deletes_nothing(sync_env: SyncEnv) -> None:
    sync_env.start()
    activities = populate(sync_env, 2)
    sync_env.sync()
    sync_env.control.revoke()
    activities[0].subject = "Changed after revocation"
    activities[0].save()
    outcome = sync_env.sync(expect="blocked")
    assert outcome.error == RECONNECT_HELP
    account = sync_env.account
    assert (account.state, account.state_detail) == (AccountState.NEEDS_RECONNECT, RECONNECT_HELP)
    assert Activity.objects.filter(pk__in=[a.pk for a in activities]).count() == 2
    assert EventLink.objects.filter(account=account).count() == 2
    assert len(sync_env.control.events()) == 2
    # No retry and no further runs until the user reconnects.
    assert runner.run_account_sync(account.pk).status == runner.RunStatus.NOT_SYNCING
    assert runner.due_account_ids(dt.datetime.now(dt.UTC)) == []


def test_c4_forbidden_calendar_shows_insufficient_permissions(sync_env: SyncEnv) -> None:
    sync_env.start()
    [activity] = populate(sync_env, 1)
    sync_env.sync()
    sync_env.control.deny_calendar_access()
    activity.subject = "Changed while forbidden"
    activity.save()
    outcome = sync_env.sync(expect="blocked")
    assert outcome.error == PERMISSIONS_HELP
    assert sync_env.account.state == AccountState.INSUFFICIENT_PERMISSIONS
    assert sync_env.account.state_detail == PERMISSIONS_HELP
    assert SyncRun.objects.filter(account=sync_env.account).first().outcome == SyncRun.Outcome.FAILED  # type: ignore[union-attr]
    # Nothing is deleted on either side (C4).
    assert Activity.objects.filter(pk=activity.pk).exists()
    assert EventLink.objects.filter(account=sync_env.account).count() == 1


class WorkerKilled(Exception):
    """Stands for the worker process dying between the provider's write and our commit."""


def test_r10_worker_killed_after_creating_events_before_commit(
    sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync_env.start()
    sync_env.sync()
    populate(sync_env, 3)

    def killed(*args: Any, **kwargs: Any) -> None:
        raise WorkerKilled

    monkeypatch.setattr(push, "record_created", killed)
    sync_env.sync(expect="failed")
    assert len(sync_env.control.events()) == 3  # made in the calendar, not recorded here
    assert not EventLink.objects.exists()
    monkeypatch.undo()
    sync_env.sync()
    assert len(sync_env.control.events()) == 3
    assert set(Activity.objects.values_list("sync_status", flat=True)) == {SyncStatus.SYNCED}
    assert_in_step(sync_env)


def _stamped_an_hour_ago(activity: Activity) -> None:
    """The CRM's change times an hour back: as if the calendar's clock ran ahead of ours, or
    ticked in whole seconds (EWS) within the second of the CRM edit."""
    hour = dt.timedelta(hours=1)
    stamps = {
        name: (dt.datetime.fromisoformat(str(value)) - hour).isoformat()
        for name, value in (activity.sync_field_changed_at or {}).items()
    }
    assert stamps
    Activity.objects.filter(pk=activity.pk).update(sync_field_changed_at=stamps)


def test_r10_edits_after_a_create_the_crash_left_unrecorded_win_by_content_not_clock(
    sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state agreed at creation is written before the create: the run that adopts the
    orphaned event knows which side changed what since, whatever the clocks say."""
    sync_env.start()
    sync_env.sync()
    [activity] = populate(sync_env, 1)

    def killed(*args: Any, **kwargs: Any) -> None:
        raise WorkerKilled

    monkeypatch.setattr(push, "record_created", killed)
    sync_env.sync(expect="failed")
    monkeypatch.undo()
    [event] = sync_env.control.events()
    # Since: the CRM moves the subject, the calendar edits the location.
    activity.refresh_from_db()
    activity.subject = "Moved in the CRM"
    activity.save()
    activity.refresh_from_db()
    _stamped_an_hour_ago(activity)
    sync_env.control.update_event(event.external_id, location="Calendar room")
    sync_env.sync()
    activity.refresh_from_db()
    assert (activity.subject, activity.location) == ("Moved in the CRM", "Calendar room")
    [event] = sync_env.control.events()
    assert (event.subject, event.location) == ("Moved in the CRM", "Calendar room")
    assert not PendingCreate.objects.exists()
    assert_in_step(sync_env)


def test_r10_an_edit_made_after_the_crash_goes_out_when_the_create_finds_the_orphan_again(
    sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The push's create finds the event the interrupted attempt made under the same key (the
    pull did not adopt it first): that event has the old content, and the CRM's edit since
    still reaches it."""
    sync_env.start()
    sync_env.sync()
    [activity] = populate(sync_env, 1)

    def killed(*args: Any, **kwargs: Any) -> None:
        raise WorkerKilled

    monkeypatch.setattr(push, "record_created", killed)
    sync_env.sync(expect="failed")
    monkeypatch.undo()
    activity.refresh_from_db()
    activity.subject = "Renamed after the crash"
    activity.save()
    activity.refresh_from_db()
    _stamped_an_hour_ago(activity)
    # The pull does not adopt it this time (say the listing missed it): the push meets it.
    monkeypatch.setattr(pull, "_adoptable_activities", lambda ctx, events: {})
    monkeypatch.setattr(pull, "_ours_but_activity_gone", lambda ctx, event, activity_id: None)
    sync_env.sync()
    monkeypatch.undo()
    [event] = sync_env.control.events()
    assert event.subject == "Renamed after the crash"
    activity.refresh_from_db()
    assert activity.subject == "Renamed after the crash"
    assert activity.sync_status == SyncStatus.SYNCED
    assert not PendingCreate.objects.exists()
    sync_env.sync()
    assert_in_step(sync_env)


def test_r10_worker_killed_after_updating_an_event_before_commit(
    sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync_env.start()
    [activity] = populate(sync_env, 1)
    sync_env.sync()
    activity.subject = "New subject"
    activity.save()
    monkeypatch.setattr(push, "record_update", lambda *args, **kwargs: (_ for _ in ()).throw(WorkerKilled()))
    sync_env.sync(expect="failed")
    monkeypatch.undo()
    # Meanwhile the user edits another field in the calendar: nothing may be lost.
    sync_env.control.update_event(sync_env.link_of(activity).external_id, location="Calendar room")
    sync_env.sync()
    activity.refresh_from_db()
    assert (activity.subject, activity.location) == ("New subject", "Calendar room")
    assert len(sync_env.control.events()) == 1
    assert_in_step(sync_env)


def test_r10_worker_killed_while_importing_an_event(
    sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync_env.start()
    sync_env.sync()
    sync_env.control.create_event("From calendar", soon(2, 9), soon(2, 10))
    sync_env.control.create_event("Another one", soon(2, 11), soon(2, 12))

    def killed(*args: Any, **kwargs: Any) -> None:
        raise WorkerKilled

    monkeypatch.setattr(EventLink.objects, "create", killed)
    sync_env.sync(expect="failed")
    assert not Activity.objects.exists()  # rolled back with its link
    monkeypatch.undo()
    sync_env.sync()
    assert sorted(Activity.objects.values_list("subject", flat=True)) == ["Another one", "From calendar"]
    assert_in_step(sync_env)


def test_r10_one_bad_event_is_skipped_with_its_reason(
    sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync_env.start()
    sync_env.sync()
    bad_id = sync_env.control.create_event("Broken", soon(2, 9), soon(2, 10))
    sync_env.control.create_event("Fine", soon(2, 11), soon(2, 12))
    real_import = pull._import

    def import_or_fail(ctx: Any, event: Any) -> None:
        if event.external_id == bad_id:
            raise ValueError("cannot understand this event")
        real_import(ctx, event)

    monkeypatch.setattr(pull, "_import", import_or_fail)
    outcome = sync_env.sync()
    assert outcome.result is not None
    assert [e.item for e in outcome.result.pulled.errors] == [bad_id]
    # Our own words and the failure's kind: what the exception said goes to the log only (#13).
    assert (
        outcome.result.pulled.errors[0].reason == "CalSync could not apply this calendar change (ValueError)"
    )
    assert list(Activity.objects.values_list("subject", flat=True)) == ["Fine"]
    run = SyncRun.objects.filter(account=sync_env.account).first()
    assert run is not None
    assert run.counts["pulled"]["errors"][0]["item"] == bad_id


def test_r10_both_sides_edited_merge_field_by_field(sync_env: SyncEnv) -> None:
    sync_env.start()
    [activity] = populate(sync_env, 1)
    sync_env.sync()
    event_id = sync_env.link_of(activity).external_id
    # Different fields on each side: both edits survive, no conflict.
    activity.location = "CRM room"
    activity.save()
    sync_env.control.update_event(event_id, subject="Calendar subject")
    outcome = sync_env.sync()
    assert outcome.result is not None
    assert outcome.result.pulled.conflicts == []
    activity.refresh_from_db()
    assert (activity.subject, activity.location) == ("Calendar subject", "CRM room")
    assert_in_step(sync_env)
    # The same field on both sides: the later change wins, and the conflict is recorded.
    activity.subject = "CRM subject (earlier)"
    activity.save()
    sync_env.control.update_event(event_id, subject="Calendar subject (later)")
    outcome = sync_env.sync()
    assert outcome.result is not None
    assert outcome.result.pulled.conflicts == [{"item": event_id, "field": "subject", "winner": "calendar"}]
    activity.refresh_from_db()
    assert activity.subject == "Calendar subject (later)"
    run = SyncRun.objects.filter(account=sync_env.account).first()
    assert run is not None
    assert run.counts["pulled"]["conflicts"][0]["field"] == "subject"
    assert_in_step(sync_env)


class EditsAfterListing:
    """A provider that lets the user edit the calendar right after the engine listed changes."""

    def __init__(self, inner: CalendarProvider, edit: Any) -> None:
        self._inner = inner
        self._edit = edit

    def list_changes(self, *args: Any, **kwargs: Any) -> ChangePage:
        page = self._inner.list_changes(*args, **kwargs)
        if self._edit is not None:
            self._edit()
            self._edit = None
        return page

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_r10_stale_etag_412_refetches_and_merges(sync_env: SyncEnv) -> None:
    sync_env.start()
    [activity] = populate(sync_env, 1)
    sync_env.sync()
    event_id = sync_env.link_of(activity).external_id
    activity.note = "Edited in the CRM"
    activity.save()
    factory = sync_env.setup.provider_factory

    def edit() -> None:
        sync_env.control.update_event(event_id, location="Edited in the calendar")

    sync_env.setup.provider_factory = lambda account: EditsAfterListing(factory(account), edit)
    sync_env.sync()
    sync_env.setup.provider_factory = factory
    activity.refresh_from_db()
    assert (activity.note, activity.location) == ("Edited in the CRM", "Edited in the calendar")
    event = sync_env.control.event(event_id)
    assert event is not None
    assert (event.description, event.location) == ("Edited in the CRM", "Edited in the calendar")
    sync_env.sync()
    assert_in_step(sync_env)


def test_r10_crm_deletion_of_an_activity_whose_event_is_being_created(
    sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync_env.start()
    sync_env.sync()
    [activity] = populate(sync_env, 1)
    real_create_all = push._create_all

    def delete_meanwhile(ctx: Any, creates: Any) -> None:
        Activity.objects.filter(pk=activity.pk).delete()
        real_create_all(ctx, creates)

    monkeypatch.setattr(push, "_create_all", delete_meanwhile)
    sync_env.sync()
    assert sync_env.control.events() == []
    assert not EventLink.objects.exists()


def test_lease_blocks_a_second_run_and_expires(sync_env: SyncEnv) -> None:
    sync_env.start()
    now = dt.datetime.now(dt.UTC)
    token = runner.claim(sync_env.account.pk, now)
    assert token is not None
    assert runner.run_account_sync(sync_env.account.pk).status == runner.RunStatus.BUSY
    later = now + runner.lease_length() + dt.timedelta(seconds=1)
    outcome = runner.run_account_sync(
        sync_env.account.pk, provider_factory=sync_env.setup.provider_factory, now=later
    )
    assert outcome.status == runner.RunStatus.OK
    assert CalendarAccount.objects.get(pk=sync_env.account.pk).sync_lease_token == ""
