"""CRM -> calendar: send the activities changed since the last run, then the CRM deletions (R1-R6, R10).

Which activities are due is one query: the owner's (R1) future (R2) activities whose synced
fields changed (``sync_changed_at``) after sync started (R2) and after the run that last
processed them (``sync_seen_at``). New events go out in bulk (``create_events``) with an
idempotency key derived from the activity and the account, so a retried or repeated push
finds the event it made instead of making a second one.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet, prefetch_related_objects

from activities.models import Activity, SyncStatus
from calendarsync.models import EventLink, LinkOrigin, LinkRole, LinkState, SyncPreferences
from calendarsync.providers.base import (
    VIDEO_CALL,
    Attendee,
    AuthRevoked,
    Conflict,
    EventData,
    InsufficientPermissions,
    ProviderError,
    RemoteEvent,
    TransientError,
)
from calendarsync.providers.redaction import redact
from calendarsync.sync import earlier_links, item_errors, meetings, pending_creates
from calendarsync.sync.context import (
    Skip,
    SyncContext,
    conflicts_as_dicts,
    fields_of_snapshot,
    idempotency_key,
    tag_for,
)
from calendarsync.sync.errors import classify
from calendarsync.sync.leaving import MOVED_INTO_PAST_REASON, moved_into_past
from calendarsync.sync.mapping import (
    Fields,
    calendar_fields,
    crm_fields,
    event_data,
    is_past,
    written_details,
)
from calendarsync.sync.merge import ATTENDEES, Mode, merge
from calendarsync.sync.pull import ItemSkipped, calendar_owned_fields, reconcile
from calendarsync.sync.reasons import Reason
from calendarsync.sync.save_status import PAST_REASON, type_not_sent_reason

logger = logging.getLogger(__name__)

FATAL = (AuthRevoked, InsufficientPermissions)
# After the event made under a key was deleted in the calendar, later keys are tried in order:
# the walk is deterministic, so a retry adopts what an interrupted run made.
MAX_KEY_ATTEMPTS = 20


@dataclass
class _Create:
    activity: Activity
    crm: Fields
    data: EventData
    replaces: EventLink | None  # a detached link the new event takes over


def due_activities(
    owner_id: int, started_at: dt.datetime, today: dt.date, preferences_id: int | None = None
) -> QuerySet[Activity]:
    """The owner's activities with a synced-field change no run has processed yet (R1, R2, R8)."""
    due = (
        Activity.objects.filter(owner_id=owner_id, sync_changed_at__gte=started_at)
        .filter(upcoming_or_linked(today))
        .filter(Q(sync_seen_at__isnull=True) | Q(sync_changed_at__gt=F("sync_seen_at")))
    )
    if preferences_id is not None:
        selected = SyncPreferences.outgoing_types.through.objects.filter(
            syncpreferences_id=preferences_id, activitytype_id=OuterRef("type_id")
        )
        due = due.annotate(type_selected=Exists(selected))
    return due


def upcoming_or_linked(today: dt.date) -> Q:
    """Not over yet (R2), or linked: a linked item moved into the past has that move mirrored (R15)."""
    linked = EventLink.objects.filter(activity_id=OuterRef("pk"), state=LinkState.ACTIVE)
    return Q(due_date__gte=today - dt.timedelta(days=1)) | Q(Exists(linked))


def push(ctx: SyncContext) -> None:
    activities: list[Activity] = list(
        due_activities(
            ctx.owner.pk,
            ctx.preferences.crm_baseline or ctx.started_at,  # R2, carried over a reconnect
            ctx.now.astimezone(ctx.tz).date(),
            ctx.preferences.pk,
        )
        .exclude(pk__in=ctx.handled)
        # R16: a refused change waits for its backoff (a new change is sent at once).
        .exclude(item_errors.push_waiting(ctx.account.pk, ctx.now))
        .annotate(had_refusal=item_errors.push_recorded(ctx.account.pk))
        .select_related("type", "deal", "person", "organization")
        .order_by("pk")
    )
    if not activities:
        return
    prefetch_related_objects(activities, "participants")
    links = {
        link.activity_id: link
        for link in EventLink.objects.filter(account=ctx.account, activity__in=activities)
        if link.activity_id is not None
    }
    unlinked = [a for a in activities if a.pk not in links]
    if unlinked:
        links.update(_adopt_earlier_links(ctx, unlinked))
    creates: list[_Create] = []
    for activity in activities:
        try:
            create = _push_one(ctx, activity, links.get(activity.pk))
        except ItemSkipped as skipped:
            _skip(ctx, activity, skipped)
            continue
        except FATAL:
            raise
        except TransientError as exc:
            ctx.result.transient = exc
            continue
        except (ProviderError, DatabaseError, ValueError, TypeError, KeyError, OverflowError) as exc:
            # One item that cannot be sent never stops the run (R10).
            _fail(ctx, activity, exc)
            continue
        if create is not None:
            creates.append(create)
        ctx.report_progress()
    if creates:
        _create_all(ctx, creates)
    if ctx.result.transient is None:
        # Sent or settled now: earlier refusals are over (this run's own stay, R16).
        settled = [activity.pk for activity in activities if getattr(activity, "had_refusal", True)]
        item_errors.clear_pushes(ctx.account, settled, ctx.now)


