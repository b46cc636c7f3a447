"""Meetings shared with colleagues: one activity per meeting and company (M1-M3).

Every copy of a meeting, in every attendee's calendar, carries the same iCalendar UID. The
first copy any CRM user's sync meets becomes the activity (``Meeting`` maps the UID to it,
unique per company); every later copy in a colleague's calendar is linked to that activity as
an ``ATTENDEE`` link: it makes no activity, its edits are not applied, and it only says that
the colleague attends (a deletion or a decline says they no longer do). When the organizer's
own copy arrives after a colleague's did, the activity moves to the organizer (no retyping).

RSVPs and the video call's join link are read from the controlling (``OWN``) copy onto the
activity; they are the calendar's facts, never CRM changes (no push, no echo).
"""

from __future__ import annotations

from django.db import IntegrityError, transaction

from activities.models import Activity, SyncStatus
from activities.tracking import engine_writes
from calendarsync.models import EventLink, LinkOrigin, LinkRole, LinkState, Meeting
from calendarsync.providers.base import DECLINED, RemoteEvent
from calendarsync.sync.context import SyncContext
from calendarsync.sync.reasons import Reason


class MeetingTaken(Exception):
    """Another worker registered the meeting first: attach to its activity instead (M1)."""


def meeting_uid(event: RemoteEvent) -> str | None:
    """The UID that makes this event one meeting across calendars, or None.

    A meeting has guests or an organizer elsewhere. Occurrences of a series share the series'
    UID, so they are left out: each calendar's occurrences stay its own.
    """
    if not event.ical_uid or event.is_recurring_instance or event.series_id:
        return None
    if event.is_organizer and not event.attendees:
        return None
    return event.ical_uid


def declined(event: RemoteEvent) -> bool:
    """This calendar's owner was invited and said no."""
    return not event.is_organizer and event.my_response == DECLINED


def registered_activity(company_id: int, uid: str) -> Activity | None:
    meeting = Meeting.objects.filter(company_id=company_id, ical_uid=uid).select_related("activity").first()
    return meeting.activity if meeting is not None else None


def register(company_id: int, uid: str, activity: Activity) -> None:
    """Make ``activity`` the meeting's; raise ``MeetingTaken`` if another activity already is.

    Call inside the transaction that creates the activity, so a lost race rolls it back.
    """
    try:
        with transaction.atomic():
            meeting, _ = Meeting.objects.get_or_create(
                company_id=company_id, ical_uid=uid, defaults={"activity": activity}
            )
    except IntegrityError as exc:  # made by another worker between our read and our insert
        raise MeetingTaken(uid) from exc
    if meeting.activity_id != activity.pk:
        raise MeetingTaken(uid)


def claim(company_id: int, uid: str, activity: Activity) -> None:
    """The organizer's own CRM activity is the meeting's: a copy a colleague's sync imported
    first (a race with our create) is folded into it."""
    other = registered_activity(company_id, uid)
    if other is None:
        try:
            register(company_id, uid, activity)
        except MeetingTaken:
            other = registered_activity(company_id, uid)
    if other is not None and other.pk != activity.pk:
        absorb(other, activity)


def absorb(duplicate: Activity, into: Activity) -> None:
    """Fold an activity made from a colleague's copy into the meeting's activity (M1)."""
    with transaction.atomic(), engine_writes():
        taken = set(EventLink.objects.filter(activity=into).values_list("account_id", flat=True))
        for link in EventLink.objects.filter(activity=duplicate).select_related("account"):
            if link.account_id in taken:
                link.delete()
                continue
            link.activity = into
            link.role = LinkRole.ATTENDEE
            link.save(update_fields=["activity", "role", "updated_at"])
            taken.add(link.account_id)
            if link.account.user_id != into.owner_id:
                into.attending_users.add(link.account.user_id)
        for user_id in duplicate.attending_users.values_list("pk", flat=True):
            if user_id != into.owner_id:
                into.attending_users.add(user_id)
        Meeting.objects.filter(activity=duplicate).update(activity=into)  # the same company's rows
        duplicate.delete()


def attach(ctx: SyncContext, activity: Activity, event: RemoteEvent) -> EventLink:
    """A colleague's copy of a meeting another user's activity stands for (M1, M2)."""
    with transaction.atomic(), engine_writes():
        link = EventLink.objects.create(
            account=ctx.account,
            activity=activity,
            calendar_external_id=ctx.calendar_id,
            external_id=event.external_id,
            etag=event.etag or "",
            origin=LinkOrigin.CALENDAR,
            role=LinkRole.ATTENDEE,
            ical_uid=event.ical_uid or "",
            activity_type_id=activity.type_id,
            snapshot={},
            remote_updated=event.updated,
        )
        if not declined(event):
            activity.attending_users.add(ctx.owner)
    return link


