"""Connect Microsoft 365 from Personal Preferences > Calendar Sync (C3, C4): msal sign-in, then calendars."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts.auth import AuthedHttpRequest
from calendarsync.actions import INSUFFICIENT_PERMISSIONS_HELP, AnotherAccountConnected, do_connect_account
from calendarsync.models import AccountState, Provider
from calendarsync.providers.base import InsufficientPermissions, ProviderError, TransientError
from calendarsync.providers.microsoft import oauth as microsoft_oauth
from calendarsync.providers.microsoft.adapter import MicrosoftProvider
from calendarsync.views import _another_account_message, _page_url, connected_account

logger = logging.getLogger(__name__)

MICROSOFT_SESSION_KEY = "calsync_microsoft_oauth"


@login_required
@require_http_methods(["POST"])
def connect_microsoft(request: AuthedHttpRequest) -> HttpResponse:
    """C3: send the user to Microsoft's sign-in and consent (offline access, PKCE, state, nonce)."""
    current = connected_account(request.user)
    if current is not None and current.provider != Provider.MICROSOFT:
        messages.error(request, _another_account_message(current))
        return redirect(_page_url())
    redirect_uri = request.build_absolute_uri(reverse("calendarsync:microsoft_callback"))
    try:
        auth_url, flow = microsoft_oauth.start_authorization(
            redirect_uri, login_hint=current.email if current else None
        )
    except TransientError:
        messages.error(request, "Microsoft sign-in could not be reached. Please try again in a minute.")
        return redirect(_page_url())
    request.session[MICROSOFT_SESSION_KEY] = flow
    return redirect(auth_url)


@login_required
@require_http_methods(["GET"])
def microsoft_callback(request: AuthedHttpRequest) -> HttpResponse:
    """Finish the Microsoft 365 connect: tokens, calendars, account state; every failure says why."""
    # pop: a callback URL can be used once; a replay finds no pending sign-in.
    flow = request.session.pop(MICROSOFT_SESSION_KEY, None) or {}
    params = {key: str(value) for key, value in request.GET.items()}
    try:
        tokens = microsoft_oauth.finish_authorization(flow, params)
    except microsoft_oauth.ConsentDenied:
        messages.error(
            request, "You declined access to your Microsoft 365 calendar, so nothing was connected."
        )
        return redirect(_page_url())
    except microsoft_oauth.MissingCalendarScope as exc:
        _connect_without_calendar_access(request, exc.tokens)
        return redirect(_page_url())
    except microsoft_oauth.StateMismatch:
        messages.error(request, "That Microsoft sign-in could not be verified. Please connect again.")
        return redirect(_page_url())
    except microsoft_oauth.OAuthError as exc:
        messages.error(request, f"Microsoft sign-in did not complete: {exc.message}. Please connect again.")
        return redirect(_page_url())
    except TransientError:
        messages.error(request, "Microsoft could not be reached. Please try again in a minute.")
        return redirect(_page_url())

    provider = MicrosoftProvider.from_tokens(tokens.as_credentials())
    try:
        calendars = provider.list_calendars()
    except InsufficientPermissions:
        _connect_without_calendar_access(request, tokens)
        return redirect(_page_url())
    except ProviderError as exc:
        logger.warning("listing Microsoft 365 calendars failed for user %s: %r", request.user.pk, exc)
        messages.error(request, "Microsoft 365 did not list your calendars. Please try connecting again.")
        return redirect(_page_url())
    try:
        account = do_connect_account(
            acting_user=request.user,
            provider=Provider.MICROSOFT,
            email=tokens.email,
            credentials=tokens.as_credentials(),
            calendars=calendars,
        )
    except AnotherAccountConnected as exc:
        messages.error(request, _another_account_message(exc.account))
        return redirect(_page_url())
    if account.preferences.sync_started_at is None:
        messages.success(request, f"Connected {tokens.email}. Review the options below, then start the sync.")
    else:
        messages.success(request, f"Connected {tokens.email}. Sync carries on with your options.")
    return redirect(_page_url())


def _connect_without_calendar_access(
    request: AuthedHttpRequest, tokens: microsoft_oauth.GrantedTokens
) -> None:
    """C4: keep the account, show "Insufficient permissions"; reconnecting with access fixes it."""
    try:
        do_connect_account(
            acting_user=request.user,
            provider=Provider.MICROSOFT,
            email=tokens.email,
            credentials=tokens.as_credentials(),
            calendars=[],
            state=AccountState.INSUFFICIENT_PERMISSIONS,
            state_detail=INSUFFICIENT_PERMISSIONS_HELP,
        )
    except AnotherAccountConnected as exc:
        messages.error(request, _another_account_message(exc.account))
        return
    messages.error(
        request, "Microsoft 365 did not grant access to your calendar. " + INSUFFICIENT_PERMISSIONS_HELP
    )