def _adopt_earlier_links(ctx: SyncContext, activities: list[Activity]) -> dict[int, EventLink]:
    """After a reconnect (a new account, same calendar) the earlier account's events are reused (R5)."""
    return earlier_links.take_over_newest(
        ctx, list(earlier_links.earlier_links(ctx).filter(activity__in=activities))
    )


def _push_one(ctx: SyncContext, activity: Activity, link: EventLink | None) -> _Create | None:
    crm_now = crm_fields(
        activity, [p.email for p in activity.participants.all() if p.email], ctx.excluded_emails
    )
    if is_past(crm_now, ctx.now, ctx.tz):
        if link is not None and moved_into_past(ctx, link, crm_now):
            # R15: the move itself is mirrored, then the item stops syncing.
            _update_linked(ctx, activity, link, crm_now)
            raise ItemSkipped(Reason.MOVED_INTO_PAST, MOVED_INTO_PAST_REASON)
        raise ItemSkipped(Reason.PAST, PAST_REASON)
    if link is not None and link.state == LinkState.ACTIVE:
        _update_linked(ctx, activity, link, crm_now)
        return None
    if not ctx.type_selected(activity):
        raise ItemSkipped(Reason.TYPE_NOT_SENT, type_not_sent_reason(activity))
    data = event_data(crm_now, tz=ctx.tz, tag=tag_for(activity), details=ctx.details_for(activity))
    # O11: where writing guests always mails them, they stay in the CRM unless the user invites.
    data = replace(
        data,
        attendees=() if ctx.guests_stay_in_crm else data.attendees,
        video_call=ctx.video_call(activity),
    )
    return _Create(activity, crm_now, data, replaces=link)


def _update_linked(ctx: SyncContext, activity: Activity, link: EventLink, crm_now: Fields) -> None:
    if link.calendar_external_id != ctx.calendar_id:
        raise ItemSkipped(Reason.OTHER_CALENDAR, "Synced with a calendar that is no longer selected")
    if link.is_recurring_instance:
        raise ItemSkipped(
            Reason.OCCURRENCE,
            "Occurrence of a recurring calendar event: read-only, change it in the calendar",
        )
    if link.origin == LinkOrigin.CRM and not ctx.type_selected(activity):
        raise ItemSkipped(
            Reason.TYPE_NO_LONGER_SENT, f"Activity type {activity.type} is no longer sent to the calendar"
        )
    agreed_cal = fields_of_snapshot(link.snapshot, "cal")
    if agreed_cal is None:
        raise ItemSkipped(Reason.AWAITING_CALENDAR_COPY, "Waiting for the calendar's copy of this event")
    outcome = merge(
        link.snapshot,
        crm_now,
        agreed_cal,
        mode=Mode.BOTH,
        to_crm=ctx.to_crm_for(link.origin),
        never_to_calendar=calendar_owned_fields(ctx, link),
    )
    write = list(outcome.write_to_calendar)
    if ctx.video_call(activity) and not activity.join_url and link.role == LinkRole.OWN:
        write.append(VIDEO_CALL)  # M4: asked for on an event that has none yet
    details = ctx.details_for(activity)
    if "description" not in write and details != written_details(link.snapshot, details):
        write.append("description")  # O7: what the owner may see of the deal and contacts changed
    if not write:
        ctx.set_status({activity.pk: activity.sync_changed_at}, SyncStatus.SYNCED, Reason.SYNCED)
        return
    current_attendees: tuple[Attendee, ...] = ()
    if ATTENDEES in outcome.write_to_calendar:
        # Guests are written from the event's own entries, so their names and answers stay
        # (R11): read them. An event changed since the last run is merged with instead.
        event = ctx.provider.get_event(ctx.calendar_id, link.external_id)
        if not link.etag or event.etag != link.etag:
            link.activity = activity
            reconcile(ctx, link, event)
            return
        current_attendees = event.attendees
    tag = tag_for(activity) if link.origin == LinkOrigin.CRM else None
    data = event_data(
        outcome.cal,
        tz=ctx.tz,
        tag=tag,
        details=details,
        current_attendees=current_attendees,
        excluded=ctx.excluded_emails,
    )
    data = replace(data, video_call=VIDEO_CALL in write)
    try:
        # Only the fields the CRM changed are written (R11).
        written = ctx.provider.update_event(
            ctx.calendar_id,
            link.external_id,
            data,
            etag=link.etag or None,
            fields=write,
            notify=ctx.notifies_guests(write),
        )
    except Conflict:
        # Edited in the calendar since the last run: merge both edits field by field (R10).
        link.activity = activity
        reconcile(ctx, link, ctx.provider.get_event(ctx.calendar_id, link.external_id))
        return
    record_update(
        ctx, activity, link, outcome.crm, calendar_fields(written, ctx.excluded_emails), written, details
    )
    ctx.result.pushed.done("updated", Reason.SENT_UPDATE, activity.subject, activity_id=activity.pk)
    if outcome.conflicts:
        ctx.result.pushed.conflicts.extend(conflicts_as_dicts(link.external_id, outcome.conflicts))


