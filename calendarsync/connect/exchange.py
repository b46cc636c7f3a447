"""Connect Microsoft Exchange Server (on-premises) from Personal Preferences > Calendar Sync (C3, C5, C7).

E-mail, password, server URL, and under "Advanced" the sign-in method (NTLM or Basic; automatic by
default). A mailbox in Exchange Online is refused before anything is sent to it, and the page
offers the Microsoft 365 connect instead (issue #16: EWS is off for Exchange Online).

The view checks the login against the server (one EWS request listing the calendar), then saves
the account through ``do_connect_account``; the password goes only into the encrypted
credentials (C7). Every refusal re-renders the form with its message, keeps the e-mail and
the server URL, never the password, and saves nothing.

The server URL is the user's choice, so the messages must not tell about the network behind
CalSync (issue #13): every failure to reach an Exchange server (an address CalSync may not use,
a name that does not resolve, a closed port, a 404, a web page, a TLS error, a busy server) has
one message. Only an Exchange server that answered speaks of the password (wrong, or an app
password needed, C5). Attempts are limited per user (``EXCHANGE_CONNECT_MAX_ATTEMPTS`` per
``attempts.EXCHANGE_CONNECT_WINDOW``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods

from accounts.auth import AuthedHttpRequest
from calendarsync.actions import INSUFFICIENT_PERMISSIONS_HELP, AnotherAccountConnected, do_connect_account
from calendarsync.connect.attempts import EXCHANGE_CONNECT_WINDOW, take_attempt
from calendarsync.connect.common import (
    another_account_message,
    connected_account,
    connected_message,
    page_url,
    refusal_message,
    signed_in_as_someone_else_message,
)
from calendarsync.connect.forms import ExchangeConnectForm
from calendarsync.models import AccountState, CalendarAccount, Provider
from calendarsync.providers.base import AuthRevoked, ProviderError
from calendarsync.providers.exchange.connect import (
    AutodiscoverFailed,
    ExchangeOnline,
    VerifiedLogin,
    verify_login,
)
from calendarsync.providers.exchange.errors import AppPasswordRequired

logger = logging.getLogger(__name__)

TWO_FACTOR_HELP = (
    "Your account uses two-factor authentication, so Exchange does not accept your normal password "
    "here. Create an app password in your Microsoft account and paste it into Password instead."
)
TWO_FACTOR_STEPS = (
    "Sign in to your Microsoft account, open Security, then Advanced security options, and under "
    "App passwords choose Create a new app password. Copy it and paste it into the Password field below."
)
WRONG_LOGIN = "Exchange did not accept this e-mail address and password. Check both and try again."
NO_CONNECTION = (
    "CalSync could not connect to an Exchange server at this address. Check the server URL: it usually "
    "ends in /EWS/Exchange.asmx, like https://mail.example.com/EWS/Exchange.asmx. If it is right, try "
    "again in a few minutes, or ask your IT admin."
)
NOT_FOUND_BY_AUTODISCOVER = (
    "CalSync could not find your Exchange server from your e-mail address. "
    "Enter the server URL (ask your IT admin for it)."
)
EXCHANGE_ONLINE = (
    "This mailbox is in Exchange Online (Microsoft 365). Connect it with the Microsoft 365 button: "
    "CalSync sent nothing to Exchange Online."
)
TOO_MANY_ATTEMPTS = (
    "Too many connection attempts. Wait ten minutes, then try again; if it still fails, ask your IT admin."
)


def _initial(current: CalendarAccount | None) -> dict[str, Any]:
    """A reconnect starts from the stored e-mail and server URL (never the password)."""
    if current is None:
        return {}
    stored: Mapping[str, Any] = current.credentials or {}
    return {
        "email": current.email,
        "server_url": str(stored.get("server_url") or ""),
        "auth_type": str(stored.get("auth_type") or "auto"),
    }


def _refuse(form: ExchangeConnectForm, error: ProviderError, server_url: str) -> dict[str, Any]:
    """Put the reason of a refused login on the form; extra context for the page."""
    if isinstance(error, AppPasswordRequired):
        form.add_error("password", TWO_FACTOR_HELP)
        return {"needs_app_password": True, "app_password_steps": TWO_FACTOR_STEPS}
    if isinstance(error, ExchangeOnline):
        # Issue #16: EWS is off for Exchange Online; Microsoft 365 (Graph) is the way in.
        form.add_error("server_url" if server_url else "email", EXCHANGE_ONLINE)
        return {"exchange_online": True}
    if isinstance(error, AuthRevoked):
        form.add_error("password", WRONG_LOGIN)
    elif isinstance(error, AutodiscoverFailed):
        form.add_error("server_url", NOT_FOUND_BY_AUTODISCOVER)
    else:
        # Anything else is "no Exchange server answered there", whatever the network said.
        form.add_error("server_url" if server_url else None, NO_CONNECTION)
    return {}


def _attempt_allowed(request: AuthedHttpRequest) -> bool:
    return take_attempt(
        "exchange",
        request.user.pk,
        limit=settings.EXCHANGE_CONNECT_MAX_ATTEMPTS,
        window=EXCHANGE_CONNECT_WINDOW,
    )


# Error reports never show the password: not the POST data, nor any local variable of this view or
# of what it calls (the form, the connect check, exchangelib), since every one of them may hold it.
@sensitive_post_parameters("password")
@sensitive_variables()
@login_required
@require_http_methods(["GET", "POST"])
def connect_exchange(request: AuthedHttpRequest) -> HttpResponse:
    """C3/C5: connect (or reconnect) an Exchange mailbox with e-mail, password and optional server URL."""
    current = connected_account(request.user)
    if current is not None and current.provider != Provider.EXCHANGE:
        messages.error(request, another_account_message(current))
        return redirect(page_url())
    form = ExchangeConnectForm(request.POST if request.method == "POST" else None, initial=_initial(current))
    extra: dict[str, Any] = {}
    status = 400 if form.is_bound else 200
    if request.method == "POST" and form.is_valid():
        email = str(form.cleaned_data["email"])
        server_url = str(form.cleaned_data.get("server_url") or "")
        if current is not None and current.email.lower() != email.lower():
            # A reconnect is for the connected mailbox: another one's password never leaves CalSync.
            form.add_error("email", signed_in_as_someone_else_message(current, email.lower()))
        elif not _attempt_allowed(request):
            logger.info("Exchange connect attempts of user %s over the limit", request.user.pk)
            form.add_error(None, TOO_MANY_ATTEMPTS)
            status = 429
        else:
            try:
                login = verify_login(
                    email,
                    str(form.cleaned_data["password"]),
                    server_url,
                    auth_type=str(form.cleaned_data.get("auth_type") or "auto"),
                )
            except ProviderError as exc:
                logger.info("Exchange connect refused for user %s: %r", request.user.pk, exc)
                extra = _refuse(form, exc, server_url)
            else:
                return _connected(request, login, reconnecting=current is not None)
    context = {"form": form, "section": "calendar_sync", "reconnecting": current is not None, **extra}
    return render(request, "calendarsync/connect_exchange.html", context, status=status)


def _connected(request: AuthedHttpRequest, login: VerifiedLogin, *, reconnecting: bool) -> HttpResponse:
    email = login.credentials["email"]
    # C4: without access to the calendar folder the account is kept, showing what to ask for.
    state = AccountState.ACTIVE if login.calendar_access else AccountState.INSUFFICIENT_PERMISSIONS
    try:
        account = do_connect_account(
            acting_user=request.user,
            provider=Provider.EXCHANGE,
            email=email,
            credentials=login.credentials,
            calendars=login.calendars,
            state=state,
            state_detail="" if login.calendar_access else INSUFFICIENT_PERMISSIONS_HELP,
        )
    except AnotherAccountConnected as exc:
        messages.error(request, refusal_message(exc))
        return redirect(page_url())
    if not login.calendar_access:
        messages.error(
            request, "Exchange did not let CalSync open your calendar. " + INSUFFICIENT_PERMISSIONS_HELP
        )
    else:
        messages.success(request, connected_message(account, reconnected=reconnecting))
    return redirect(page_url())