def attendee_changed(ctx: SyncContext, link: EventLink, event: RemoteEvent | None) -> EventLink | None:
    """A change of a colleague's copy: it says only whether they attend (M2).

    Returns the link when it now controls the activity (the owner left the CRM, M3): the caller
    merges it as an own copy.
    """
    activity = link.activity
    if activity is None or event is None or event.is_cancelled or declined(event):
        leave(ctx, link)
        return None
    if not activity.owner.is_active:
        return promote(ctx, link, activity)
    with transaction.atomic():
        activity.attending_users.add(ctx.owner)
        link.etag = event.etag or ""
        link.remote_updated = event.updated
        link.save(update_fields=["etag", "remote_updated", "updated_at"])
    ctx.handled.add(activity.pk)
    return None


def leave(ctx: SyncContext, link: EventLink) -> None:
    """The colleague deleted or declined their copy: they no longer attend; nothing else changes."""
    with transaction.atomic():
        if link.activity is not None:
            link.activity.attending_users.remove(ctx.owner)
        link.delete()


def promote(ctx: SyncContext, link: EventLink, activity: Activity) -> EventLink:
    """This colleague's copy takes control: the activity becomes theirs (M3). Its etag is
    cleared so the merge that follows reads the copy's content."""
    with transaction.atomic(), engine_writes():
        EventLink.objects.filter(activity=activity, role=LinkRole.OWN).exclude(pk=link.pk).update(
            role=LinkRole.ATTENDEE
        )
        activity.owner = ctx.owner
        activity.calendar_account = ctx.account
        activity.save(update_fields=["owner", "calendar_account", "updated_at"])
        activity.attending_users.remove(ctx.owner)
        link.role = LinkRole.OWN
        link.etag = ""
        link.save(update_fields=["role", "etag", "updated_at"])
        ctx.set_status({activity.pk: activity.sync_changed_at}, SyncStatus.SYNCED, Reason.SYNCED)
    link.activity = activity
    return link


def take_over(ctx: SyncContext, activity: Activity, event: RemoteEvent) -> EventLink:
    """The organizer's copy arrives after a colleague's: the activity moves to the organizer,
    keeping its type (M1, R5); the colleague's copy now only says they attend."""
    previous_owner_id = activity.owner_id
    earlier = (
        EventLink.objects.filter(activity=activity, role=LinkRole.OWN, state=LinkState.ACTIVE)
        .order_by("-updated_at")
        .first()
    )
    with transaction.atomic(), engine_writes():
        EventLink.objects.filter(activity=activity, role=LinkRole.OWN).update(role=LinkRole.ATTENDEE)
        if earlier is not None:
            activity.attending_users.add(previous_owner_id)
        activity.attending_users.remove(ctx.owner)
        activity.owner = ctx.owner
        activity.calendar_account = ctx.account
        activity.save(update_fields=["owner", "calendar_account", "updated_at"])
        link = EventLink.objects.create(
            account=ctx.account,
            activity=activity,
            calendar_external_id=ctx.calendar_id,
            external_id=event.external_id,
            etag="",  # the merge that follows reads the content
            origin=earlier.origin if earlier is not None else LinkOrigin.CALENDAR,
            role=LinkRole.OWN,
            ical_uid=event.ical_uid or "",
            activity_type_id=earlier.activity_type_id if earlier is not None else activity.type_id,
            snapshot=earlier.snapshot if earlier is not None else {},
            remote_updated=event.updated,
        )
    link.activity = activity
    return link


def hand_over(ctx: SyncContext, link: EventLink, activity: Activity) -> bool:
    """The controlling copy was deleted or declined while colleagues still attend: the first of
    them takes the activity over instead of it going to the trash (M2). False: nobody attends."""
    heir = (
        EventLink.objects.filter(
            activity=activity,
            role=LinkRole.ATTENDEE,
            state=LinkState.ACTIVE,
            account__stopped_at__isnull=True,
            account__user__is_active=True,
        )
        .exclude(pk=link.pk)
        .select_related("account")
        .order_by("created_at", "pk")
        .first()
    )
    if heir is None:
        return False
    with transaction.atomic(), engine_writes():
        link.delete()
        activity.attending_users.remove(heir.account.user_id)
        activity.owner_id = heir.account.user_id
        activity.calendar_account = heir.account
        activity.save(update_fields=["owner", "calendar_account", "updated_at"])
        heir.role = LinkRole.OWN
        heir.etag = ""
        heir.save(update_fields=["role", "etag", "updated_at"])
    return True


def refresh_facts(activity: Activity, event: RemoteEvent) -> None:
    """RSVPs and the join link, as the controlling copy has them (M2, M4); not CRM changes."""
    responses = {a.email.lower(): a.response for a in event.attendees if a.email}
    join_url = event.join_url or ""
    if responses == (activity.guest_responses or {}) and join_url == activity.join_url:
        return
    Activity.objects.filter(pk=activity.pk).update(guest_responses=responses, join_url=join_url)
    activity.guest_responses, activity.join_url = responses, join_url
