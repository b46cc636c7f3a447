"""D1, D2: why an activity syncs or not, and what a run did to an item, in plain words.

``explain`` is the single source of every sync explanation: the activity page, the list and
calendar popovers, the sync log and the admin all call it. It is pure: it reads only what it is
given (prefetch ``preferences.outgoing_types`` where it matters) and never queries.

For an activity the stored ``sync_code`` is what the engine (or the save, ``save_status``)
recorded; an activity no run or save has touched is judged by the same rules the engine's
selection applies (R1, R2, O3): created before sync started, in the past, type not sent.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.urls import reverse
from django.utils.formats import date_format

from activities.models import Activity, SyncStatus
from calendarsync.models import (
    AccountState,
    CalendarAccount,
    EventLink,
    ItemFailure,
    LinkOrigin,
    SyncPreferences,
    SyncRunEntry,
)
from calendarsync.sync.mapping import activity_time, is_past
from calendarsync.sync.reasons import WORDING, Action, Kind, Reason, reason_of

# How each provider's own calendar app is called ("edit the series in Google Calendar").
CALENDAR_APPS = {"google": "Google Calendar", "microsoft": "Outlook", "exchange": "Outlook"}
# Provider error codes worth saying in words (the rest show as the code itself).
CODE_WORDS = {
    "forbiddenForNonOrganizer": "you are not the organizer",
    "ErrorAccessDenied": "access denied",
    "ErrorItemNotFound": "the event no longer exists",
    "ErrorCalendarIsOrganizerForRemove": "you are not the organizer",
    "ErrorIrresolvableConflict": "the event changed meanwhile",
    "notFound": "the event no longer exists",
    "HTTP 403": "not allowed",
    "HTTP 404": "the event no longer exists",
}
_TRAILING_CODE = re.compile(r"\(([^()]+)\)\s*$")
# What a colleague hears of the owner's sync (the status word alone).
COLLEAGUE_STATUS = {
    Kind.SYNCED: "synced",
    Kind.WAITING: "waiting",
    Kind.ERROR: "not sent yet",
    Kind.NOT_SENT: "not sent",
    Kind.READ_ONLY: "read-only occurrence",
    Kind.NOT_SYNCING: "not syncing",
    Kind.DONE: "synced",
}
_STATUS_FALLBACK = {
    SyncStatus.SYNCED: Reason.SYNCED,
    SyncStatus.PENDING: Reason.PENDING,
    SyncStatus.ERROR: Reason.FAILED,
}
# Whatever the stored code, an item waiting for its run says why the account is not running.
_ACCOUNT_WAITS = {
    AccountState.NEEDS_RECONNECT: Reason.NEEDS_RECONNECT,
    AccountState.INSUFFICIENT_PERMISSIONS: Reason.INSUFFICIENT_PERMISSIONS,
    AccountState.ERROR: Reason.ACCOUNT_ERROR,
}


@dataclass(frozen=True)
class Explanation:
    code: Reason
    kind: Kind
    message: str
    hint: str = ""
    action_url: str = ""
    action_label: str = ""
    # The event in the provider's web calendar (synced items, where the provider gives one).
    web_url: str = ""
    web_label: str = ""

    @property
    def label(self) -> str:
        """The opening words, for a badge: "Synced", "Not sent", "Error", ..."""
        return self.message.split(":", 1)[0] if ":" in self.message else self.message.rstrip(".")


def explain(
    item: Activity | SyncRunEntry,
    account: CalendarAccount | None,
    preferences: SyncPreferences | None,
    link: EventLink | None,
    now: dt.datetime,
    *,
    viewer_id: int | None = None,
    viewer_attends: bool = False,
    failure: ItemFailure | None = None,
    tz: dt.tzinfo | None = None,
) -> Explanation | None:
    """Why ``item`` syncs or not, and what to do; None for an activity masked for the viewer (A6).

    ``account`` is the owner's calendar account the activity is (or would be) synced with, and
    ``preferences`` its options; ``link`` the activity's event link in it, ``failure`` its
    refusal record (R16). ``viewer_id`` is who asks (their own activities get the owner's
    explanation; another user's say whose sync covers them); ``tz`` is the zone times show in.
    """
    zone = tz or dt.UTC
    if isinstance(item, SyncRunEntry):
        return _explain_entry(item, account, zone)
    if getattr(item, "masked", False):
        return None
    if viewer_id is not None and viewer_id != item.owner_id:
        return _for_colleague(item, account, preferences, link, viewer_attends, failure, _Clock(now, zone))
    reason = _reason_for_activity(item, account, preferences, now, link)
    return _word(reason, item, account, preferences, link, failure, _Clock(now, zone))


def _for_colleague(
    activity: Activity,
    account: CalendarAccount | None,
    preferences: SyncPreferences | None,
    link: EventLink | None,
    attends: bool,
    failure: ItemFailure | None,
    clock: _Clock,
) -> Explanation:
    """Another user's activity: their sync covers it, not the viewer's (M1 meetings excepted)."""
    reason = Reason.SHARED_MEETING if attends else Reason.OTHER_OWNER
    owners = _reason_for_activity(activity, account, preferences, clock.now, link)
    explanation = _word(reason, activity, account, preferences, None, None, clock)
    # Only the owner's status word: never their calendar address or words meant for them (A6).
    hint = explanation.hint or f"{_owner_name(activity)}'s sync: {COLLEAGUE_STATUS[WORDING[owners].kind]}."
    return Explanation(reason, explanation.kind, explanation.message, hint)


def _reason_for_activity(
    activity: Activity,
    account: CalendarAccount | None,
    preferences: SyncPreferences | None,
    now: dt.datetime,
    link: EventLink | None,
) -> Reason:
    if account is None:
        return Reason.NO_ACCOUNT
    if account.stopped_at is not None or (
        preferences is not None and preferences.sync_stopped_at is not None
    ):
        return Reason.SYNC_STOPPED
    if preferences is None or preferences.sync_started_at is None:
        return Reason.SYNC_NOT_STARTED
    stored = reason_of(activity.sync_code) if activity.sync_status else None
    if stored is None and activity.sync_status:
        stored = _STATUS_FALLBACK.get(SyncStatus(activity.sync_status)) or _by_rules(
            activity, account, preferences, now
        )
    if stored is None:
        stored = _by_rules(activity, account, preferences, now)
    if stored == Reason.SYNCED and _type_deselected(activity, preferences, link):
        return Reason.TYPE_NO_LONGER_SENT  # R6: stopped syncing when its type was deselected
    waits = _account_waits(account)
    if WORDING[stored].kind == Kind.WAITING and waits is not None:
        return waits
    return stored


def _type_deselected(activity: Activity, preferences: SyncPreferences, link: EventLink | None) -> bool:
    """A CRM-made item's type is no longer sent (R6): it stays as it is in the calendar."""
    return (
        link is not None
        and link.origin == LinkOrigin.CRM
        and not link.is_recurring_instance
        and activity.type_id not in {t.pk for t in preferences.outgoing_types.all()}
    )


def _account_waits(account: CalendarAccount) -> Reason | None:
    """Why the account holds its waiting items: a reconnect, a permission, or a failing run.

    An account shown as "Error" only for items refused over a day still runs: not a wait.
    """
    if account.state == AccountState.ERROR and not account.last_sync_error:
        return None
    return _ACCOUNT_WAITS.get(AccountState(account.state))


def _by_rules(
    activity: Activity, account: CalendarAccount, preferences: SyncPreferences, now: dt.datetime
) -> Reason:
    """An activity no run has decided on: the engine's own selection rules (R1, R2, O3)."""
    tz = account.user.tzinfo
    if is_past({"time": activity_time(activity)}, now, tz):
        return Reason.PAST
    baseline = preferences.crm_baseline
    if baseline is not None and (activity.sync_changed_at is None or activity.sync_changed_at < baseline):
        return Reason.BEFORE_START
    if activity.type_id not in {t.pk for t in preferences.outgoing_types.all()}:
        return Reason.TYPE_NOT_SENT
    return Reason.PENDING


def _word(
    reason: Reason,
    activity: Activity,
    account: CalendarAccount | None,
    preferences: SyncPreferences | None,
    link: EventLink | None,
    failure: ItemFailure | None,
    clock: _Clock,
) -> Explanation:
    wording = WORDING[reason]
    detail = activity.sync_error if reason in _WITH_DETAIL else ""
    if reason == Reason.ACCOUNT_ERROR and account is not None:
        detail = account.last_sync_error or account.state_detail
    values = {
        "type": activity.type.name if activity.type_id else "This type",
        "owner": _owner_name(activity),
        "provider": account.get_provider_display() if account else "The calendar",
        "app": CALENDAR_APPS.get(account.provider, "the calendar") if account else "the calendar",
        "email": account.email if account else "",
        "time": clock.when(activity.sync_status_at or (account.last_synced_at if account else None)),
        "started": clock.day(preferences.crm_baseline if preferences else None),
        "detail": detail or "no reason given",
        "because": _because(detail),
        "retry": f"at {clock.when(failure.retry_at)}" if failure is not None else "later",
    }
    web_url = link.web_url if link is not None and reason in {Reason.SYNCED, Reason.OCCURRENCE} else ""
    return Explanation(
        reason,
        wording.kind,
        wording.message.format(**values),
        wording.hint.format(**values),
        _action_url(wording.action, activity),
        wording.action_label,
        web_url,
        f"Open in {values['app']}" if web_url else "",
    )


_WITH_DETAIL = {
    Reason.REFUSED,
    Reason.NOT_FOUND,
    Reason.FAILED,
    Reason.CALENDAR_BUSY,
    Reason.ACCOUNT_ERROR,
}


def _explain_entry(entry: SyncRunEntry, account: CalendarAccount | None, zone: dt.tzinfo) -> Explanation:
    """A sync log line: "<title>: <what happened or why not>"."""
    reason = reason_of(entry.code) or Reason.FAILED
    wording = WORDING[reason]
    values = {
        "provider": account.get_provider_display() if account else "The calendar",
        "app": CALENDAR_APPS.get(account.provider, "the calendar") if account else "the calendar",
        "email": account.email if account else "",
        "detail": entry.detail or "no reason given",
        "because": _because(entry.detail),
        "type": "This type",
        "owner": "another user",
        "time": "",
        "started": "",
        "retry": "later",
    }
    message = wording.message.format(**values)
    return Explanation(reason, wording.kind, message, wording.hint.format(**values))


def _owner_name(activity: Activity) -> str:
    owner = activity.owner
    return owner.display_name if owner is not None else "Another user"


def _because(detail: str) -> str:
    """ " (you are not the organizer)" for a stored reason ending in a code we can word."""
    match = _TRAILING_CODE.search(detail or "")
    words = CODE_WORDS.get(match[1]) if match else None
    return f" ({words})" if words else ""


@dataclass(frozen=True)
class _Clock:
    """Times as the reader sees them: in their zone, the day left out when it is today."""

    now: dt.datetime
    zone: dt.tzinfo

    def when(self, moment: dt.datetime | None) -> str:
        if moment is None:
            return "the last sync"
        local = moment.astimezone(self.zone)
        today = self.now.astimezone(self.zone).date()
        day = "" if local.date() == today else f" on {date_format(local, 'j M')}"
        return date_format(local, "H:i") + day

    def day(self, moment: dt.datetime | None) -> str:
        return (
            date_format(moment.astimezone(self.zone), "j M")
            if moment is not None
            else "the day you started it"
        )


def _action_url(action: Action, activity: Activity) -> str:
    if action == Action.OPTIONS:
        return reverse("calendarsync:page") + "#sync-options"
    if action == Action.CALENDAR_SYNC:
        return reverse("calendarsync:page")
    if action == Action.EDIT and activity.pk is not None:
        return reverse("activities:edit", args=[activity.pk])
    return ""
