"""Connect Microsoft 365 from Personal Preferences > Calendar Sync (C3, C4): msal sign-in, then calendars."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_http_methods

from accounts.auth import AuthedHttpRequest
from calendarsync.connect.common import (
    ConnectMessages,
    OAuthConnect,
    connected_account,
    finish_connect,
    page_url,
    refuse_other_provider,
)
from calendarsync.models import CalendarAccount, Provider
from calendarsync.providers.base import TransientError
from calendarsync.providers.microsoft import oauth as microsoft_oauth
from calendarsync.providers.microsoft.adapter import MicrosoftProvider

logger = logging.getLogger(__name__)

MICROSOFT_SESSION_KEY = "calsync_microsoft_oauth"


@login_required
@require_http_methods(["POST"])
def connect_microsoft(request: AuthedHttpRequest) -> HttpResponse:
    """C3: send the user to Microsoft's sign-in and consent (offline access, PKCE, state, nonce)."""
    current = connected_account(request.user)
    refusal = refuse_other_provider(request, current, Provider.MICROSOFT)
    if refusal is not None:
        return refusal
    return start_microsoft_sign_in(request, current)


def start_microsoft_sign_in(request: AuthedHttpRequest, current: CalendarAccount | None) -> HttpResponse:
    """Microsoft's sign-in and consent; a reconnect suggests the connected account's address."""
    redirect_uri = request.build_absolute_uri(reverse("calendarsync:microsoft_callback"))
    try:
        auth_url, flow = microsoft_oauth.start_authorization(
            redirect_uri, login_hint=current.email if current else None
        )
    except TransientError:
        messages.error(request, "Microsoft sign-in could not be reached. Please try again in a minute.")
        return redirect(page_url())
    request.session[MICROSOFT_SESSION_KEY] = flow
    return redirect(auth_url)


MICROSOFT_CONNECT = OAuthConnect(
    provider=Provider.MICROSOFT,
    provider_from_tokens=MicrosoftProvider.from_tokens,
    consent_denied=microsoft_oauth.ConsentDenied,
    missing_scope=microsoft_oauth.MissingCalendarScope,
    state_mismatch=microsoft_oauth.StateMismatch,
    code_refused=microsoft_oauth.InvalidGrant,
    oauth_error=microsoft_oauth.OAuthError,
    messages=ConnectMessages(
        declined="You declined access to your Microsoft 365 calendar, so nothing was connected.",
        unverified="That Microsoft sign-in could not be verified. Please connect again.",
        code_refused="Microsoft refused the authorization code. Please connect again.",
        sign_in_failed="Microsoft sign-in did not complete{}. Please connect again.",
        unreachable="Microsoft could not be reached. Please try again in a minute.",
        not_listed="Microsoft 365 did not list your calendars. Please try connecting again.",
        no_calendar_access="Microsoft 365 did not grant access to your calendar. ",
    ),
    calendars_label="Microsoft 365",
    logger=logger,
)


# The callback's code, the PKCE verifier and the tokens it gets sit in locals of this view and of
# what it calls: error reports show none of them.
@sensitive_variables()
@login_required
@require_http_methods(["GET"])
def microsoft_callback(request: AuthedHttpRequest) -> HttpResponse:
    """Finish the Microsoft 365 connect: tokens, calendars, account state; every failure says why."""
    # pop: a callback URL can be used once; a replay finds no pending sign-in.
    flow = request.session.pop(MICROSOFT_SESSION_KEY, None) or {}
    params = {key: str(value) for key, value in request.GET.items()}
    return finish_connect(
        request, MICROSOFT_CONNECT, lambda: microsoft_oauth.finish_authorization(flow, params)
    )
