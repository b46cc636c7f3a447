"""Connecting an Exchange mailbox (C3, C5): find the server, check the login, list the calendars.

Nothing is stored here; the caller saves the returned credentials through ``do_connect_account``
(encrypted at rest, C7). Failures are our provider errors, so the page can say what went wrong:
``AppPasswordRequired`` (two-factor account, C5), ``AuthRevoked`` (wrong password),
``ServerUnusable`` (not an EWS address; ``AddressNotAllowed``: an address CalSync may not reach,
see ``network``), ``TransientError`` (unreachable), ``AutodiscoverFailed``.
A login without access to the calendar folder (C4) comes back with ``calendar_access`` False.
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
from calendarsync.providers.exchange.errors import (
    EXCHANGE_FAILURES,
    AddressNotAllowed,
    map_exchange_error,
)
from calendarsync.providers.exchange.network import check_url, plain_http_allowed

logger = logging.getLogger(__name__)

EWS_PATH = "/EWS/Exchange.asmx"


class AutodiscoverFailed(ProviderError):
    """No server URL was given and autodiscover could not find the mailbox's EWS endpoint."""


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
    """The URL the user gave; else the configured one (local development); else autodiscover."""
    if server_url:
        return normalize_server_url(server_url)
    configured = str(getattr(settings, "EXCHANGE_SERVER_URL", "") or "")
    if configured:
        return normalize_server_url(configured)
    try:
        found = client.discover_service_endpoint(email, password)
    except EXCHANGE_FAILURES as exc:
        error = map_exchange_error(exc)
        if isinstance(error, AuthRevoked):
            raise error from exc
        logger.info("Exchange autodiscover failed for a connect: %s", type(exc).__name__)
        raise AutodiscoverFailed("Autodiscover found no Exchange server for this address") from exc
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


def verify_login(email: str, password: str, server_url: str = "", **provider_options: Any) -> VerifiedLogin:
    """Sign in once and list the calendars; raises a ``ProviderError`` saying why it failed."""
    url = find_server_url(email, password, server_url)
    check_server_url(url)
    credentials = {"email": email, "password": password, "server_url": url}
    # One attempt: a person is waiting, and a failure is reported at once.
    provider = ExchangeProvider.from_credentials(credentials, **{"attempts": 1, **provider_options})
    try:
        calendars = provider.list_calendars()
    except InsufficientPermissions:
        return VerifiedLogin(credentials=credentials, calendars=[], calendar_access=False)
    return VerifiedLogin(credentials=credentials, calendars=calendars)
