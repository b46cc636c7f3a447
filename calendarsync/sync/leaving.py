"""R15: items that leave what is synced (with R2, R9, O6).

- An item moved into the past: the move itself is mirrored on the other side (the engine merges
  it as usual), then the item stops syncing and says so (skipped, ``MOVED_INTO_PAST_REASON``).
  Its link stays: past items are left alone (R2) on both sides from then on, and moving it back
  into the future carries on with the same event.
- A calendar-made event that becomes private while O6 is "don't sync": its activity goes to the
  trash (restorable) and the link ends; the event stays in the calendar, skipped from then on
  like any private event.
"""

from __future__ import annotations

from django.db import transaction

from activities.models import SyncStatus
from calendarsync.models import EventLink, LinkOrigin, LinkState, PrivateEvents
from calendarsync.providers.base import RemoteEvent
from calendarsync.sync.context import Skip, SyncContext, fields_of_snapshot
from calendarsync.sync.mapping import Fields, calendar_fields, is_past
from calendarsync.sync.reasons import Reason
from calendarsync.sync.trash import move_to_trash

MOVED_INTO_PAST_REASON = "Moved into the past: no longer synced"
MADE_PRIVATE_REASON = "Made private in the calendar; private events are not synced"


def moved_into_past(ctx: SyncContext, link: EventLink, now_fields: Fields) -> bool:
    """``now_fields`` (either side) are past while the time both sides last agreed on was not."""
    agreed = fields_of_snapshot(link.snapshot, "cal")
    return (
        link.state == LinkState.ACTIVE
        and agreed is not None
        and "time" in agreed
        and is_past(now_fields, ctx.now, ctx.tz)
        and not is_past(agreed, ctx.now, ctx.tz)
    )


def stop_syncing_past(ctx: SyncContext, activity_id: int, item: str, title: str = "") -> None:
    """After the move was mirrored: the item says why it no longer syncs (R9, R15)."""
    ctx.set_status(
        {activity_id: None},
        SyncStatus.SKIPPED,
        Reason.MOVED_INTO_PAST,
        MOVED_INTO_PAST_REASON,
        acknowledge=False,
    )
    ctx.result.pulled.skip(Skip(item, MOVED_INTO_PAST_REASON, Reason.MOVED_INTO_PAST, title, activity_id))


def made_private_and_not_synced(ctx: SyncContext, link: EventLink, event: RemoteEvent) -> bool:
    """A synced calendar-made event is private now, and private events are not synced (O6)."""
    return (
        ctx.two_way
        and event.private
        and link.origin == LinkOrigin.CALENDAR
        and link.state == LinkState.ACTIVE
        and ctx.preferences.private_events == PrivateEvents.SKIP
        and not is_past(calendar_fields(event, ctx.excluded_emails), ctx.now, ctx.tz)
    )


def leave_as_private(ctx: SyncContext, link: EventLink) -> None:
    """The activity goes to the trash and the link ends (R15)."""
    activity = link.activity
    with transaction.atomic():
        link.delete()
        if activity is None:
            return
        ctx.handled.add(activity.pk)
        move_to_trash(activity, ctx.account, MADE_PRIVATE_REASON)
    ctx.result.pulled.done("deleted", Reason.MADE_PRIVATE, activity.subject, external_id=link.external_id)
