"""The sync algorithm for one account (habit 1): no request, no Celery, no HTTP of its own.

One run: list the calendar's changes since the stored cursor (a full listing on the first run,
after the cursor expired, and once a day) and apply them to the CRM (``pull``); send the CRM's
changes (``push``) and deletions; hand back the new cursor with a ``SyncResult``. The caller
(``calendarsync.sync.runner``) stores the cursor only after both sides are settled, so a run that
dies half-way is simply repeated: every step is an upsert keyed on ids both sides keep, and
nothing is created twice (R10).

The engine only talks to a ``CalendarProvider`` and never asks which provider it is.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from django.utils import timezone

from calendarsync.models import CalendarAccount
from calendarsync.providers.base import CalendarProvider, ChangePage, CursorExpired
from calendarsync.sync.context import (
    FULL_SYNC_INTERVAL,
    FULL_SYNC_WINDOW,
    SideCounts,
    SyncContext,
    SyncResult,
)
from calendarsync.sync.full_listing import full_listing_window, reconcile_full_listing
from calendarsync.sync.pull import pull
from calendarsync.sync.push import delete_pending, push

logger = logging.getLogger(__name__)

__all__ = ["NothingToSync", "SideCounts", "SyncResult", "cursor_fields", "sync"]


class NothingToSync(Exception):
    """The account has no started sync or no calendar to sync with."""


def sync(
    account: CalendarAccount,
    provider: CalendarProvider,
    *,
    now: dt.datetime | None = None,
    has_due_activities: bool = True,
    has_pending_deletions: bool = True,
    progress: Callable[[SyncResult], None] | None = None,
    on_result: Callable[[SyncResult], None] | None = None,
) -> SyncResult:
    """Pull the calendar's changes, then push the CRM's; returns what changed on each side.

    ``account`` comes with ``user``, ``preferences`` and ``preferences.calendar`` loaded. The
    ``has_*`` hints (cheap EXISTS answers the caller already has) let a run with nothing to do
    skip the queries that would find nothing. ``progress``, if given, is called with the result
    so far while the run works (never when nothing changed); ``on_result`` is handed the result
    as soon as it exists, so a run that fails still has what it did so far (D2: its log).
    """
    preferences = getattr(account, "preferences", None)
    if preferences is None or preferences.sync_started_at is None or preferences.sync_stopped_at is not None:
        raise NothingToSync(f"sync is not started for account {account.pk}")
    if preferences.calendar is None:
        raise NothingToSync(f"account {account.pk} has no calendar chosen")
    calendar_id = preferences.calendar.external_id
    ctx = SyncContext(
        account=account,
        preferences=preferences,
        provider=provider,
        calendar_id=calendar_id,
        owner=account.user,
        now=now or timezone.now(),
        result=SyncResult(calendar_id=calendar_id),
        progress=progress,
    )
    if on_result is not None:
        on_result(ctx.result)
    page = _list_changes(ctx)
    pull(ctx, page)
    if page.full_listing:
        reconcile_full_listing(ctx, page, full_listing_window(ctx.now))
    ctx.report_progress(force=True)
    if has_due_activities:
        push(ctx)
        ctx.report_progress(force=True)
    if has_pending_deletions or ctx.deletions_queued:
        delete_pending(ctx)
    ctx.result.cursor = page.cursor
    if (
        ctx.result.pushed.created
        and not ctx.result.pull_incomplete
        and not ctx.provider.reports_unlisted_deletions
    ):
        _absorb_own_creations(ctx, page.cursor)
    return ctx.result


def _absorb_own_creations(ctx: SyncContext, cursor: str) -> None:
    """List once more after creating events, so the cursor has seen them.

    Some change feeds (Exchange's SyncFolderItems, Graph delta) never report an item that was
    created and deleted between two listings: without this, an event the user deletes before
    the next run would never be reported and its activity would stay (R3). Our own events come
    back unchanged (same etag) and cost nothing; a user edit made meanwhile is pulled as usual.
    """
    try:
        page = ctx.provider.list_changes(
            ctx.calendar_id, cursor, window_start=ctx.now, window_end=ctx.now + FULL_SYNC_WINDOW
        )
    except CursorExpired:
        return  # the next run lists everything anyway
    pull(ctx, page)
    if not ctx.result.pull_incomplete:
        ctx.result.cursor = page.cursor


def _list_changes(ctx: SyncContext) -> ChangePage:
    account = ctx.account
    cursor = account.sync_cursor if account.sync_cursor_calendar == ctx.calendar_id else ""
    full_sync_due = account.full_sync_at is None or ctx.now - account.full_sync_at >= FULL_SYNC_INTERVAL
    if cursor and not full_sync_due:
        try:
            # One request when nothing changed.
            return ctx.provider.list_changes(
                ctx.calendar_id, cursor, window_start=ctx.now, window_end=ctx.now + FULL_SYNC_WINDOW
            )
        except CursorExpired:
            # R10: list everything again; known events find their links, ours carry our tag.
            logger.info("Calendar cursor of account %s expired: full resync", account.pk)
            ctx.result.cursor_expired = True
    ctx.result.full_sync = True
    window_start, window_end = full_listing_window(ctx.now)
    try:
        return ctx.provider.list_changes(
            ctx.calendar_id, None, window_start=window_start, window_end=window_end
        )
    except CursorExpired:
        # The new round's own paging token expired half-way: list from scratch again, once.
        logger.info("Full listing of account %s expired while paging: listing again", account.pk)
        return ctx.provider.list_changes(
            ctx.calendar_id, None, window_start=window_start, window_end=window_end
        )


def cursor_fields(account: CalendarAccount, result: SyncResult, now: dt.datetime) -> dict[str, Any]:
    """The account columns that store the new cursor (one UPDATE with the caller's bookkeeping).

    While a pulled change is unsettled (a transient failure), the old cursor is kept so the
    calendar lists that change again.
    """
    if result.cursor is None or result.pull_incomplete:
        return {}
    fields: dict[str, Any] = {"sync_cursor": result.cursor, "sync_cursor_calendar": result.calendar_id}
    if result.full_sync:
        fields["full_sync_at"] = now
    return fields
