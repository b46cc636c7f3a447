"""Every state change of a calendar account goes through a ``do_*`` function here."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Min
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import User
from activities.models import Activity, ActivityType, SyncStatus
from calendarsync.crypto import Secret
from calendarsync.models import (
    AccountState,
    AuditEvent,
    CalendarAccount,
    ExternalVisibility,
    PrivateEvents,
    Provider,
    RemoteCalendar,
    SyncPreferences,
    SyncType,
)
from calendarsync.providers.base import ProviderError, RemoteCalendarInfo
from calendarsync.providers.registry import can_revoke, consent_pages, revoke_access
from calendarsync.sync.errors import error_summary
from calendarsync.sync.reasons import Reason
from calendarsync.tasks import request_sync

logger = logging.getLogger(__name__)

INSUFFICIENT_PERMISSIONS_HELP = (
    "CalSync was not allowed to use your calendar. Ask your IT admin to allow third-party "
    "calendar apps, then connect again and tick calendar access."
)


# What a new user expects (O3): calendar events come in as meetings; meetings and calls go out.
DEFAULT_INCOMING_TYPE = "Meeting"
DEFAULT_OUTGOING_TYPES = ("Meeting", "Call")
# States in which the provider will not let CalSync in: starting the sync would only fail.
BLOCKED_STATES = (AccountState.NEEDS_RECONNECT, AccountState.INSUFFICIENT_PERMISSIONS)


class AnotherAccountConnected(Exception):
    """C6: one account per user; stop syncing the current one before adding another."""

    def __init__(self, account: CalendarAccount) -> None:
        super().__init__(f"{account.email} is already connected")
        self.account = account


class SignedInAsSomeoneElse(AnotherAccountConnected):
    """A reconnect signed in to the same provider as another identity: the account is left as it was."""

    def __init__(self, account: CalendarAccount, signed_in_email: str) -> None:
        super().__init__(account)
        self.signed_in_email = signed_in_email


@transaction.atomic
def do_connect_account(
    *,
    acting_user: User,
    provider: Provider,
    email: str,
    credentials: Mapping[str, Any],
    calendars: Sequence[RemoteCalendarInfo],
    state: AccountState = AccountState.ACTIVE,
    state_detail: str = "",
) -> CalendarAccount:
    """Connect (or reconnect) ``acting_user``'s calendar account and store its calendars.

    Reconnecting the connected account updates that same row: new credentials, its state back
    to what the sign-in allows, everything else (preferences, event links, cursor) kept, and a
    started sync resumes at once. Signing in as another identity while one is connected is
    refused and changes nothing (C6). A new account gets the options its identity (same
    provider and e-mail) had when its sync was last stopped, else the defaults (O1-O7).
    """
    account = (
        CalendarAccount.objects.select_for_update().filter(user=acting_user, stopped_at__isnull=True).first()
    )
    if account is not None and account.provider != provider:
        raise AnotherAccountConnected(account)
    if account is not None and account.email.lower() != email.lower():
        raise SignedInAsSomeoneElse(account, email.lower())
    reconnect = account is not None
    if account is None:
        account = CalendarAccount(user=acting_user, provider=provider, email=email.lower())
    account.credentials = Secret(credentials)
    account.state = state
    account.state_detail = state_detail
    if reconnect:
        # The failures were the old sign-in's; the new one starts with a clean record.
        account.last_sync_error = ""
        account.sync_failures = 0
    account.save()
    # C4: a sign-in without calendar access lists nothing; that is no reason to forget the
    # calendars (and the chosen one) of an account that had access before.
    if calendars or state != AccountState.INSUFFICIENT_PERMISSIONS:
        _store_calendars(account, calendars)
    previous = None if reconnect else _previous_preferences(account)
    if previous is not None:
        _restore_preferences(account, previous)
    preferences = _ensure_preferences(account)
    if preferences.calendar_id is None:
        # A first sign-in without calendar access had nothing to choose from: use the primary now.
        preferences.calendar = _default_calendar(account)
        preferences.save(update_fields=["calendar", "updated_at"])
    _audit(
        account,
        acting_user,
        "reconnected" if reconnect else "connected",
        {"provider": str(provider), "email": account.email, "state": str(state)},
    )
    if previous is not None:
        _audit(account, acting_user, "preferences_restored", {"from_account": previous.account_id})
    if reconnect and state == AccountState.ACTIVE and preferences.sync_started_at is not None:
        request_sync(account.pk, force=True)  # R10: carry on where the revoked sign-in stopped
    return account


def _previous_preferences(account: CalendarAccount) -> SyncPreferences | None:
    """The options of the same identity's most recently stopped account, if any (C6 re-add)."""
    return (
        SyncPreferences.objects.filter(
            account__user_id=account.user_id,
            account__provider=account.provider,
            account__email__iexact=account.email,
            account__stopped_at__isnull=False,
        )
        .exclude(account=account)
        .select_related("calendar")
        .order_by("-account__stopped_at", "-pk")
        .first()
    )