def record_update(
    ctx: SyncContext,
    activity: Activity,
    link: EventLink,
    crm: Fields,
    cal: Fields,
    written: RemoteEvent,
    details: str,
) -> None:
    with transaction.atomic():
        link.etag = written.etag or ""
        link.remote_updated = written.updated
        link.snapshot = {"crm": dict(crm), "cal": dict(cal), "details": details}
        link.web_url = written.web_url or link.web_url
        link.save(update_fields=["etag", "remote_updated", "snapshot", "web_url", "updated_at"])
        ctx.set_status({activity.pk: activity.sync_changed_at}, SyncStatus.SYNCED, Reason.SYNCED)
    meetings.refresh_facts(activity, written)  # M2, M4: answers and join link as written


# --------------------------------------------------------------------------- creates


def _create_all(ctx: SyncContext, creates: list[_Create]) -> None:
    items = [(create.data, idempotency_key(create.activity, ctx.account)) for create in creates]
    # Written before the call: a crash after the create leaves what was agreed (R10).
    earlier = pending_creates.remember(
        ctx.account,
        {create.activity.pk: _agreed(ctx, create.crm, create.data) for create in creates},
        ctx.now,
    )
    # Batched: one round trip per batch of calls (Google: 50 per batch request).
    # O11: a new CRM meeting invites its guests through the calendar; a repeat finds the event
    # the first attempt made and mails nobody again.
    results = ctx.provider.create_events(ctx.calendar_id, items, notify=ctx.preferences.send_invitations)
    # R13: an activity given away and back before its old event was deleted finds that event
    # under its first key; the event still goes, and the activity gets a new one.
    doomed = frozenset(
        EventLink.objects.filter(account=ctx.account, state=LinkState.DELETE_PENDING).values_list(
            "external_id", flat=True
        )
    )
    created: list[tuple[_Create, RemoteEvent]] = []
    for create, result in zip(creates, results, strict=True):
        outcome: RemoteEvent | ProviderError = result
        if isinstance(outcome, Conflict) or (
            isinstance(outcome, RemoteEvent) and outcome.external_id in doomed
        ):
            outcome = _create_after_deletion(ctx, create, doomed)
        if isinstance(outcome, RemoteEvent):
            created.append((create, outcome))
        elif isinstance(outcome, FATAL):
            raise outcome
        elif isinstance(outcome, TransientError):
            ctx.result.transient = outcome  # stays due: the retry sends it again, same key
        else:
            _fail(ctx, create.activity, outcome)
    if created:
        links = record_created(ctx, created, earlier)
        # An event an interrupted attempt made, found again by its key: merge it with what the
        # CRM has now, so an edit made since the crash still goes out (R10).
        for create, event in created:
            link = links.get(create.activity.pk)
            if link is not None and _found_earlier(ctx, create, event):
                _reconcile_found(ctx, create.activity, link, event)


