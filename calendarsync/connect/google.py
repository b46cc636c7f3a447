"""Connect Google Calendar (C3): OAuth consent with offline access, PKCE and state; reconnect (C4)."""

from __future__ import annotations

import logging

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
    refuse_other_provider,
)
from calendarsync.models import CalendarAccount, Provider
from calendarsync.providers.google import oauth as google_oauth
from calendarsync.providers.google.adapter import GoogleProvider

logger = logging.getLogger(__name__)

GOOGLE_SESSION_KEY = "calsync_google_oauth"


@login_required
@require_http_methods(["POST"])
def connect_google(request: AuthedHttpRequest) -> HttpResponse:
    """C3: send the user to Google's consent screen (offline access, PKCE, state)."""
    current = connected_account(request.user)
    refusal = refuse_other_provider(request, current, Provider.GOOGLE)
    if refusal is not None:
        return refusal
    return start_google_sign_in(request, current)


def start_google_sign_in(request: AuthedHttpRequest, current: CalendarAccount | None) -> HttpResponse:
    """Google's consent screen; a reconnect suggests the connected account's address."""
    redirect_uri = request.build_absolute_uri(reverse("calendarsync:google_callback"))
    auth_url, state, code_verifier = google_oauth.start_authorization(
        redirect_uri, login_hint=current.email if current else None
    )
    request.session[GOOGLE_SESSION_KEY] = {
        "state": state,
        "code_verifier": code_verifier,
        "redirect_uri": redirect_uri,
    }
    return redirect(auth_url)


GOOGLE_CONNECT = OAuthConnect(
    provider=Provider.GOOGLE,
    provider_from_tokens=GoogleProvider.from_tokens,
    consent_denied=google_oauth.ConsentDenied,
    missing_scope=google_oauth.MissingCalendarScope,
    state_mismatch=google_oauth.StateMismatch,
    code_refused=google_oauth.InvalidGrant,
    oauth_error=google_oauth.OAuthError,
    messages=ConnectMessages(
        declined="You declined access to your Google Calendar, so nothing was connected.",
        unverified="That Google sign-in could not be verified. Please connect again.",
        code_refused="Google refused the authorization code. Please connect again.",
        sign_in_failed="Google sign-in did not complete{}. Please connect again.",
        unreachable="Google could not be reached. Please try again in a minute.",
        not_listed="Google did not list your calendars. Please try connecting again.",
        no_calendar_access="Google did not grant access to your calendar. ",
    ),
    calendars_label="Google",
    logger=logger,
)


# The callback's code, the PKCE verifier and the tokens it gets sit in locals of this view and of
# what it calls: error reports show none of them.
@sensitive_variables()
@login_required
@require_http_methods(["GET"])
def google_callback(request: AuthedHttpRequest) -> HttpResponse:
    """Finish the Google connect: tokens, calendars, account state; every failure gets a clear message."""
    # pop: a callback URL can be used once; a replay finds no pending sign-in.
    pending = request.session.pop(GOOGLE_SESSION_KEY, None) or {}
    return finish_connect(
        request,
        GOOGLE_CONNECT,
        lambda: google_oauth.finish_authorization(
            pending.get("redirect_uri", ""),
            pending.get("state", ""),
            pending.get("code_verifier", ""),
            request.build_absolute_uri(),
        ),
    )