def _restore_preferences(account: CalendarAccount, previous: SyncPreferences) -> SyncPreferences:
    """The new account's preferences as ``previous`` had them, where they still apply.

    The calendar is matched by its id at the provider (it is a new row); a calendar no longer
    writable, or a type deactivated meanwhile, falls back to the default. The sync is not
    started: the user reviews the options and starts it (O9).
    """
    types = active_company_types(account.user)
    calendar = None
    if previous.calendar is not None:
        calendar = writable_calendars(account).filter(external_id=previous.calendar.external_id).first()
    incoming_type = types.filter(pk=previous.incoming_type_id).first() if previous.incoming_type_id else None
    preferences = SyncPreferences.objects.create(
        account=account,
        calendar=calendar or _default_calendar(account),
        sync_type=previous.sync_type,
        incoming_type=incoming_type or _company_types(account.user, [DEFAULT_INCOMING_TYPE]).first(),
        external_visibility=previous.external_visibility,
        private_events=previous.private_events,
        include_details=previous.include_details,
        send_invitations=previous.send_invitations,
    )
    preferences.outgoing_types.set(types.filter(pk__in=previous.outgoing_types.values("pk")))
    return preferences


def preferences_were_restored(account: CalendarAccount) -> bool:
    """Whether connecting ``account`` brought back the options of its identity's earlier account."""
    return account.audit_events.filter(action="preferences_restored").exists()


def _audit(account: CalendarAccount, actor: User, action: str, detail: Mapping[str, Any]) -> None:
    AuditEvent.objects.create(account=account, actor=actor, action=action, detail=dict(detail))


def _default_calendar(account: CalendarAccount) -> RemoteCalendar | None:
    """O1: the primary calendar, if CalSync may write to it; otherwise the first writable one."""
    return writable_calendars(account).order_by("-is_primary", "name").first()


def _ensure_preferences(account: CalendarAccount) -> SyncPreferences:
    """The account's preferences, created with the defaults a new user expects if it has none."""
    # Callables: the defaults cost queries, and are only worked out when there is nothing to get.
    preferences, created = SyncPreferences.objects.get_or_create(
        account=account,
        defaults={
            "calendar": lambda: _default_calendar(account),
            "sync_type": SyncType.TWO_WAY,
            "incoming_type": lambda: _company_types(account.user, [DEFAULT_INCOMING_TYPE]).first(),
            "external_visibility": ExternalVisibility.EVERYONE,
            "private_events": PrivateEvents.ONLY_ME,
            "include_details": True,
        },
    )
    if created:
        preferences.outgoing_types.set(_company_types(account.user, DEFAULT_OUTGOING_TYPES))
    return preferences


def _company_types(user: User, names: Iterable[str]) -> models.QuerySet[ActivityType]:
    return active_company_types(user).filter(name__in=list(names))


