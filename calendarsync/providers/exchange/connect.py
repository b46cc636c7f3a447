"""Connecting an Exchange Server mailbox (C3, C5): find the server, choose the sign-in, check the login,
list the calendars.

Nothing is stored here; the caller saves the returned credentials through ``do_connect_account``
(encrypted at rest, C7). Failures are our provider errors, so the page can say what went wrong:
``ExchangeOnline`` (a Microsoft 365 mailbox: connect it through Microsoft 365),
``AppPasswordRequired`` (two-factor account, C5), ``AuthRevoked`` (wrong password, over NTLM as
over Basic), ``ServerUnusable`` (not an EWS address; ``AddressNotAllowed``: an address CalSync may
not reach, see ``network``; ``auth.NoSupportedSignIn``: neither NTLM nor Basic offered),
``TransientError`` (unreachable), ``AutodiscoverFailed``. A login without access to the calendar
folder (C4) comes back with ``calendar_access`` False.

Exchange Online: Microsoft blocks EWS in Exchange Online from 1 October 2026 and retires it on
1 April 2027 (PROVIDERS.md); its mailboxes belong to the Microsoft 365 (Graph) path. So a server
URL on a Microsoft 365 EWS host (``EXCHANGE_ONLINE_HOSTS``, or a subdomain) is refused with
``ExchangeOnline`` before any request, whether typed, configured or found by autodiscover (whose
own requests go to the user's domain): neither the password nor any EWS request reaches it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

from calendarsync.providers.base import (
    AuthRevoked,
    InsufficientPermissions,
    ProviderError,
    RemoteCalendarInfo,
)
from calendarsync.providers.exchange import client
from calendarsync.providers.exchange.adapter import ExchangeProvider
from calendarsync.providers.exchange.auth import AUTO, check_auth_type, probe_auth_type
from calendarsync.providers.exchange.errors import (
    EXCHANGE_FAILURES,
    AddressNotAllowed,
    map_exchange_error,
)
from calendarsync.providers.exchange.network import (
    EXCHANGE_ONLINE_HOSTS,
    check_url,
    exchange_online_refusals,
    is_exchange_online,
    plain_http_allowed,
)

__all__ = ["EXCHANGE_ONLINE_HOSTS", "is_exchange_online"]

logger = logging.getLogger(__name__)

EWS_PATH = "/EWS/Exchange.asmx"


# The hosts Microsoft 365 serves Exchange Online's EWS from, per cloud (a subdomain counts too).
class AutodiscoverFailed(ProviderError):
    """No server URL was given and autodiscover could not find the mailbox's EWS endpoint."""


class ExchangeOnline(ProviderError):
    """The mailbox is in Exchange Online (Microsoft 365): it connects through Microsoft 365, not EWS."""


def refuse_exchange_online(url: str, *, found_by: str) -> None:
    """``ExchangeOnline`` for a Microsoft 365 EWS URL (before anything is sent to it)."""
    if is_exchange_online(url):
        logger.info("Exchange connect refused: %s is an Exchange Online URL", found_by)
        raise ExchangeOnline(
            "This mailbox is in Exchange Online (Microsoft 365): connect it through Microsoft 365",
            code="exchange-online",
        )


@dataclass(frozen=True)
class VerifiedLogin:
    """A login Exchange accepted: the credentials to store and the mailbox's calendars."""

    credentials: dict[str, str]
    calendars: list[RemoteCalendarInfo]
    # The login works but the calendar folder is refused (C4): connect, and say so.
    calendar_access: bool = True

    def __repr__(self) -> str:  # never the password (C7)
        return f"VerifiedLogin(email={self.credentials.get('email')!r}, calendars={len(self.calendars)})"


def normalize_server_url(url: str) -> str:
    """A bare host (https://mail.example.com) means its standard EWS path."""
    parts = urlsplit(url.strip())
    if parts.path in ("", "/"):
        parts = parts._replace(path=EWS_PATH)
    return urlunsplit(parts)


def find_server_url(email: str, password: str, server_url: str) -> str:
    """The URL the user gave; else the configured one (local development); else autodiscover.

    ``ExchangeOnline`` for a Microsoft 365 URL: a typed or configured one before any request, one
    autodiscover found before anything goes to it."""
    if server_url:
        url = normalize_server_url(server_url)
        refuse_exchange_online(url, found_by="the typed server URL")
        return url
    configured = str(getattr(settings, "EXCHANGE_SERVER_URL", "") or "")
    if configured:
        url = normalize_server_url(configured)
        refuse_exchange_online(url, found_by="EXCHANGE_SERVER_URL")
        return url
    try:
        with exchange_online_refusals() as refused:
            found = client.discover_service_endpoint(email, password)
    except EXCHANGE_FAILURES as exc:
        error = map_exchange_error(exc)
        if isinstance(error, AuthRevoked):
            raise error from exc
        if refused:
            # Autodiscover was sent on to Microsoft 365 (the guard let nothing go there).
            refuse_exchange_online(refused[0], found_by="autodiscover's redirect")
        logger.info("Exchange autodiscover failed for a connect: %s", type(exc).__name__)
        raise AutodiscoverFailed("Autodiscover found no Exchange server for this address") from exc
    refuse_exchange_online(found, found_by="autodiscover's answer")
    try:
        check_server_url(found)
    except ProviderError as exc:
        # Whoever answers autodiscover for the domain chooses this URL: the same rule as a typed one.
        logger.info("Exchange autodiscover answered a URL CalSync may not use: %r", exc)
        raise AutodiscoverFailed("Autodiscover found no Exchange server CalSync may use") from exc
    return found


def check_server_url(url: str) -> None:
    """Before the password is sent: plain http only where allowed, and a host that resolves to an
    allowed address (``network``). The connection is checked again when it is made."""
    if not plain_http_allowed(url):
        raise AddressNotAllowed("Exchange server URLs must use https")
    try:
        check_url(url)
    except OSError as exc:  # BlockedAddress, or a name that does not resolve
        raise map_exchange_error(exc) from exc


def verify_login(
    email: str, password: str, server_url: str = "", *, auth_type: str = AUTO, **provider_options: Any
) -> VerifiedLogin:
    """Sign in once and list the calendars; raises a ``ProviderError`` saying why it failed.

    ``auth_type``: "auto" (the server's 401 challenges decide: NTLM when offered, else Basic; one
    request without credentials), or the user's choice, "ntlm" or "basic". The returned
    credentials carry the ``auth_type`` used and the ``version`` (build) the server reported.
    """
    check_auth_type(auth_type)
    url = find_server_url(email, password, server_url)
    check_server_url(url)
    chosen = probe_auth_type(url) if auth_type == AUTO else auth_type
    credentials = {"email": email, "password": password, "server_url": url, "auth_type": chosen}
    # One attempt: a person is waiting, and a failure is reported at once.
    provider = ExchangeProvider.from_credentials(credentials, **{"attempts": 1, **provider_options})
    try:
        calendars = provider.list_calendars()
    except InsufficientPermissions:
        calendars, calendar_access = [], False
    else:
        calendar_access = True
    # Sync runs then tell exchangelib the version up front: no request to find it out.
    credentials["version"] = provider.server_version()
    return VerifiedLogin(credentials=credentials, calendars=calendars, calendar_access=calendar_access)
