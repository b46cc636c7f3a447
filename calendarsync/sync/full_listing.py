"""R12: a full listing of a window is the truth for that window (R3, R10).

A fresh Graph delta round or EWS sync state reports no tombstones for what was deleted before
it, so after the daily full listing, an expired cursor or a long downtime, an event deleted in
between is simply absent. Every active link whose event lies inside the listed window and is
absent from the listing is checked once by id: gone, it is handled like an explicit deletion
(two-way: trash; one-way: detach); still there (moved out of the window, say), it is merged like
any listed change. Only a completed listing reconciles (the adapters return a page only after its
last page), and nothing is taken for deleted on a doubt. The links a stopped earlier account of the
user left on the same calendar (C6) are checked too: a deletion no run of that account saw is
carried out by the account that took its place.
"""

from __future__ import annotations

import datetime as dt
import logging

from calendarsync.models import EventLink, LinkState
from calendarsync.providers.base import (
    AuthRevoked,
    Change,
    ChangePage,
    InsufficientPermissions,
    NotFound,
    ProviderError,
    TransientError,
)
from calendarsync.sync import earlier_links
from calendarsync.sync.context import (
    FULL_SYNC_WINDOW,
    Skip,
    SyncContext,
    fields_of_snapshot,
    recurrence_horizon,
)
from calendarsync.sync.errors import unconfirmed_deletion_reason
from calendarsync.sync.pull import pull
from calendarsync.sync.reasons import Reason

logger = logging.getLogger(__name__)

# What a full listing covers: from a day back (events in progress, all-day items of today in
# any zone) to the recurrence horizon or a year ahead, whichever is later (R7).
LOOK_BACK = dt.timedelta(days=1)


def full_listing_window(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    return now - LOOK_BACK, now + max(FULL_SYNC_WINDOW, recurrence_horizon())


def reconcile_full_listing(
    ctx: SyncContext, page: ChangePage, window: tuple[dt.datetime, dt.datetime]
) -> None:
    """Handle the linked events a completed full listing of ``window`` lacks (R12)."""
    if not page.full_listing or ctx.result.pull_incomplete:
        return
    listed = {change.external_id for change in page.changes if change.external_id}
    missing = [
        link
        for link in EventLink.objects.filter(
            account=ctx.account, calendar_external_id=ctx.calendar_id, state=LinkState.ACTIVE
        ).only("external_id", "snapshot")
        if link.external_id not in listed and _inside(ctx, link, window)
    ]
    changes: list[Change] = []
    for link in missing:
        change = _confirm(ctx, link.external_id)
        if change is not None:
            changes.append(change)
        if ctx.result.pull_incomplete:
            break  # the calendar is busy: the rest waits for the next full listing
    if not ctx.result.pull_incomplete:
        changes.extend(_deleted_since_earlier_account(ctx, page, window))
    if changes:
        pull(ctx, ChangePage(changes=tuple(changes), cursor=page.cursor, full_listing=True))


def _deleted_since_earlier_account(
    ctx: SyncContext, page: ChangePage, window: tuple[dt.datetime, dt.datetime]
) -> list[Change]:
    """The deletions of events a stopped earlier account of the user linked on this calendar (C6).

    An event deleted in the calendar before the user stopped sync, or while it was stopped, was
    never reported to that account and is no link of this one: the listing lacks it (or lists
    its deletion, Google). This account takes the earlier link over and handles the deletion as
    its own (R3: trash; one-way: detach). An event still there is left to the listing or push
    that meets it.
    """
    reported = {change.external_id: change for change in page.changes if change.external_id}
    confirmed: dict[str, Change | None] = {}
    deleted: list[EventLink] = []
    for link in earlier_links.earlier_links(ctx):
        change = reported.get(link.external_id)
        if change is None and _inside(ctx, link, window):
            if link.external_id not in confirmed:
                confirmed[link.external_id] = _confirm(ctx, link.external_id)
            change = confirmed[link.external_id]
            if ctx.result.pull_incomplete:
                break  # the calendar is busy: the rest waits for the next full listing
        if change is not None and change.deleted:
            deleted.append(link)
    taken = earlier_links.take_over_newest(ctx, deleted)
    return [Change(external_id=link.external_id, event=None, deleted=True) for link in taken.values()]


def _inside(ctx: SyncContext, link: EventLink, window: tuple[dt.datetime, dt.datetime]) -> bool:
    """The event as last agreed lies wholly inside the listed window (a listing of overlaps)."""
    agreed = fields_of_snapshot(link.snapshot, "cal")
    time = agreed.get("time") if agreed is not None else None
    if not isinstance(time, dict):
        return False
    try:
        if "start" in time:
            start, end = dt.datetime.fromisoformat(time["start"]), dt.datetime.fromisoformat(time["end"])
        else:
            start, end = (
                dt.datetime.combine(dt.date.fromisoformat(time[name]), dt.time(), tzinfo=ctx.tz)
                for name in ("start_date", "end_date")
            )
    except (KeyError, TypeError, ValueError):
        return False
    return window[0] <= start and end <= window[1]


def _subject(ctx: SyncContext, external_id: str) -> str:
    """The title a linked event had when last synced (a rare failure's log line)."""
    link = EventLink.objects.filter(account=ctx.account, external_id=external_id).only("snapshot").first()
    crm = fields_of_snapshot(link.snapshot, "crm") if link is not None else None
    return str((crm or {}).get("subject") or "")


def _confirm(ctx: SyncContext, external_id: str) -> Change | None:
    """Read a missing event by id: a deletion if it is gone, else the event as a change."""
    try:
        event = ctx.provider.get_event(ctx.calendar_id, external_id)
    except NotFound:
        return Change(external_id=external_id, event=None, deleted=True)
    except (AuthRevoked, InsufficientPermissions):
        raise
    except TransientError as exc:
        # Not known yet: the next run lists everything again (the cursor is not stored).
        ctx.result.transient = exc
        ctx.result.pull_incomplete = True
        return None
    except ProviderError as exc:
        logger.warning("Calendar sync could not confirm the deletion of event %s: %r", external_id, exc)
        ctx.result.pulled.fail(
            Skip(
                external_id,
                unconfirmed_deletion_reason(exc)[:300],
                Reason.UNCONFIRMED_DELETION,
                _subject(ctx, external_id),
            )
        )
        return None
    return Change(external_id=external_id, event=event, deleted=event.is_cancelled)