def _reconcile_found(ctx: SyncContext, activity: Activity, link: EventLink, event: RemoteEvent) -> None:
    link.activity = activity
    try:
        reconcile(ctx, link, event)
    except ItemSkipped as skipped:
        _skip(ctx, activity, skipped)
    except FATAL:
        raise
    except TransientError as exc:
        ctx.result.transient = exc
    except (ProviderError, DatabaseError, ValueError, TypeError, KeyError, OverflowError) as exc:
        _fail(ctx, activity, exc)


def _claim_meetings(ctx: SyncContext, made: list[tuple[Activity, RemoteEvent]]) -> None:
    """M1: a new CRM meeting is its meeting's activity, before any guest's sync meets a copy;
    its guests' answers and its video call's link are read from the answer (M2, M4)."""
    company_id = ctx.owner.company_id
    for activity, event in made:
        meetings.refresh_facts(activity, event)
        uid = meetings.meeting_uid(event)
        if uid is not None and company_id is not None:
            meetings.claim(company_id, uid, activity)


def _agreed(ctx: SyncContext, crm: Fields, event: EventData) -> dict[str, Any]:
    return {"crm": dict(crm), "cal": calendar_fields(event, ctx.excluded_emails)}


def _snapshot_of(
    ctx: SyncContext, create: _Create, event: RemoteEvent, earlier: Mapping[int, Mapping[str, Any]]
) -> dict[str, Any]:
    """What both sides agree on now. An event an earlier, interrupted attempt made (the
    provider found it under the same key) has that attempt's content: if the remembered
    attempt matches it, that is the agreement, so the CRM's edits since still go out."""
    agreed = {**_agreed(ctx, create.crm, event), "details": ctx.details_for(create.activity)}
    if not _found_earlier(ctx, create, event):
        return agreed
    before = earlier.get(create.activity.pk)
    if before is not None and before.get("cal") == agreed["cal"]:
        return dict(before)
    return {}  # unknown: the merge that follows settles each difference by the later change


def _found_earlier(ctx: SyncContext, create: _Create, event: RemoteEvent) -> bool:
    """The provider answered with an event an earlier attempt made under the same key, whose
    content is not what this attempt sent."""
    return calendar_fields(event, ctx.excluded_emails) != calendar_fields(create.data, ctx.excluded_emails)


def _create_after_deletion(
    ctx: SyncContext, create: _Create, doomed: frozenset[str] = frozenset()
) -> RemoteEvent | ProviderError:
    """The event made under the first key was deleted in the calendar (or is about to be, ``doomed``):
    walk to the next key."""
    for attempt in range(1, MAX_KEY_ATTEMPTS):
        key = idempotency_key(create.activity, ctx.account, attempt)
        try:
            event = ctx.provider.create_event(
                ctx.calendar_id, create.data, idempotency_key=key, notify=ctx.preferences.send_invitations
            )
        except Conflict:
            continue
        except ProviderError as exc:
            return exc
        if event.external_id not in doomed:
            return event
    return Conflict("too many deleted copies of this event")


def record_created(
    ctx: SyncContext,
    created: list[tuple[_Create, RemoteEvent]],
    earlier: Mapping[int, Mapping[str, Any]] | None = None,
) -> dict[int, EventLink]:
    """Links for new events and the activities' status, in one transaction.

    An activity deleted while its event was being made gets a link marked for deletion, so the
    event does not outlive it (the deletions run right after the pushes).
    """
    with transaction.atomic():
        ids = [create.activity.pk for create, _ in created]
        alive = set(Activity.objects.select_for_update().filter(pk__in=ids).values_list("pk", flat=True))
        ctx.deletions_queued = len(alive) < len(ids)
        replaced = [create.replaces.pk for create, _ in created if create.replaces is not None]
        if replaced:
            EventLink.objects.filter(pk__in=replaced).delete()
        links = EventLink.objects.bulk_create(
            [
                EventLink(
                    account=ctx.account,
                    activity_id=create.activity.pk if create.activity.pk in alive else None,
                    state=LinkState.ACTIVE if create.activity.pk in alive else LinkState.DELETE_PENDING,
                    calendar_external_id=ctx.calendar_id,
                    external_id=event.external_id,
                    # Not the etag of an event found again: the merge that follows must read it.
                    etag="" if _found_earlier(ctx, create, event) else event.etag or "",
                    origin=LinkOrigin.CRM,
                    activity_type_id=create.activity.type_id,
                    snapshot=_snapshot_of(ctx, create, event, earlier or {}),
                    remote_updated=event.updated,
                    ical_uid=event.ical_uid or "",
                    web_url=event.web_url or "",
                )
                for create, event in created
            ]
        )
        ctx.set_status(
            {
                create.activity.pk: create.activity.sync_changed_at
                for create, _ in created
                if create.activity.pk in alive
            },
            SyncStatus.SYNCED,
            Reason.SYNCED,
        )
        pending_creates.forget(ids)
    for create, event in created:
        ctx.result.pushed.done(
            "created",
            Reason.SENT,
            create.activity.subject,
            activity_id=create.activity.pk,
            external_id=event.external_id,
        )
    _claim_meetings(
        ctx, [(create.activity, event) for create, event in created if create.activity.pk in alive]
    )
    return {link.activity_id: link for link in links if link.activity_id is not None}