def active_company_types(user: User) -> models.QuerySet[ActivityType]:
    """O3/O4: every active activity type of the user's company, custom ones included (A2)."""
    if user.company_id is None:
        return ActivityType.objects.none()
    return ActivityType.objects.filter(company_id=user.company_id, is_active=True)


def writable_calendars(account: CalendarAccount) -> models.QuerySet[RemoteCalendar]:
    """O1: the account's calendars CalSync may write events to."""
    return RemoteCalendar.objects.filter(account=account, can_write=True)


@transaction.atomic
def ensure_preferences(account: CalendarAccount) -> SyncPreferences:
    """For accounts connected before preferences existed: give them the defaults on first view."""
    return _ensure_preferences(account)


def _store_calendars(account: CalendarAccount, calendars: Sequence[RemoteCalendarInfo]) -> None:
    keep = [calendar.external_id for calendar in calendars]
    RemoteCalendar.objects.filter(account=account).exclude(external_id__in=keep).delete()
    for calendar in calendars:
        RemoteCalendar.objects.update_or_create(
            account=account,
            external_id=calendar.external_id,
            defaults={
                "name": calendar.name,
                "is_primary": calendar.is_primary,
                "can_write": calendar.can_write,
            },
        )


class InvalidPreferences(ValueError):
    """A change the page's forms would never send (another account's calendar, a foreign type)."""


