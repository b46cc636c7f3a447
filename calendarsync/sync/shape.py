"""R14: a linked single event that became a recurring series in the calendar (with R7, R10).

The calendars report this differently (Google lists the new instances naming the old id as their
series, with nothing under the old id; Graph removes the old id and lists the occurrences; EWS
updates the same item into a series master, whose occurrences come from a calendar view), but
each listing holds occurrences whose series id is the id of a linked single event. Before those
changes are applied, that link moves onto one of the occurrences (the one at the event's time,
else the earliest): its activity becomes that read-only occurrence, keeping its notes, links and
participants, and the other occurrences come in beside it. No duplicate, and no link is left on
the series, so nothing the CRM does to the former single event can write to or delete the
series. A single event an earlier account of the user linked (Stop sync, Add account: C6) is
taken over the same way before the new account pushes anything to it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.db import transaction

from activities.models import Activity
from calendarsync.models import EventLink, LinkState
from calendarsync.providers.base import Change, RemoteEvent
from calendarsync.sync import earlier_links
from calendarsync.sync.context import READ_ONLY_OCCURRENCE, SyncContext, fields_of_snapshot
from calendarsync.sync.mapping import event_time

logger = logging.getLogger(__name__)


def take_over_series(
    ctx: SyncContext, changes: Sequence[Change], links: dict[str, EventLink]
) -> list[Change]:
    """Move the links of single events that became series onto their occurrences, in ``links`` too.

    Returns deletions to apply for links left without an occurrence to take over (every
    occurrence listed is already linked): their single event no longer exists as such.
    """
    occurrences: dict[str, list[RemoteEvent]] = {}
    for change in changes:
        event = change.event
        if (
            event is not None
            and not change.deleted
            and event.is_recurring_instance
            and event.series_id
            and change.external_id not in links
        ):
            occurrences.setdefault(event.series_id, []).append(event)
    series_ids = {
        change.event.series_id
        for change in changes
        if change.event is not None and change.event.is_recurring_instance and change.event.series_id
    }
    if not series_ids:
        return []
    former = list(
        EventLink.objects.filter(
            account=ctx.account, external_id__in=list(series_ids), is_recurring_instance=False
        ).exclude(state=LinkState.DETACHED)
    )
    former.extend(_earlier_accounts_single_events(ctx, series_ids))
    listed = {change.external_id for change in changes}
    orphans: list[Change] = []
    for link in former:
        series_id = link.external_id
        if link.state == LinkState.DELETE_PENDING or link.activity_id is None:
            # Deleted in the CRM meanwhile: the series is the user's now, never deleted for it.
            link.delete()
            links.pop(series_id, None)
            continue
        candidates = occurrences.get(series_id, [])
        occurrence = _matching(link, candidates)
        if occurrence is None:
            links[series_id] = link
            if series_id not in listed:  # EWS lists the former single event's removal itself
                orphans.append(Change(external_id=series_id, event=None, deleted=True))
            continue
        candidates.remove(occurrence)
        _move_onto(link, occurrence)
        links.pop(series_id, None)
        links[occurrence.external_id] = link
        logger.info("Calendar event %s of account %s became a recurring series", series_id, ctx.account.pk)
    return orphans


def _earlier_accounts_single_events(ctx: SyncContext, series_ids: set[str]) -> list[EventLink]:
    """Single events an earlier account linked (C6) that became series before this account met
    them: taken over first, so they move onto an occurrence like this account's own (R14)."""
    here = set(
        EventLink.objects.filter(account=ctx.account, external_id__in=list(series_ids)).values_list(
            "external_id", flat=True
        )
    )
    wanted = series_ids - here
    if not wanted:
        return []
    earlier = earlier_links.earlier_links(ctx).filter(
        external_id__in=list(wanted), is_recurring_instance=False
    )
    return list(earlier_links.take_over_newest(ctx, list(earlier)).values())


def _matching(link: EventLink, candidates: list[RemoteEvent]) -> RemoteEvent | None:
    """The occurrence at the single event's agreed time, else the earliest one."""
    if not candidates:
        return None
    agreed = fields_of_snapshot(link.snapshot, "cal")
    agreed_time = agreed.get("time") if agreed is not None else None
    timed = sorted(candidates, key=lambda event: _start_key(event))
    for event in timed:
        if agreed_time is not None and event_time(event) == agreed_time:
            return event
    return timed[0]


def _start_key(event: RemoteEvent) -> str:
    time = event_time(event)
    return time.get("start") or time.get("start_date") or ""


def _move_onto(link: EventLink, occurrence: RemoteEvent) -> None:
    """The link now follows the occurrence; the agreed snapshot stays, so the merge sees any change."""
    with transaction.atomic():
        link.external_id = occurrence.external_id
        link.is_recurring_instance = True
        link.series_id = occurrence.series_id or ""
        link.etag = ""  # not the occurrence's: its content must be merged
        link.save(update_fields=["external_id", "is_recurring_instance", "series_id", "etag", "updated_at"])
        Activity.objects.filter(event_links=link).update(sync_read_only_reason=READ_ONLY_OCCURRENCE)
