"""Personal Preferences > Calendar Sync (C1-C6): the page and the connect flows."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts.auth import AuthedHttpRequest
from accounts.models import User
from calendarsync.actions import (
    INSUFFICIENT_PERMISSIONS_HELP,
    AnotherAccountConnected,
    do_connect_account,
)
from calendarsync.models import AccountState, CalendarAccount, Provider
from calendarsync.providers.base import InsufficientPermissions, ProviderError, TransientError
from calendarsync.providers.google import oauth as google_oauth
from calendarsync.providers.google.adapter import GoogleProvider

logger = logging.getLogger(__name__)

GOOGLE_SESSION_KEY = "calsync_google_oauth"


def connected_account(user: User) -> CalendarAccount | None:
    return user.calendar_accounts.filter(stopped_at__isnull=True).prefetch_related("calendars").first()


def _page_url() -> str:
    return reverse("calendarsync:page")


@login_required
@require_http_methods(["GET"])
def page(request: AuthedHttpRequest) -> HttpResponse:
    return render(
        request,
        "calendarsync/page.html",
        {"account": connected_account(request.user), "section": "calendar_sync", "states": AccountState},
    )


@login_required
@require_http_methods(["GET"])
def connect_other(request: AuthedHttpRequest) -> HttpResponse:
    """C2: IMAP and POP are not supported; say so plainly."""
    return render(request, "calendarsync/connect_other.html", {"section": "calendar_sync"})


@login_required
@require_http_methods(["POST"])
def connect_google(request: AuthedHttpRequest) -> HttpResponse:
    """C3: send the user to Google's consent screen (offline access, PKCE, state)."""
    current = connected_account(request.user)
    if current is not None and current.provider != Provider.GOOGLE:
        messages.error(request, f"{current.email} is connected. Stop its sync before adding another account.")
        return redirect(_page_url())
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


@login_required
@require_http_methods(["GET"])
def google_callback(request: AuthedHttpRequest) -> HttpResponse:
    """Finish the Google connect: tokens, calendars, account state; every failure gets a clear message."""
    # pop: a callback URL can be used once; a replay finds no pending sign-in.
    pending = request.session.pop(GOOGLE_SESSION_KEY, None) or {}
    try:
        tokens = google_oauth.finish_authorization(
            pending.get("redirect_uri", ""),
            pending.get("state", ""),
            pending.get("code_verifier", ""),
            request.build_absolute_uri(),
        )
    except google_oauth.ConsentDenied:
        messages.error(request, "You declined access to your Google Calendar, so nothing was connected.")
        return redirect(_page_url())
    except google_oauth.MissingCalendarScope as exc:
        _connect_without_calendar_access(request, exc.tokens)
        return redirect(_page_url())
    except google_oauth.StateMismatch:
        messages.error(request, "That Google sign-in could not be verified. Please connect again.")
        return redirect(_page_url())
    except google_oauth.OAuthError as exc:
        messages.error(request, f"Google sign-in did not complete: {exc.message}. Please connect again.")
        return redirect(_page_url())
    except TransientError:
        messages.error(request, "Google could not be reached. Please try again in a minute.")
        return redirect(_page_url())

    provider = GoogleProvider.from_tokens(tokens.as_credentials())
    try:
        calendars = provider.list_calendars()
    except InsufficientPermissions:
        _connect_without_calendar_access(request, tokens)
        return redirect(_page_url())
    except ProviderError as exc:
        logger.warning("listing Google calendars failed for user %s: %r", request.user.pk, exc)
        messages.error(request, "Google did not list your calendars. Please try connecting again.")
        return redirect(_page_url())
    try:
        do_connect_account(
            acting_user=request.user,
            provider=Provider.GOOGLE,
            email=tokens.email,
            credentials=tokens.as_credentials(),
            calendars=calendars,
        )
    except AnotherAccountConnected as exc:
        messages.error(
            request, f"{exc.account.email} is connected. Stop its sync before adding another account."
        )
        return redirect(_page_url())
    messages.success(request, f"Connected {tokens.email}.")
    return redirect(_page_url())


def _connect_without_calendar_access(request: AuthedHttpRequest, tokens: google_oauth.GrantedTokens) -> None:
    """C4: keep the account, show "Insufficient permissions"; reconnecting with access fixes it."""
    try:
        do_connect_account(
            acting_user=request.user,
            provider=Provider.GOOGLE,
            email=tokens.email,
            credentials=tokens.as_credentials(),
            calendars=[],
            state=AccountState.INSUFFICIENT_PERMISSIONS,
            state_detail=INSUFFICIENT_PERMISSIONS_HELP,
        )
    except AnotherAccountConnected as exc:
        messages.error(
            request, f"{exc.account.email} is connected. Stop its sync before adding another account."
        )
        return
    messages.error(request, "Google did not grant access to your calendar. " + INSUFFICIENT_PERMISSIONS_HELP)
