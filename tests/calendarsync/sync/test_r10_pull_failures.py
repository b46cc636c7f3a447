"""R10 while applying what the calendar listed: a change that was not applied is listed again.

A pulled change that fails for a reason a later run can settle (a busy database, an event that
kept changing while it was merged) keeps the old cursor, so the calendar lists it again; one
that can never be applied (an unreadable event) is skipped with its reason and does not hold
the cursor back. A cursor expiring while a listing pages restarts the listing in the same run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import OperationalError, connection

from activities.models import Activity
from calendarsync.models import CalendarAccount, Provider
from calendarsync.providers.base import CalendarProvider, EventData, RemoteEvent
from calendarsync.sync import pull
from tests.calendarsync.sync.conftest import SyncEnv, assert_in_step, soon

pytestmark = pytest.mark.django_db


def failing_activity_writes(count: int) -> Callable[..., Any]:
    """A database that refuses the next ``count`` writes of an activity's subject (busy, locked)."""
    remaining = [count]

    def execute(run: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        if remaining[0] and sql.startswith("UPDATE") and "activities_activity" in sql and "subject" in sql:
            remaining[0] -= 1
            raise OperationalError("database is locked")
        return run(sql, params, many, context)

    return execute


def test_r10_database_error_while_applying_a_pulled_change_keeps_the_cursor(sync_env: SyncEnv) -> None:
    sync_env.start()
    event_id = sync_env.control.create_event("From the calendar", soon(2, 9), soon(2, 10))
    sync_env.sync()
    cursor = sync_env.account.sync_cursor
    sync_env.control.update_event(event_id, subject="Renamed in the calendar")
    with connection.execute_wrapper(failing_activity_writes(1)):
        outcome = sync_env.sync(expect="retry")
    assert outcome.result is not None
    assert outcome.result.pull_incomplete
    assert sync_env.account.sync_cursor == cursor
    assert sync_env.imported(event_id).subject == "From the calendar"
    # The next run gets the change again and applies it: the edit is not lost.
    sync_env.sync()
    assert sync_env.imported(event_id).subject == "Renamed in the calendar"
    assert sync_env.account.sync_cursor != cursor
    assert_in_step(sync_env)


class BusyUser:
    """The real adapter, while the user edits the event in the calendar right before each of our writes."""

    def __init__(self, inner: CalendarProvider, sync_env: SyncEnv, edits: int) -> None:
        self.inner = inner
        self.sync_env = sync_env
        self.edits = edits

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def update_event(
        self, calendar_id: str, external_id: str, event: EventData, *, etag: str | None, **options: Any
    ) -> RemoteEvent:
        if self.edits:
            self.sync_env.control.update_event(external_id, description=f"Edit {self.edits}")
            self.edits -= 1
        return self.inner.update_event(calendar_id, external_id, event, etag=etag, **options)


def test_r10_conflict_after_the_retries_keeps_the_cursor(sync_env: SyncEnv) -> None:
    sync_env.start()
    event_id = sync_env.control.create_event("From the calendar", soon(2, 9), soon(2, 10))
    sync_env.sync()
    activity = sync_env.imported(event_id)
    cursor = sync_env.account.sync_cursor
    sync_env.control.update_event(event_id, subject="Renamed in the calendar")
    activity.location = "Room in the CRM"
    activity.save()
    real_factory = sync_env.setup.provider_factory
    # Enough edits to outlast the pull's retries; the push then merges the latest copy.
    sync_env.setup.provider_factory = lambda account: BusyUser(real_factory(account), sync_env, 4)
    outcome = sync_env.sync(expect="retry")
    assert outcome.result is not None
    assert outcome.result.pull_incomplete
    assert sync_env.account.sync_cursor == cursor
    sync_env.setup.provider_factory = real_factory
    sync_env.sync()
    activity.refresh_from_db()
    assert (activity.subject, activity.location, activity.note) == (
        "Renamed in the calendar",
        "Room in the CRM",
        "Edit 1",
    )
    assert sync_env.account.sync_cursor != cursor
    assert_in_step(sync_env)


def test_r10_an_event_that_can_never_be_applied_does_not_hold_the_cursor(
    sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync_env.start()
    sync_env.sync()
    cursor = sync_env.account.sync_cursor
    bad_id = sync_env.control.create_event("Broken", soon(2, 9), soon(2, 10))
    real_import = pull._import

    def import_or_fail(ctx: Any, event: Any) -> None:
        if event.external_id == bad_id:
            raise ValueError("cannot understand this event")
        real_import(ctx, event)

    monkeypatch.setattr(pull, "_import", import_or_fail)
    outcome = sync_env.sync()
    assert outcome.result is not None
    assert [e.item for e in outcome.result.pulled.errors] == [bad_id]
    assert not outcome.result.pull_incomplete
    assert sync_env.account.sync_cursor != cursor


# --------------------------------------------------------------------------- 17c: expiry while paging


def expire_after_first_page(sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Small listing pages; the calendar drops every cursor (also the round's own) after the first one."""
    expired = [False]

    def expire_once() -> None:
        if not expired[0]:
            expired[0] = True
            sync_env.control.expire_cursor()

    if sync_env.setup.provider == Provider.MICROSOFT:
        from calendarsync.providers.microsoft import adapter

        monkeypatch.setattr(adapter, "PAGE_SIZE", 1)
        real_factory = sync_env.setup.provider_factory

        def factory(account: CalendarAccount) -> CalendarProvider:
            provider = real_factory(account)
            client = provider._client  # type: ignore[attr-defined]
            real_request = client.request

            def request(method: str, path: str, **kwargs: Any) -> Any:
                answer = real_request(method, path, **kwargs)
                if "delta" in path and isinstance(answer, dict) and "@odata.nextLink" in answer:
                    expire_once()
                return answer

            client.request = request
            return provider

        monkeypatch.setattr(sync_env.setup, "provider_factory", factory)
    elif sync_env.setup.provider == Provider.EXCHANGE:
        from exchangelib.services import SyncFolderItems

        from calendarsync.providers.exchange import services

        monkeypatch.setattr(services, "SYNC_PAGE_SIZE", 1)

        class ExpiringSyncFolderItems(SyncFolderItems):  # type: ignore[misc]
            def call(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
                yield from super().call(*args, **kwargs)
                if not self.includes_last_item_in_range:
                    expire_once()

        monkeypatch.setattr(services, "SyncFolderItems", ExpiringSyncFolderItems)
    else:
        pytest.skip("Google's page tokens stay valid when its sync tokens expire")
    yield


@pytest.mark.parametrize("listing", ["full", "incremental"])
def test_r10_cursor_expiring_mid_paging_restarts_the_listing(
    sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch, listing: str
) -> None:
    sync_env.start()
    if listing == "incremental":
        sync_env.sync()
    ids = [sync_env.control.create_event(f"Event {n}", soon(2, 8 + n), soon(2, 9 + n)) for n in range(3)]
    for _ in expire_after_first_page(sync_env, monkeypatch):
        outcome = sync_env.sync()
    assert outcome.result is not None
    assert outcome.result.full_sync
    assert sorted(Activity.objects.values_list("subject", flat=True)) == ["Event 0", "Event 1", "Event 2"]
    assert [sync_env.imported(event_id).subject for event_id in ids] == ["Event 0", "Event 1", "Event 2"]
    monkeypatch.undo()
    sync_env.sync()
    assert Activity.objects.count() == 3
    assert_in_step(sync_env)
