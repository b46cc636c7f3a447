"""Calendar -> CRM: apply one listing of calendar changes (R2-R7, R10).

Every change is upserted on (account, external id): a change listed twice, or again after a
crash, finds its link and is merged, never imported twice. An event we created but never
recorded (the worker died after the provider call) carries our private tag and is linked to
its activity instead of being imported. One unreadable or refused event is skipped with its
reason; the run goes on.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models import prefetch_related_objects

from activities.models import Activity, SyncStatus
from activities.tracking import engine_writes
from calendarsync.models import EventLink, LinkOrigin, LinkRole, LinkState, PrivateEvents
from calendarsync.providers.base import (
    AuthRevoked,
    Change,
    ChangePage,
    Conflict,
    InsufficientPermissions,
    NotFound,
    ProviderError,
    RemoteEvent,
)
from calendarsync.providers.redaction import redact
from calendarsync.sync import meetings, pending_creates
from calendarsync.sync.context import (
    READ_ONLY_OCCURRENCE,
    Skip,
    SyncContext,
    conflicts_as_dicts,
    fields_of_snapshot,
    parse_tag,
    recurrence_horizon,
    tag_for,
)
from calendarsync.sync.errors import (
    classify,
    unapplied_change_reason,
    unreadable_event_reason,
    unsettled_pull_failure,
)
from calendarsync.sync.leaving import (
    leave_as_private,
    made_private_and_not_synced,
    moved_into_past,
    stop_syncing_past,
)
from calendarsync.sync.mapping import (
    FIELD_NAMES,
    Fields,
    apply_fields,
    calendar_fields,
    crm_change_times,
    crm_fields,
    event_data,
    is_past,
    start_of,
    written_details,
)
from calendarsync.sync.merge import Mode, merge
from calendarsync.sync.reasons import Reason
from calendarsync.sync.save_status import PAST_REASON
from calendarsync.sync.shape import take_over_series
from calendarsync.sync.trash import move_to_trash

logger = logging.getLogger(__name__)

FATAL = (AuthRevoked, InsufficientPermissions)
MAX_CONFLICT_RETRIES = 2
IN_CHUNK = 500


class ItemSkipped(Exception):
    """This change is left alone; ``code`` says why to the user (D1), ``reason`` to the log."""

    def __init__(self, code: Reason, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def participant_emails(activity: Activity) -> list[str]:
    return [p.email for p in activity.participants.all() if p.email]


def pull(ctx: SyncContext, page: ChangePage) -> None:
    changes = [change for change in page.changes if change.external_id or change.error]
    if not changes:
        return
    links = _links_by_event(ctx, [c.external_id for c in changes if c.external_id])
    # R14: a linked single event that became a series: its link moves onto an occurrence first.
    changes.extend(take_over_series(ctx, changes, links))
    ctx.synced_series = _synced_series(ctx, changes)
    # Our own writes coming back (same etag) need nothing more: drop them before loading anything.
    changes = [change for change in changes if not _echo(change, links.get(change.external_id))]
    _load_activities([links[c.external_id] for c in changes if c.external_id in links])
    adoptable = _adoptable_activities(ctx, [c.event for c in changes if _unknown_live(c, links)])
    ended = _ended_by_earlier_account(
        ctx, [c.external_id for c in changes if _unknown_live(c, links) and c.external_id not in adoptable]
    )
    for change in changes:
        try:
            _apply_change(ctx, change, links.get(change.external_id), adoptable, ended)
        except ItemSkipped as skipped:
            ctx.result.pulled.skip(
                Skip(change.external_id, skipped.reason, skipped.code, _title(change)),
                log=not _skipped_before(ctx, change),
            )
        except FATAL:
            raise
        except (ProviderError, DatabaseError, ValueError, TypeError, KeyError, OverflowError) as exc:
            unsettled = unsettled_pull_failure(exc)
            if unsettled is not None:
                # Not applied, but a later run can: keep the old cursor so it is listed again (R10).
                logger.info("Calendar sync will retry event %s: %s", change.external_id, redact(repr(exc)))
                ctx.result.transient = unsettled
                ctx.result.pull_incomplete = True
            else:
                # One bad event never stops the run (recorded with its reason, R10).
                logger.warning("Calendar sync skipped event %s: %s", change.external_id, redact(repr(exc)))
                ctx.result.pulled.fail(
                    Skip(
                        change.external_id,
                        unapplied_change_reason(exc)[:300],
                        Reason.NOT_APPLIED,
                        _title(change),
                    )
                )
        ctx.report_progress()


def _synced_series(ctx: SyncContext, changes: list[Change]) -> set[str]:
    """R14: the listed series of which this account already links an occurrence (one query, only
    when occurrences are listed)."""
    series = {c.event.series_id for c in changes if c.event is not None and c.event.series_id}
    if not series:
        return set()
    return set(
        EventLink.objects.filter(
            account=ctx.account, state=LinkState.ACTIVE, series_id__in=series
        ).values_list("series_id", flat=True)
    )


def _of_synced_series(ctx: SyncContext, event: RemoteEvent) -> bool:
    """An occurrence of a series the sync follows: it comes in whenever it was made (R14). A synced
    single event made recurring, taken over after a reconnect, keeps all its occurrences."""
    return event.is_recurring_instance and bool(event.series_id) and event.series_id in ctx.synced_series


def _skipped_before(ctx: SyncContext, change: Change) -> bool:
    """The daily full listing meets an event unchanged since the last one: its skip is logged already (D2)."""
    event, last_full = change.event, ctx.account.full_sync_at
    return (
        ctx.result.full_sync
        and last_full is not None
        and event is not None
        and event.updated is not None
        and event.updated < last_full
    )


def _title(change: Change) -> str:
    return change.event.subject if change.event is not None else ""


def _echo(change: Change, link: EventLink | None) -> bool:
    event = change.event
    return (
        link is not None
        and link.state == LinkState.ACTIVE
        and not change.deleted
        and event is not None
        and bool(event.etag)
        and event.etag == link.etag
    )


def _unknown_live(change: Change, links: dict[str, EventLink]) -> bool:
    return change.event is not None and not change.deleted and change.external_id not in links


def _chunks(values: list[Any]) -> list[list[Any]]:
    """IN lists of a size every database accepts (a full listing can hold thousands of events)."""
    return [values[offset : offset + IN_CHUNK] for offset in range(0, len(values), IN_CHUNK)]


def _links_by_event(ctx: SyncContext, external_ids: list[str]) -> dict[str, EventLink]:
    return {
        link.external_id: link
        for chunk in _chunks(external_ids)
        for link in EventLink.objects.filter(account=ctx.account, external_id__in=chunk)
    }


def _load_activities(links: list[EventLink]) -> None:
    """The linked activities, with what the merge reads, attached to their links."""
    wanted = [link.activity_id for link in links if link.activity_id is not None]
    if not wanted:
        return
    activities = {
        activity.pk: activity
        for chunk in _chunks(wanted)
        for activity in Activity.objects.filter(pk__in=chunk).select_related(
            "type", "deal", "person", "organization"
        )
    }
    prefetch_related_objects(list(activities.values()), "participants")
    for link in links:
        if link.activity_id is not None:
            activity = activities.get(link.activity_id)
            if activity is None:
                link.activity_id = None  # deleted since the links were read
            else:
                link.activity = activity


def _adoptable_activities(
    ctx: SyncContext, events: list[RemoteEvent | None]
) -> dict[str, tuple[Activity, EventLink | None]]:
    """Unknown events that are really ours: linked by an earlier account (reconnect, R5), or tagged."""
    live = [e for e in events if e is not None]
    if not live:
        return {}
    found: dict[str, tuple[Activity, EventLink | None]] = {}
    earlier = [
        link
        for chunk in _chunks([e.external_id for e in live])
        for link in EventLink.objects.filter(
            account__user_id=ctx.owner.pk,
            calendar_external_id=ctx.calendar_id,
            external_id__in=chunk,
            activity__isnull=False,
            state=LinkState.ACTIVE,
        )
        .exclude(account=ctx.account)
        .select_related("activity")
        .order_by("-updated_at")
    ]
    for link in earlier:
        if link.external_id not in found and link.activity is not None:
            found[link.external_id] = (link.activity, link)
    tagged: dict[int, str] = {}
    for event in live:
        # An occurrence inherits the tag of the single event its series was made from (R14): not ours.
        parsed = None if event.is_recurring_instance else parse_tag(event.tag)
        if event.external_id not in found and parsed is not None and parsed[0] == ctx.owner.pk:
            tagged[parsed[1]] = event.external_id
    if tagged:
        for activity in Activity.objects.filter(pk__in=list(tagged), owner_id=ctx.owner.pk):
            found[tagged[activity.pk]] = (activity, None)
    activities = [activity for activity, _ in found.values()]
    prefetch_related_objects(activities, "participants", "type", "deal", "person", "organization")
    already_linked = set(
        EventLink.objects.filter(account=ctx.account, activity__in=activities).values_list(
            "activity_id", flat=True
        )
    )
    return {ext: pair for ext, pair in found.items() if pair[0].pk not in already_linked}


def _ended_by_earlier_account(ctx: SyncContext, external_ids: list[str]) -> dict[str, EventLink]:
    """Unknown events whose deletion a stopped earlier account of this user still owed (R3, R13).

    Reassigning (or deleting) an activity ends its link and leaves the event to that account's
    next run; a stopped account has none. After a reconnect (a new account, same calendar) the
    new account owes it instead: importing the event would make a second activity (R10).
    """
    if not external_ids:
        return {}
    found: dict[str, EventLink] = {}
    for chunk in _chunks(external_ids):
        for link in (
            EventLink.objects.filter(
                account__user_id=ctx.owner.pk,
                account__stopped_at__isnull=False,
                calendar_external_id=ctx.calendar_id,
                external_id__in=chunk,
                state=LinkState.DELETE_PENDING,
                is_recurring_instance=False,
            )
            .exclude(account=ctx.account)
            .order_by("-updated_at")
        ):
            found.setdefault(link.external_id, link)
    return found


def _take_over_deletion(ctx: SyncContext, earlier: EventLink, event: RemoteEvent) -> None:
    """The earlier account's pending deletion becomes this account's (run at the end of this run)."""
    if event.is_recurring_instance or event.series_id:
        raise ItemSkipped(
            Reason.SERIES_KEPT, "its activity was given away or deleted, but a series is never deleted (R14)"
        )
    EventLink.objects.create(
        account=ctx.account,
        activity=None,
        calendar_external_id=ctx.calendar_id,
        external_id=event.external_id,
        etag=event.etag or "",
        origin=earlier.origin,
        activity_type_id=earlier.activity_type_id,
        snapshot=earlier.snapshot,
        remote_updated=event.updated,
        state=LinkState.DELETE_PENDING,
    )
    ctx.deletions_queued = True


def _apply_change(
    ctx: SyncContext,
    change: Change,
    link: EventLink | None,
    adoptable: dict[str, tuple[Activity, EventLink | None]],
    ended: dict[str, EventLink],
) -> None:
    if change.error is not None:
        logger.debug("Calendar event %s is unreadable: %s", change.external_id, redact(change.error))
        raise ItemSkipped(Reason.UNREADABLE_EVENT, unreadable_event_reason(change.code))
    if change.deleted:
        if link is not None and link.role == LinkRole.ATTENDEE:
            meetings.leave(ctx, link)  # M2: only no longer attending
        elif link is not None:
            _event_deleted(ctx, link)
        return
    event = change.event
    if event is None:
        raise ItemSkipped(Reason.UNREADABLE_EVENT, "the calendar listed a change without its event")
    if link is not None:
        _linked_changed(ctx, link, event)
        return
    candidate = adoptable.get(event.external_id)
    if candidate is not None:
        activity, earlier = candidate
        _linked_changed(ctx, _adopt(ctx, activity, event, earlier), event)
        return
    if event.external_id in ended:
        _take_over_deletion(ctx, ended[event.external_id], event)
        return
    parsed = None if event.is_recurring_instance else parse_tag(event.tag)
    if parsed is not None and parsed[0] == ctx.owner.pk:
        _ours_but_activity_gone(ctx, event, parsed[1])
        return
    if _copy_of_known_meeting(ctx, event):
        return
    _import(ctx, event)


def _linked_changed(ctx: SyncContext, link: EventLink, event: RemoteEvent) -> None:
    if link.role == LinkRole.ATTENDEE:
        promoted = meetings.attendee_changed(ctx, link, event)  # M2, M3
        if promoted is not None:
            reconcile(ctx, promoted, event)
        return
    if made_private_and_not_synced(ctx, link, event):
        leave_as_private(ctx, link)  # R15, O6
        return
    if meetings.declined(event):
        _event_deleted(ctx, link)  # M2: declining is leaving the meeting
        return
    reconcile(ctx, link, event)


def _copy_of_known_meeting(ctx: SyncContext, event: RemoteEvent) -> bool:
    """M1: a copy of a meeting the CRM already has as an activity makes no second one."""
    uid = meetings.meeting_uid(event)
    company_id = ctx.owner.company_id
    if uid is None or company_id is None:
        return False
    activity = meetings.registered_activity(company_id, uid)
    if activity is None:
        return False
    if EventLink.objects.filter(account=ctx.account, activity=activity).exists():
        raise ItemSkipped(
            Reason.DUPLICATE_MEETING, "another event of this calendar already stands for this meeting"
        )
    prefetch_related_objects([activity], "participants", "type", "deal", "person", "organization")
    if activity.owner_id == ctx.owner.pk:
        reconcile(ctx, _adopt(ctx, activity, event, None), event)
    elif event.is_organizer:
        reconcile(ctx, meetings.take_over(ctx, activity, event), event)  # the organizer's copy
    elif meetings.declined(event):
        raise ItemSkipped(Reason.DECLINED, "a meeting you declined")
    else:
        meetings.attach(ctx, activity, event)
    return True


# --------------------------------------------------------------------------- linked events


def _mode(ctx: SyncContext, link: EventLink) -> Mode:
    if link.is_recurring_instance:
        return Mode.CALENDAR_WINS  # R7: read-only in the CRM
    if link.origin == LinkOrigin.CALENDAR and not ctx.two_way:
        return Mode.CRM_WINS  # R4: only edits of CRM-made events come back
    return Mode.BOTH


def calendar_owned_fields(ctx: SyncContext, link: EventLink) -> tuple[str, ...]:
    """Fields that only flow calendar -> CRM for this link (R11).

    The privacy of an event the calendar made is the calendar's: the visibility of its activity
    is a CRM setting (O5, O6) and is never written back as the event's privacy. Guests stay in
    the CRM where writing them would mail them against the user's choice (O11).
    """
    owned = ("private",) if link.origin == LinkOrigin.CALENDAR else ()
    return (*owned, "attendees") if ctx.guests_stay_in_crm else owned


def reconcile(ctx: SyncContext, link: EventLink, event: RemoteEvent, attempt: int = 0) -> None:
    """Merge a changed event with its activity; write back whichever side is behind."""
    if link.state != LinkState.ACTIVE or link.activity is None:
        raise ItemSkipped(Reason.DETACHED, "no longer synced")
    if event.etag and event.etag == link.etag:
        return  # our own write coming back: nothing changed (no echo)
    activity = link.activity
    if activity.owner_id != ctx.owner.pk:
        _end_reassigned(ctx, link)
    if link.origin == LinkOrigin.CRM and not link.is_recurring_instance and not ctx.type_selected(activity):
        raise ItemSkipped(Reason.TYPE_NO_LONGER_SENT, f"activity type {activity.type} is no longer synced")
    cal_now = calendar_fields(event, ctx.excluded_emails)
    leaving = moved_into_past(ctx, link, cal_now)  # R15: the move itself is still mirrored
    if is_past(cal_now, ctx.now, ctx.tz) and not leaving:
        raise ItemSkipped(Reason.EVENT_PAST, "in the past")
    participants = list(activity.participants.all())
    crm_now = crm_fields(activity, [p.email for p in participants if p.email], ctx.excluded_emails)
    outcome = merge(
        link.snapshot,
        crm_now,
        cal_now,
        mode=_mode(ctx, link),
        to_crm=ctx.to_crm_for(link.origin),
        crm_changed_at=crm_change_times(activity),
        cal_updated=event.updated,
        never_to_calendar=calendar_owned_fields(ctx, link),
    )
    written = event
    if outcome.write_to_calendar:
        tag = tag_for(activity) if link.origin == LinkOrigin.CRM else event.tag
        data = event_data(
            outcome.cal,
            tz=ctx.tz,
            tag=tag,
            details=ctx.details_for(activity),
            current_attendees=event.attendees,
            excluded=ctx.excluded_emails,
        )
        try:
            # https://developers.google.com/calendar/api/guides/version-resources (If-Match)
            # Only the fields the merge changed are written (R11).
            written = ctx.provider.update_event(
                ctx.calendar_id,
                event.external_id,
                data,
                etag=event.etag,
                fields=outcome.write_to_calendar,
                notify=ctx.notifies_guests(outcome.write_to_calendar),
            )
        except Conflict:
            if attempt >= MAX_CONFLICT_RETRIES:
                raise
            # Changed again since we read it: merge with the fresh copy (R10, no lost edit).
            reconcile(ctx, link, ctx.provider.get_event(ctx.calendar_id, event.external_id), attempt + 1)
            return
    cal_after = calendar_fields(written, ctx.excluded_emails)
    details = ctx.details_for(activity)
    if "description" not in outcome.write_to_calendar:
        details = written_details(link.snapshot, details)  # O7: the block the event still holds
    store_reconciled(
        ctx, link, activity, outcome.apply_to_crm, crm_now, outcome.crm, cal_after, written, details
    )
    title = str(crm_now.get("subject") or event.subject)
    if outcome.apply_to_crm:
        applied = Reason.OCCURRENCE_APPLIED if link.is_recurring_instance else Reason.APPLIED
        ctx.result.pulled.done(
            "updated", applied, title, activity_id=activity.pk, external_id=event.external_id
        )
    if outcome.write_to_calendar:
        ctx.result.pushed.done(
            "updated", Reason.SENT_UPDATE, title, activity_id=activity.pk, external_id=event.external_id
        )
    if outcome.conflicts:
        ctx.result.pulled.conflicts.extend(conflicts_as_dicts(event.external_id, outcome.conflicts))
    if leaving and is_past(cal_after, ctx.now, ctx.tz):
        stop_syncing_past(ctx, activity.pk, event.external_id, title)
    meetings.refresh_facts(activity, written)  # M2, M4


def store_reconciled(
    ctx: SyncContext,
    link: EventLink,
    activity: Activity,
    apply_names: list[str],
    crm_before: Fields,
    crm_after: Fields,
    cal_after: Fields,
    event: RemoteEvent,
    details: str,
) -> None:
    """Save the merged activity and the new agreement in one transaction.

    The activity is re-read under a row lock: a field the user edited while we merged keeps
    the user's (newer) value, and the snapshot keeps its old value there so the next run
    pushes that edit (R10: no lost edit).
    """
    snapshot_crm = dict(crm_after)
    acknowledged_change = activity.sync_changed_at
    with transaction.atomic(), engine_writes():
        if apply_names:
            fresh = (
                Activity.objects.select_for_update(of=("self",))
                .select_related("type", "deal", "person", "organization")
                .filter(pk=activity.pk)
                .first()
            )
            if fresh is None:
                raise ItemSkipped(Reason.ACTIVITY_GONE, "the activity was deleted meanwhile")
            participants = list(fresh.participants.all())
            crm_fresh = crm_fields(fresh, [p.email for p in participants if p.email], ctx.excluded_emails)
            untouched = [name for name in apply_names if crm_fresh[name] == crm_before[name]]
            for name in apply_names:
                if name not in untouched:
                    snapshot_crm[name] = crm_before[name]
            new_participants = apply_fields(fresh, crm_after, untouched, tz=ctx.tz, participants=participants)
            fresh.save()
            if new_participants is not None:
                fresh.participants.set(new_participants)
            if fresh.sync_changed_at != acknowledged_change:
                acknowledged_change = None  # edited meanwhile: leave it due for the push
        link.etag = event.etag or ""
        link.remote_updated = event.updated
        link.snapshot = {"crm": snapshot_crm, "cal": dict(cal_after), "details": details}
        link.web_url = event.web_url or link.web_url
        link.save(update_fields=["etag", "remote_updated", "snapshot", "web_url", "updated_at"])
        ctx.set_status(
            {activity.pk: acknowledged_change},
            SyncStatus.SYNCED,
            Reason.OCCURRENCE if link.is_recurring_instance else Reason.SYNCED,
            acknowledge=acknowledged_change is not None,
        )
    ctx.handled.add(activity.pk)


def _adopt(ctx: SyncContext, activity: Activity, event: RemoteEvent, earlier: EventLink | None) -> EventLink:
    """Link an event we made (crash before recording it) or an earlier account linked (R5)."""
    with transaction.atomic():
        link = EventLink.objects.create(
            account=ctx.account,
            activity=activity,
            calendar_external_id=ctx.calendar_id,
            external_id=event.external_id,
            # Not the event's etag: the merge below must look at its content.
            etag="",
            origin=earlier.origin if earlier is not None else LinkOrigin.CRM,
            activity_type_id=earlier.activity_type_id if earlier is not None else activity.type_id,
            snapshot=_agreed_before(ctx, activity, earlier),
            remote_updated=event.updated,
            is_recurring_instance=event.is_recurring_instance,
            series_id=event.series_id or "",
            role=earlier.role if earlier is not None else LinkRole.OWN,
            ical_uid=event.ical_uid or "",
        )
        pending_creates.forget([activity.pk])
    link.activity = activity
    uid = meetings.meeting_uid(event)
    if earlier is None and uid is not None and activity.owner_id == ctx.owner.pk and ctx.owner.company_id:
        meetings.claim(ctx.owner.company_id, uid, activity)  # M1: ours, made before a crash
    return link


def _agreed_before(ctx: SyncContext, activity: Activity, earlier: EventLink | None) -> Any:
    """The earlier account's agreement (R5), or the one written before our interrupted create
    (R10); with neither, the merge settles each difference by the later change."""
    if earlier is not None:
        return earlier.snapshot
    return pending_creates.agreed_at_creation(ctx.owner.pk, activity.pk) or {}


def _ours_but_activity_gone(ctx: SyncContext, event: RemoteEvent, activity_id: int) -> None:
    """A tagged event whose activity was deleted before its link was recorded (R3), or given to
    another user since (R13): delete it."""
    owner_id = Activity.objects.filter(pk=activity_id).values_list("owner_id", flat=True).first()
    if owner_id == ctx.owner.pk:
        raise ItemSkipped(Reason.LINKED_ELSEWHERE, "the activity of this event is linked to another event")
    # O11: a user deleted the activity, whose guests the create may have invited before the crash:
    # they get the cancellation that deletion means. An activity given away mails no one (R13).
    notify = owner_id is None and ctx.preferences.send_invitations
    ctx.provider.delete_event(ctx.calendar_id, event.external_id, notify=notify)
    ctx.result.pushed.done("deleted", Reason.SENT_DELETION, event.subject, external_id=event.external_id)


# --------------------------------------------------------------------------- deletions


def _end_reassigned(ctx: SyncContext, link: EventLink) -> None:
    """R1, R13: the activity was given to another user (without the save that ends this link):
    this calendar no longer controls it; its event goes at the end of this run."""
    link.state = LinkState.DETACHED if link.is_recurring_instance else LinkState.DELETE_PENDING
    link.activity = None
    link.save(update_fields=["state", "activity", "updated_at"])
    ctx.deletions_queued = True
    raise ItemSkipped(Reason.REASSIGNED, "reassigned to another user: no longer synced with this calendar")


def _event_deleted(ctx: SyncContext, link: EventLink) -> None:
    activity = link.activity
    if link.state != LinkState.ACTIVE or activity is None or activity.owner_id != ctx.owner.pk:
        # The event is gone: nothing left to do for this link. An activity given to another
        # user since stays theirs (R13).
        link.delete()
        return
    if meetings.hand_over(ctx, link, activity):
        return  # M2: a colleague still attends and takes the meeting over
    # R2, R15: an item that had left the window (the last state both sides agreed on is past) is
    # left alone. One moved into the past in the CRM after its event was deleted was still synced
    # when the deletion happened: the deletion goes through (R3), as a CRM deletion does (push).
    agreed = fields_of_snapshot(link.snapshot, "cal")
    if agreed is None or "time" not in agreed:
        agreed = crm_fields(activity, participant_emails(activity), ctx.excluded_emails)
    if is_past(agreed, ctx.now, ctx.tz):
        with transaction.atomic():
            link.delete()
            # D1: linked to nothing now, it says so (not "Synced").
            ctx.set_status(
                {activity.pk: None}, SyncStatus.SKIPPED, Reason.PAST, PAST_REASON, acknowledge=False
            )
        raise ItemSkipped(Reason.EVENT_PAST, "in the past: the activity is kept")
    if link.origin == LinkOrigin.CRM and not link.is_recurring_instance and not ctx.type_selected(activity):
        _detach(
            ctx,
            link,
            activity,
            Reason.TYPE_NO_LONGER_SENT,
            f"Deleted in the calendar; activity type {activity.type} is no longer synced",
        )
        return
    if not ctx.two_way:
        # R4: the CRM is the master in one-way sync; the activity stays and is sent again when changed.
        if _unsent_change(activity):
            # R10: an edit no run has sent yet (made after the deletion, maybe) goes out in a new event.
            link.state = LinkState.DETACHED
            link.save(update_fields=["state", "updated_at"])
            return
        _detach(
            ctx,
            link,
            activity,
            Reason.DELETED_IN_CALENDAR,
            "Deleted in the calendar; it is sent again when you change it",
        )
        return
    with transaction.atomic():
        link.delete()
        move_to_trash(activity, ctx.account, "Its event was deleted in the calendar")
    ctx.result.pulled.done("deleted", Reason.TRASHED, activity.subject, external_id=link.external_id)


def _unsent_change(activity: Activity) -> bool:
    """A synced-field change of the activity that no run has processed yet (R8, R10)."""
    changed, seen = activity.sync_changed_at, activity.sync_seen_at
    return changed is not None and (seen is None or changed > seen)


def _detach(ctx: SyncContext, link: EventLink, activity: Activity, code: Reason, reason: str) -> None:
    with transaction.atomic():
        link.state = LinkState.DETACHED
        link.save(update_fields=["state", "updated_at"])
        ctx.set_status({activity.pk: activity.sync_changed_at}, SyncStatus.SKIPPED, code, reason)
    ctx.handled.add(activity.pk)
    ctx.result.pulled.skip(Skip(link.external_id, reason, code, activity.subject, activity.pk))


# --------------------------------------------------------------------------- new events


def _import(ctx: SyncContext, event: RemoteEvent) -> None:
    """R3: a new calendar event becomes an activity of the incoming type (two-way only)."""
    if not ctx.two_way:
        raise ItemSkipped(Reason.ONE_WAY, "one-way sync: calendar events are not imported")
    # Whole seconds: some providers stamp changes to the second. An event made in the very second
    # sync started is imported rather than risk dropping one made just after (R2).
    if not _of_synced_series(ctx, event) and (
        event.updated is None or event.updated < ctx.started_at.replace(microsecond=0)
    ):
        raise ItemSkipped(Reason.EVENT_BEFORE_START, "existed before sync started")
    cal_now = calendar_fields(event, ctx.excluded_emails)
    if is_past(cal_now, ctx.now, ctx.tz):
        raise ItemSkipped(Reason.EVENT_PAST, "in the past")
    if event.is_recurring_instance and start_of(cal_now, ctx.tz) > ctx.now + recurrence_horizon():
        raise ItemSkipped(Reason.BEYOND_HORIZON, "beyond the recurrence horizon")
    if event.private and ctx.preferences.private_events == PrivateEvents.SKIP:
        raise ItemSkipped(Reason.PRIVATE_EVENT, "private event (not synced)")
    if meetings.declined(event):
        raise ItemSkipped(Reason.DECLINED, "a meeting you declined")
    incoming_type = ctx.preferences.incoming_type
    if incoming_type is None:
        raise ItemSkipped(Reason.NO_INCOMING_TYPE, "no activity type chosen for calendar events")
    if not incoming_type.is_active:
        # A2: a deactivated type is kept on old activities, never given to new ones.
        raise ItemSkipped(
            Reason.INCOMING_TYPE_INACTIVE,
            f"the activity type for calendar events, {incoming_type.name}, is deactivated: "
            "choose another on the Calendar Sync page",
        )
    company_id = ctx.owner.company_id
    if company_id is None:
        raise ItemSkipped(Reason.NO_COMPANY, "the account's user belongs to no company")
    activity = Activity(
        company_id=company_id,
        owner=ctx.owner,
        type=incoming_type,
        sync_status=SyncStatus.SYNCED,
        sync_code=Reason.OCCURRENCE if event.is_recurring_instance else Reason.SYNCED,
        sync_status_at=ctx.now,
        calendar_account=ctx.account,
        sync_read_only_reason=READ_ONLY_OCCURRENCE if event.is_recurring_instance else "",
    )
    translate = ctx.to_crm_for(LinkOrigin.CALENDAR)
    crm_values = {name: translate(name, cal_now[name]) for name in FIELD_NAMES}
    apply_fields(activity, crm_values, FIELD_NAMES, tz=ctx.tz, participants=[])
    try:
        _save_imported(ctx, activity, event, incoming_type, cal_now)
    except meetings.MeetingTaken:
        # M1: a colleague's sync made this meeting's activity a moment ago: attend it instead.
        if not _copy_of_known_meeting(ctx, event):
            raise ItemSkipped(
                Reason.MEETING_IN_PROGRESS, "the meeting's activity is being made by another sync"
            ) from None
        return
    meetings.refresh_facts(activity, event)
    ctx.result.pulled.done(
        "created", Reason.IMPORTED, activity.subject, activity_id=activity.pk, external_id=event.external_id
    )


def _save_imported(
    ctx: SyncContext, activity: Activity, event: RemoteEvent, incoming_type: Any, cal_now: Fields
) -> None:
    uid = meetings.meeting_uid(event)
    with transaction.atomic(), engine_writes():
        activity.save()
        if uid is not None:
            meetings.register(activity.company_id, uid, activity)
        EventLink.objects.create(
            account=ctx.account,
            activity=activity,
            calendar_external_id=ctx.calendar_id,
            external_id=event.external_id,
            etag=event.etag or "",
            origin=LinkOrigin.CALENDAR,
            activity_type=incoming_type,
            snapshot={"crm": crm_fields(activity, [], ctx.excluded_emails), "cal": cal_now},
            remote_updated=event.updated,
            is_recurring_instance=event.is_recurring_instance,
            series_id=event.series_id or "",
            ical_uid=event.ical_uid or "",
            web_url=event.web_url or "",
        )


def item_error_reason(error: ProviderError) -> str:
    return classify(error).item_reason


__all__ = ["ItemSkipped", "NotFound", "pull", "reconcile"]