# --------------------------------------------------------------------------- status


def _skip(ctx: SyncContext, activity: Activity, skipped: ItemSkipped) -> None:
    ctx.result.pushed.skip(
        Skip(f"activity {activity.pk}", skipped.reason, skipped.code, activity.subject, activity.pk)
    )
    ctx.set_status({activity.pk: activity.sync_changed_at}, SyncStatus.SKIPPED, skipped.code, skipped.reason)


def _fail(ctx: SyncContext, activity: Activity, error: Exception) -> None:
    outcome = classify(error)
    logger.warning("Calendar sync could not push activity %s: %s", activity.pk, redact(repr(error)))
    ctx.result.pushed.fail(
        Skip(f"activity {activity.pk}", outcome.item_reason, outcome.item_code, activity.subject, activity.pk)
    )
    # Not acknowledged: sent again when its backoff is over, or at once when it changes (R16).
    item_errors.record_push_failure(ctx.account, activity, outcome.item_reason)
    ctx.set_status(
        {activity.pk: None}, outcome.item_status, outcome.item_code, outcome.item_reason, acknowledge=False
    )


# --------------------------------------------------------------------------- CRM deletions


def _subject_of(link: EventLink) -> str:
    """The title the event had when last synced (its activity is gone)."""
    crm = fields_of_snapshot(link.snapshot, "crm") or {}
    return str(crm.get("subject") or "")


def delete_pending(ctx: SyncContext) -> None:
    """R3: events of activities deleted in the CRM are deleted in the calendar."""
    pending = (
        EventLink.objects.filter(account=ctx.account, state=LinkState.DELETE_PENDING)
        # R16: a refused deletion waits for its backoff.
        .exclude(item_errors.deletion_waiting(ctx.account.pk, ctx.now))
        .annotate(had_refusal=item_errors.deletion_recorded(ctx.account.pk))
    )
    for link in pending:
        agreed_cal = fields_of_snapshot(link.snapshot, "cal")
        if link.is_recurring_instance:
            # R7: occurrences are read-only; deleting the CRM copy does not cut the series.
            link.state = LinkState.DETACHED
            link.save(update_fields=["state", "updated_at"])
            continue
        if agreed_cal is not None and is_past(agreed_cal, ctx.now, ctx.tz):
            link.delete()  # R2: past items are left alone
            continue
        try:
            # O11: a CRM user's deletion cancels the meeting for its guests, if they want mail.
            notify = link.notify_guests and ctx.preferences.send_invitations
            ctx.provider.delete_event(link.calendar_external_id, link.external_id, notify=notify)
        except FATAL:
            raise
        except TransientError as exc:
            ctx.result.transient = exc
            continue
        except ProviderError as exc:
            outcome = classify(exc)
            ctx.result.pushed.fail(
                Skip(link.external_id, outcome.item_reason, outcome.item_code, _subject_of(link))
            )
            item_errors.record_deletion_failure(ctx.account, link.external_id, outcome.item_reason)
            continue
        link.delete()
        if getattr(link, "had_refusal", True):
            item_errors.clear_deletion(ctx.account, link.external_id)
        ctx.result.pushed.done(
            "deleted", Reason.SENT_DELETION, _subject_of(link), external_id=link.external_id
        )
