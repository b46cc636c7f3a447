"""What every connect flow shares (C3, C4, C6): the OAuth flow of Google and Microsoft 365 (each provider
supplies its pieces), the connected account lookups, and what the user reads after a connect or reconnect.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from accounts.auth import AuthedHttpRequest
from accounts.models import User
from calendarsync.actions import (
    INSUFFICIENT_PERMISSIONS_HELP,
    AnotherAccountConnected,
    SignedInAsSomeoneElse,
    do_connect_account,
    preferences_were_restored,
)
from calendarsync.models import AccountState, CalendarAccount, Provider
from calendarsync.providers.base import (
    InsufficientPermissions,
    ProviderError,
    RemoteCalendarInfo,
    TransientError,
)
from calendarsync.sync.errors import code_suffix


def page_url() -> str:
    return reverse("calendarsync:page")


def connected_account(user: User) -> CalendarAccount | None:
    return user.calendar_accounts.filter(stopped_at__isnull=True).prefetch_related("calendars").first()


def access_account(user: User, pk: int) -> CalendarAccount:
    """``user``'s own connected account; anyone else's (or a stopped one) is a 404."""
    try:
        return CalendarAccount.objects.get(pk=pk, user=user, stopped_at__isnull=True)
    except CalendarAccount.DoesNotExist:
        raise Http404("No such calendar account.") from None


def another_account_message(account: CalendarAccount) -> str:
    return f"{account.email} is connected. Stop its sync before adding another account."


def signed_in_as_someone_else_message(account: CalendarAccount, signed_in_email: str) -> str:
    return (
        f"You signed in as {signed_in_email}, but the account connected here is {account.email}, so nothing "
        f"was changed. To reconnect, sign in as {account.email}. To sync {signed_in_email} instead, stop the "
        "sync first (Edit, then Stop sync) and add that account."
    )


def refusal_message(refusal: AnotherAccountConnected) -> str:
    """C6: why a sign-in did not connect, while an account is connected."""
    if isinstance(refusal, SignedInAsSomeoneElse):
        return signed_in_as_someone_else_message(refusal.account, refusal.signed_in_email)
    return another_account_message(refusal.account)


def connected_message(account: CalendarAccount, *, reconnected: bool) -> str:
    """What the user reads once a sign-in (with calendar access) connected ``account``."""
    started = account.preferences.sync_started_at is not None
    if reconnected:
        follow_up = (
            "Sync carries on with your options."
            if started
            else "Review the options below, then start the sync."
        )
        return f"Reconnected {account.email}. {follow_up}"
    if preferences_were_restored(account):
        return (
            f"Connected {account.email}. Your options from the last time you synced this account are back: "
            "review them below, then start the sync."
        )
    return f"Connected {account.email}. Review the options below, then start the sync."


def has_connected_account(user: User) -> bool:
    return user.calendar_accounts.filter(stopped_at__isnull=True).exists()


class GrantedTokens(Protocol):
    """What a provider's sign-in grants, as far as connecting the account needs it."""

    @property
    def email(self) -> str: ...

    def as_credentials(self) -> dict[str, Any]: ...


@runtime_checkable
class _CarriesTokens(Protocol):
    """A provider's ``MissingCalendarScope``: sign-in worked, calendar access was not granted."""

    @property
    def tokens(self) -> GrantedTokens: ...


class ListsCalendars(Protocol):
    def list_calendars(self) -> list[RemoteCalendarInfo]: ...


@dataclass(frozen=True)
class ConnectMessages:
    """What the user reads when a provider's connect fails.

    ``sign_in_failed`` takes the provider's error code as " (invalid_scope)", or nothing: never
    what the provider or the callback said (issue #13, finding 8).
    """

    declined: str
    unverified: str
    code_refused: str
    sign_in_failed: str
    unreachable: str
    not_listed: str
    no_calendar_access: str


@dataclass(frozen=True)
class OAuthConnect:
    """One provider's pieces of the shared connect flow: its enum, adapter, oauth errors and wording."""

    provider: Provider
    provider_from_tokens: Callable[[Mapping[str, Any]], ListsCalendars]
    consent_denied: type[ProviderError]
    missing_scope: type[InsufficientPermissions]
    state_mismatch: type[ProviderError]
    code_refused: type[ProviderError]
    oauth_error: type[ProviderError]
    messages: ConnectMessages
    calendars_label: str
    logger: logging.Logger


def refuse_other_provider(
    request: AuthedHttpRequest, current: CalendarAccount | None, provider: Provider
) -> HttpResponse | None:
    """C6: while another provider's account is connected, say so instead of starting a sign-in."""
    if current is not None and current.provider != provider:
        messages.error(request, another_account_message(current))
        return redirect(page_url())
    return None


def finish_connect(
    request: AuthedHttpRequest, spec: OAuthConnect, finish: Callable[[], GrantedTokens]
) -> HttpResponse:
    """Finish a connect: tokens, calendars, account state; every failure gets a clear message."""
    text = spec.messages
    try:
        tokens = finish()
    except spec.consent_denied:
        messages.error(request, text.declined)
        return redirect(page_url())
    except spec.missing_scope as exc:
        if not isinstance(exc, _CarriesTokens):
            raise
        connect_without_calendar_access(request, spec, exc.tokens)
        return redirect(page_url())
    except spec.state_mismatch:
        messages.error(request, text.unverified)
        return redirect(page_url())
    except spec.code_refused:
        messages.error(request, text.code_refused)
        return redirect(page_url())
    except spec.oauth_error as exc:
        spec.logger.info("%s sign-in failed for user %s: %r", spec.provider.label, request.user.pk, exc)
        messages.error(request, text.sign_in_failed.format(code_suffix(exc.code)))
        return redirect(page_url())
    except TransientError:
        messages.error(request, text.unreachable)
        return redirect(page_url())

    provider = spec.provider_from_tokens(tokens.as_credentials())
    try:
        calendars = provider.list_calendars()
    except InsufficientPermissions:
        connect_without_calendar_access(request, spec, tokens)
        return redirect(page_url())
    except ProviderError as exc:
        spec.logger.warning(
            "listing %s calendars failed for user %s: %r", spec.calendars_label, request.user.pk, exc
        )
        messages.error(request, text.not_listed)
        return redirect(page_url())
    reconnecting = has_connected_account(request.user)
    try:
        account = do_connect_account(
            acting_user=request.user,
            provider=spec.provider,
            email=tokens.email,
            credentials=tokens.as_credentials(),
            calendars=calendars,
        )
    except AnotherAccountConnected as exc:
        messages.error(request, refusal_message(exc))
        return redirect(page_url())
    messages.success(request, connected_message(account, reconnected=reconnecting))
    return redirect(page_url())


def connect_without_calendar_access(
    request: AuthedHttpRequest, spec: OAuthConnect, tokens: GrantedTokens
) -> None:
    """C4: keep the account, show "Insufficient permissions"; reconnecting with access fixes it."""
    try:
        do_connect_account(
            acting_user=request.user,
            provider=spec.provider,
            email=tokens.email,
            credentials=tokens.as_credentials(),
            calendars=[],
            state=AccountState.INSUFFICIENT_PERMISSIONS,
            state_detail=INSUFFICIENT_PERMISSIONS_HELP,
        )
    except AnotherAccountConnected as exc:
        messages.error(request, refusal_message(exc))
        return
    messages.error(request, spec.messages.no_calendar_access + INSUFFICIENT_PERMISSIONS_HELP)