class CannotStartSync(Exception):
    """O9: the sync cannot start yet; ``message`` says what the user must do first."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


PREFERENCE_FIELDS = frozenset(
    {
        "calendar",
        "sync_type",
        "incoming_type",
        "outgoing_types",
        "external_visibility",
        "private_events",
        "include_details",
        "send_invitations",
    }
)
CHOICES: Mapping[str, type[models.TextChoices]] = {
    "sync_type": SyncType,
    "external_visibility": ExternalVisibility,
    "private_events": PrivateEvents,
}


@transaction.atomic
def do_update_preferences(
    *, acting_user: User, account: CalendarAccount, changes: Mapping[str, Any]
) -> dict[str, Any]:
    """Apply ``changes`` (preference field -> new value) and record what changed (O8).

    Returns the changes actually made, as ``{field: {"from": ..., "to": ...}}``; an empty dict
    when every value was already set. O10: nothing already synced is touched here; a type sent
    again makes its items that changed while it was not sent due (R6).
    """
    _check_changes(account, changes)
    preferences = SyncPreferences.objects.select_for_update().get(account=account)
    made: dict[str, Any] = {}
    for field, value in changes.items():
        if field == "outgoing_types":
            before = list(preferences.outgoing_types.order_by("pk"))
            after = sorted(value, key=lambda activity_type: activity_type.pk)
            if before != after:
                preferences.outgoing_types.set(after)
                made[field] = {"from": _describe(before), "to": _describe(after)}
                _send_again(account, preferences, {t.pk for t in after} - {t.pk for t in before})
            continue
        before_value = getattr(preferences, field)
        if before_value != value:
            setattr(preferences, field, value)
            made[field] = {"from": _describe(before_value), "to": _describe(value)}
            if (
                field == "incoming_type"
                and isinstance(before_value, ActivityType)
                and not before_value.is_active
            ):
                _list_again(account, preferences)
    if made:
        preferences.save()
        _audit(account, acting_user, "preferences_updated", {"changes": made})
    return made


def _list_again(account: CalendarAccount, preferences: SyncPreferences) -> None:
    """O3: new events were skipped while the incoming type was deactivated; the next run lists
    the calendar in full, so they come in with the type chosen now (known ones keep theirs, R5)."""
    CalendarAccount.objects.filter(pk=account.pk).update(full_sync_at=None)
    if preferences.sync_started_at is not None and preferences.sync_stopped_at is None:
        request_sync(account.pk)


def _send_again(account: CalendarAccount, preferences: SyncPreferences, type_ids: set[int]) -> None:
    """R6: the owner's future items of types sent again, skipped while their type was not sent,
    are due for the next run; changed since sync started (R2), they go out then, not at some later
    full listing. Unchanged ones linked to an event cost nothing: the push finds nothing to write."""
    baseline = preferences.crm_baseline
    if not type_ids or baseline is None or preferences.sync_stopped_at is not None:
        return
    today = timezone.now().astimezone(account.user.tzinfo).date()
    marked = Activity.objects.filter(
        owner_id=account.user_id,
        calendar_account=account,
        type_id__in=type_ids,
        sync_status=SyncStatus.SKIPPED,
        sync_changed_at__gte=baseline,
        due_date__gte=today - dt.timedelta(days=1),
    ).update(
        sync_seen_at=None,
        sync_status=SyncStatus.PENDING,
        sync_error="",
        sync_code=Reason.PENDING,
        sync_status_at=timezone.now(),
    )
    if marked:
        request_sync(account.pk)


def _check_changes(account: CalendarAccount, changes: Mapping[str, Any]) -> None:
    """Defence in depth behind the forms: refuse what no form on the page can produce."""
    unknown = set(changes) - PREFERENCE_FIELDS
    if unknown:
        raise InvalidPreferences(f"unknown preferences: {sorted(unknown)}")
    for field, choices in CHOICES.items():
        if field in changes and changes[field] not in choices.values:
            raise InvalidPreferences(f"{field}: {changes[field]!r} is not a choice")
    if "calendar" in changes:
        calendar = changes["calendar"]
        if calendar is None or not writable_calendars(account).filter(pk=calendar.pk).exists():
            raise InvalidPreferences("the calendar is not a writable calendar of this account")
    if "incoming_type" in changes and changes["incoming_type"] is None:
        raise InvalidPreferences("an incoming type is required")
    types = [*changes.get("outgoing_types", []), *filter(None, [changes.get("incoming_type")])]
    pks = {activity_type.pk for activity_type in types}
    if active_company_types(account.user).filter(pk__in=pks).count() != len(pks):
        raise InvalidPreferences("an activity type is inactive or belongs to another company")
    for flag in ("include_details", "send_invitations"):
        if flag in changes and not isinstance(changes[flag], bool):
            raise InvalidPreferences(f"{flag} must be true or false")


def _describe(value: Any) -> Any:
    """A JSON-friendly account of a preference value for the audit trail."""
    if isinstance(value, models.Model):
        return {"id": value.pk, "name": str(value)}
    if isinstance(value, list):
        return [_describe(item) for item in value]
    return value


@transaction.atomic
def do_start_sync(*, acting_user: User, account: CalendarAccount) -> SyncPreferences:
    """O9: the explicit first save. From now on new and changed items sync (R2)."""
    account = CalendarAccount.objects.select_for_update().get(pk=account.pk)
    if account.state in BLOCKED_STATES:
        raise CannotStartSync(
            f"{account.email} needs attention ({account.get_state_display().lower()}): reconnect it first."
        )
    preferences = _ensure_preferences(account)
    if preferences.calendar_id is None:
        raise CannotStartSync("Choose a calendar to sync with first.")
    now = timezone.now()
    preferences.crm_changes_since = _first_start(account, preferences, now)
    preferences.sync_started_at = now
    preferences.sync_stopped_at = None
    preferences.save(update_fields=["sync_started_at", "crm_changes_since", "sync_stopped_at", "updated_at"])
    account.state = AccountState.ACTIVE
    account.state_detail = ""
    account.save(update_fields=["state", "state_detail"])
    _audit(account, acting_user, "sync_started", {"calendar": _describe(preferences.calendar)})
    # O9: the first sync (the baseline, R2) runs within seconds, not at the next beat.
    request_sync(account.pk, force=True)
    return preferences


def _first_start(account: CalendarAccount, preferences: SyncPreferences, now: dt.datetime) -> dt.datetime:
    """R2 for CRM changes across reconnects (Stop sync, Add account, Start sync; C6): the user's
    first start. What changed since and was never sent (made while the account was revoked or
    stopped) goes out with this account; nothing older."""
    earlier = (
        SyncPreferences.objects.filter(account__user_id=account.user_id, sync_started_at__isnull=False)
        .annotate(since=Coalesce("crm_changes_since", "sync_started_at"))
        .aggregate(first=Min("since"))["first"]
    )
    return min(earlier, now) if earlier is not None else now


@dataclass(frozen=True)
class Disconnected:
    """What a disconnect leaves to the user: pages where they remove CalSync's access themselves,
    as (kind of account, URL), for a provider that lets no app revoke its own access (Microsoft)."""

    consent_pages: tuple[tuple[str, str], ...] = ()


@transaction.atomic
def do_stop_sync(*, acting_user: User, account: CalendarAccount) -> Disconnected:
    """Disconnect: credentials are removed, activities and their links are kept (C6).

    The access is given back at the provider once the disconnect is committed (Google revokes the
    grant); a failed revocation is logged and audited, the disconnect stands.
    """
    now = timezone.now()
    credentials = _stored_credentials(account)
    account.credentials = None
    account.stopped_at = now
    account.save(update_fields=["credentials", "stopped_at"])
    SyncPreferences.objects.filter(account=account).update(sync_stopped_at=now, updated_at=now)
    _audit(account, acting_user, "sync_stopped", {"email": account.email})
    revocable = _revocable(account, acting_user, credentials)
    if revocable is not None:
        transaction.on_commit(partial(_revoke_access, account, acting_user, revocable), robust=True)
    return Disconnected(consent_pages=consent_pages(account.provider))


def _stored_credentials(account: CalendarAccount) -> Secret | None:
    """The credentials as stored now (a sync may have refreshed them); None if no key decrypts them."""
    try:
        stored = CalendarAccount.objects.values_list("credentials", flat=True).get(pk=account.pk)
    except ValidationError:
        logger.warning("calendar account %s: no key decrypts its credentials", account.pk)
        return None
    return stored if isinstance(stored, Secret) and stored else None


def _revocable(account: CalendarAccount, acting_user: User, credentials: Secret | None) -> Secret | None:
    """The credentials to revoke at the provider; None when there is no call to make, and why goes
    into the audit trail.

    Google's revocation ends the app's access to the whole Google account: a colleague who
    connected the same account would lose theirs too, so a shared grant is left alone.
    """
    if not can_revoke(account.provider):
        _audit(account, acting_user, "access_forgotten", {"provider": str(account.provider)})
        return None
    if credentials is None:  # already stopped, or undecryptable (logged): nothing to send
        return None
    if _grant_shared(account):
        _audit(account, acting_user, "access_revoke_skipped", {"reason": "another user's account uses it"})
        return None
    return credentials


def _grant_shared(account: CalendarAccount) -> bool:
    return (
        CalendarAccount.objects.filter(
            provider=account.provider, email__iexact=account.email, stopped_at__isnull=True
        )
        .exclude(pk=account.pk)
        .exists()
    )


def _revoke_access(account: CalendarAccount, acting_user: User, credentials: Secret) -> None:
    """After commit: the provider call, outside the disconnect's transaction and its row lock."""
    try:
        revoke_access(account.provider, credentials)
    except ProviderError as exc:
        # Our own words and the provider's code, never the provider's body or the token.
        logger.warning("could not revoke access of calendar account %s: %r", account.pk, exc)
        _audit(account, acting_user, "access_revoke_failed", {"error": error_summary(exc)})
        return
    _audit(account, acting_user, "access_revoked", {"provider": str(account.provider)})


@transaction.atomic
def do_force_full_resync(*, acting_user: User, account: CalendarAccount) -> None:
    """Admin: the next run lists the whole calendar again and links what it finds (no duplicates, R10)."""
    now = timezone.now()
    CalendarAccount.objects.filter(pk=account.pk).update(full_sync_at=None, next_sync_at=now)
    _audit(account, acting_user, "full_resync_requested", {})
