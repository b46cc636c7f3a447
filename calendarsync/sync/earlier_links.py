"""The links a user's earlier account left on the same calendar (C6: Stop sync, Add account, Start sync).

A stopped account keeps its links (C6). The user's next account on the same calendar takes each
one over the first time it meets the item: an activity it pushes (push), a single event that
became a series (R14, shape), an event its full listing lacks (R12: deleted meanwhile, by the
user or before the stop). Taking over copies the link, with what both sides last agreed on, into
the new account, so what follows sees every change made since on either side (R3, R10).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet

from calendarsync.models import EventLink, LinkState
from calendarsync.sync.context import SyncContext


def earlier_links(ctx: SyncContext) -> QuerySet[EventLink]:
    """Active links of the owner's activities in the owner's other accounts on this calendar,
    whose activity this account does not link yet; newest first."""
    linked_here = EventLink.objects.filter(account=ctx.account, activity_id=OuterRef("activity_id"))
    return (
        EventLink.objects.filter(
            account__user_id=ctx.owner.pk,
            calendar_external_id=ctx.calendar_id,
            activity__owner_id=ctx.owner.pk,
            state=LinkState.ACTIVE,
        )
        .exclude(account=ctx.account)
        .exclude(Exists(linked_here))
        .order_by("-updated_at")
    )


def take_over(ctx: SyncContext, earlier: EventLink) -> EventLink:
    """This account's copy of ``earlier``: same event, same agreement, same origin (R5, R10)."""
    with transaction.atomic():
        return EventLink.objects.create(
            account=ctx.account,
            activity_id=earlier.activity_id,
            calendar_external_id=earlier.calendar_external_id,
            external_id=earlier.external_id,
            etag=earlier.etag,
            origin=earlier.origin,
            activity_type_id=earlier.activity_type_id,
            snapshot=earlier.snapshot,
            remote_updated=earlier.remote_updated,
            is_recurring_instance=earlier.is_recurring_instance,
            series_id=earlier.series_id,
            role=earlier.role,
            ical_uid=earlier.ical_uid,
            web_url=earlier.web_url,
        )


def take_over_newest(ctx: SyncContext, links: Sequence[EventLink]) -> dict[int, EventLink]:
    """Take over one of ``links`` per activity, the first (newest) whose event this account does
    not link yet; returns this account's new links by activity."""
    taken = set(
        EventLink.objects.filter(
            account=ctx.account, external_id__in=[link.external_id for link in links]
        ).values_list("external_id", flat=True)
    )
    adopted: dict[int, EventLink] = {}
    for link in links:
        if link.activity_id is None or link.activity_id in adopted or link.external_id in taken:
            continue
        adopted[link.activity_id] = take_over(ctx, link)
        taken.add(link.external_id)
    return adopted
