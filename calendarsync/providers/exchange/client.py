"""exchangelib plumbing: one Account per stored credential, our timeout, fail-fast errors, no secrets in logs.

The stored credentials dict (``CalendarAccount.credentials`` for Exchange, encrypted at rest, C7)
has the keys ``email``, ``password`` (or app password, C5), ``server_url`` (the EWS endpoint,
e.g. https://mail.example.com/EWS/Exchange.asmx), ``auth_type`` ("ntlm" or "basic", chosen at
connect from the server's 401 challenges, ``auth.probe_auth_type``) and ``version`` (the build
the server reported at connect, e.g. "15.2.1544.4"). A connect without a server URL finds it with
autodiscover once (``discover_service_endpoint``) and stores what it found. Credentials stored
before NTLM support have neither of the last two: they sign in with Basic as Exchange 2016, as
they always did (no migration needed).

Version: exchangelib is given the stored build, so a sync run asks nothing before its first real
request (a no-change sync stays one EWS request); every answer's ``ServerVersionInfo`` updates
the account's version, which the connect stores. Exchange 2016 (15.1) and 2019 (15.2) both take
``RequestServerVersion`` Exchange2016, and the calendar operations CalSync uses (GetFolder,
SyncFolderItems, FindItem, GetItem, CreateItem, UpdateItem, DeleteItem) are the same on both.

Facts this relies on are in /work/shared/PROVIDERS.md (Exchange section).
Configuration: https://ecederstrand.github.io/exchangelib/#setup-and-connecting
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from exchangelib import DELEGATE, Account, Configuration, Credentials, EWSTimeZone, ExtendedProperty, Version
from exchangelib.autodiscover import Autodiscovery
from exchangelib.errors import TransportError, UnauthorizedError
from exchangelib.folders import Calendar, DeletedItems, Root
from exchangelib.items import CalendarItem
from exchangelib.properties import DistinguishedFolderId, Mailbox
from exchangelib.protocol import FailFast
from exchangelib.transport import BASIC as EWS_BASIC
from exchangelib.transport import NTLM as EWS_NTLM
from exchangelib.util import is_xml
from exchangelib.version import EXCHANGE_2016, Build

from calendarsync.providers.exchange.network import install_network_guard

logger = logging.getLogger(__name__)

# Our own property set: the CRM's tag (activity) and the idempotency key of a create.
# https://learn.microsoft.com/en-us/exchange/client-developer/exchange-web-services/properties-and-extended-properties-in-ews-in-exchange
CALSYNC_PROPERTY_SET = "0f3b6a39-5c8e-4f6a-9d5e-7a1c2b4d8e61"
TAG_FIELD = "calsync_tag"
KEY_FIELD = "calsync_key"
# How an account signs in, as stored ("auth_type"), and exchangelib's names for them.
NTLM = "ntlm"
BASIC = "basic"
AUTH_TYPES = (NTLM, BASIC)
EXCHANGELIB_AUTH = {NTLM: EWS_NTLM, BASIC: EWS_BASIC}
# Credentials stored before NTLM support signed in with Basic.
DEFAULT_AUTH_TYPE = BASIC
# Signs of Microsoft refusing a right password because the account wants a second factor.
TWO_FACTOR_HINTS = re.compile(r"multi-?factor|two-?factor|mfa|app password|AADSTS50076|AADSTS50079", re.I)


class CalSyncTag(ExtendedProperty):  # type: ignore[misc]  # exchangelib is untyped
    property_set_id = CALSYNC_PROPERTY_SET
    property_name = "calsync_activity_id"
    property_type = "String"


class CalSyncKey(ExtendedProperty):  # type: ignore[misc]
    property_set_id = CALSYNC_PROPERTY_SET
    property_name = "calsync_idempotency_key"
    property_type = "String"


_register_lock = threading.Lock()


def register_properties() -> None:
    """Teach exchangelib's CalendarItem our two extended properties (once per process)."""
    with _register_lock:
        registered = {field.name for field in CalendarItem.FIELDS}
        if TAG_FIELD not in registered:
            CalendarItem.register(TAG_FIELD, CalSyncTag)
        if KEY_FIELD not in registered:
            CalendarItem.register(KEY_FIELD, CalSyncKey)


# --------------------------------------------------------------------------- errors seen on the wire


class PasswordRefused(UnauthorizedError):  # type: ignore[misc]
    """401: the server refused the e-mail and password; ``two_factor`` when it asked for a second factor."""

    def __init__(self, message: str, *, two_factor: bool) -> None:
        super().__init__(message)
        self.two_factor = two_factor


class HttpStatusError(TransportError):  # type: ignore[misc]
    """A non-SOAP answer (an IIS error page, a proxy's 502, a 404 for a wrong URL)."""

    def __init__(self, status: int, *, retry_after: str | None = None) -> None:
        super().__init__(f"the server answered HTTP {status}")
        self.status = status
        self.retry_after = retry_after


class NotAnEwsEndpoint(TransportError):  # type: ignore[misc]
    """The URL answers, but not with SOAP: it is not an Exchange Web Services endpoint."""


def looks_like_two_factor(headers: Mapping[str, str], body: bytes) -> bool:
    """Microsoft's front ends say why a login failed in X-MS-Diagnostics / WWW-Authenticate or the page."""
    said = " ".join(
        [
            headers.get("X-MS-Diagnostics", ""),
            headers.get("WWW-Authenticate", ""),
            body[:2000].decode("utf-8", "replace"),
        ]
    )
    return bool(TWO_FACTOR_HINTS.search(said))


class CalSyncFailFast(FailFast):  # type: ignore[misc]
    """exchangelib's fail-fast policy (we retry ourselves), telling apart what it lumps together.

    exchangelib turns a 401 into a bare "invalid credentials", an IIS error page into a busy
    server with a ten-second back-off, and a 404 into a malformed response. The adapter needs
    to know which, so these become our own exceptions here.
    https://ecederstrand.github.io/exchangelib/#fault-tolerance
    """

    def raise_response_errors(self, response: Any) -> None:
        status = int(response.status_code)
        content = response.content or b""
        if status == 200:
            if content and not is_xml(content):
                raise NotAnEwsEndpoint("the server answered with a page, not with SOAP")
            return
        if status == 401:
            raise PasswordRefused(
                "the server refused the e-mail address and password",
                two_factor=looks_like_two_factor(response.headers, content),
            )
        if status in (404, 405, 410):
            raise HttpStatusError(status)
        if status >= 500 and not (content and is_xml(content)):
            raise HttpStatusError(status, retry_after=response.headers.get("Retry-After"))
        if status in (429, 502, 503, 504):
            raise HttpStatusError(status, retry_after=response.headers.get("Retry-After"))
        super().raise_response_errors(response)


# --------------------------------------------------------------------------- log hygiene (C7)

_AUTHORIZATION = re.compile(
    r"(['\"]?authorization['\"]?\s*[:=]\s*['\"]?)(basic|bearer|ntlm|negotiate)\s+[^'\",}\s]+", re.I
)


class RedactAuthorization(logging.Filter):
    """exchangelib logs whole request headers at DEBUG, Authorization included: blank its value."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _AUTHORIZATION.sub(r"\1\2 [redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class DropNtlmTokens(logging.Filter):
    """pyspnego logs every NTLM message at DEBUG ("NTLM step input: <base64>"); the AUTHENTICATE
    one carries the password's NTLMv2 response, which can be cracked offline: drop those records."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("NTLM step")


_log_filter_lock = threading.Lock()


def install_log_redaction() -> None:
    """Once per process: the exchangelib loggers that may write request headers get the filter,
    pyspnego's NTLM logger (requests_ntlm's client side) loses its token records."""
    with _log_filter_lock:
        for name in ("exchangelib.util", "exchangelib.protocol", "exchangelib.services.common"):
            target = logging.getLogger(name)
            if not any(isinstance(f, RedactAuthorization) for f in target.filters):
                target.addFilter(RedactAuthorization())
        ntlm = logging.getLogger("spnego._ntlm")
        if not any(isinstance(f, DropNtlmTokens) for f in ntlm.filters):
            ntlm.addFilter(DropNtlmTokens())


# --------------------------------------------------------------------------- the client


@dataclass(frozen=True)
class ExchangeLogin:
    email: str
    password: str
    server_url: str
    auth_type: str = DEFAULT_AUTH_TYPE
    version: str = ""  # the build the server reported ("15.1.2507.6"); "" before it was known

    @classmethod
    def from_credentials(cls, credentials: Mapping[str, Any]) -> ExchangeLogin:
        auth_type = str(credentials.get("auth_type") or DEFAULT_AUTH_TYPE).lower()
        if auth_type not in AUTH_TYPES:
            logger.warning("Unknown Exchange auth_type %r in stored credentials: using Basic", auth_type)
            auth_type = DEFAULT_AUTH_TYPE
        return cls(
            email=str(credentials.get("email") or ""),
            password=str(credentials.get("password") or ""),
            server_url=str(credentials.get("server_url") or ""),
            auth_type=auth_type,
            version=str(credentials.get("version") or ""),
        )

    def __repr__(self) -> str:  # never the password (C7)
        return (
            f"ExchangeLogin(email={self.email!r}, server_url={self.server_url!r}, "
            f"auth_type={self.auth_type!r}, version={self.version!r})"
        )

    __str__ = __repr__


class LoginCredentials(Credentials):  # type: ignore[misc]  # exchangelib is untyped
    """exchangelib's Credentials, told apart by auth type as well.

    exchangelib shares one Protocol (its sessions, and their auth) per endpoint and credentials,
    ignoring the auth type (``CachingProtocol._cache_key``); credentials compare by their
    attributes, so carrying the auth type keeps an NTLM login from reusing a Basic one's sessions.
    """

    def __init__(self, username: str, password: str, auth_type: str) -> None:
        super().__init__(username, password)
        self.auth_type = auth_type


def server_version(build: str) -> Any:
    """exchangelib's Version for a stored build ("15.2.1544.4"); Exchange 2016 when unknown.

    https://learn.microsoft.com/en-us/exchange/new-features/build-numbers-and-release-dates
    """
    parts = build.split(".")
    if len(parts) == 4 and all(part.isdigit() for part in parts):
        parsed = Build(*(int(part) for part in parts))
        try:
            return Version(build=parsed)
        except ValueError:  # a build exchangelib does not know (newer): it still takes Exchange2016
            return Version(build=parsed, api_version=Version(build=EXCHANGE_2016).api_version)
    return Version(build=EXCHANGE_2016)


def reported_version(account: Any) -> str:
    """The build the account's last answer reported (exchangelib reads ``ServerVersionInfo``)."""
    build = getattr(getattr(account, "version", None), "build", None)
    return str(build) if build is not None else ""


def build_account(login: ExchangeLogin) -> Any:
    """An exchangelib Account on the given endpoint: the stored auth and version, our timeout, fail fast."""
    register_properties()
    install_log_redaction()
    install_network_guard()  # every connection of this account (connect and sync runs) is checked
    version = server_version(login.version)
    config = Configuration(
        service_endpoint=login.server_url,
        credentials=LoginCredentials(login.email, login.password, login.auth_type),
        auth_type=EXCHANGELIB_AUTH[login.auth_type],  # explicit: no auth-type probing request (PROVIDERS.md)
        version=version,  # explicit: no version-guessing request
        retry_policy=CalSyncFailFast(),
    )
    account = Account(
        login.email,
        config=config,
        autodiscover=False,
        access_type=DELEGATE,
        default_timezone=EWSTimeZone("UTC"),
        locale="en_US",
    )
    # Protocol objects are shared per endpoint and credentials, their config with them: the
    # version is per account (exchangelib's own place for it), the timeout ours, per call site.
    account.version = version
    account.protocol.TIMEOUT = settings.CALSYNC_HTTP_TIMEOUT_SECONDS
    return account


def discover_service_endpoint(email: str, password: str) -> str:
    """The EWS URL of a mailbox by autodiscover (when the user gave no server URL).

    https://learn.microsoft.com/en-us/exchange/client-developer/exchange-web-services/autodiscover-for-exchange
    """
    install_log_redaction()
    install_network_guard()  # autodiscover's requests, to every URL it tries, are checked too
    _response, protocol = Autodiscovery(email=email, credentials=Credentials(email, password)).discover()
    endpoint = str(protocol.service_endpoint or "")
    if not endpoint:
        raise NotAnEwsEndpoint("autodiscover found no EWS endpoint")
    return endpoint


class ExchangeClient:
    """One mailbox's Account and its calendar folder objects (no request is made until used)."""

    def __init__(self, login: ExchangeLogin) -> None:
        self.login = login
        self.account = build_account(login)
        self.root = Root(account=self.account)

    def _distinguished(self, folder_cls: Any) -> Any:
        # Give the id up front: exchangelib would set it lazily, changing the folder's hash
        # while it keys a dict (FindItem over several folders).
        mailbox = Mailbox(email_address=self.login.email)
        return folder_cls(
            root=self.root,
            _distinguished_id=DistinguishedFolderId(id=folder_cls.DISTINGUISHED_FOLDER_ID, mailbox=mailbox),
        )

    def calendar_folder(self, calendar_id: str) -> Any:
        """The calendar by the id ``list_calendars`` gave; "calendar" names the default one."""
        if calendar_id in ("", "calendar", "primary"):
            return self._distinguished(Calendar)
        return Calendar(root=self.root, id=calendar_id)

    def deleted_items_folder(self) -> Any:
        return self._distinguished(DeletedItems)

    def default_calendar(self) -> Any:
        # https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/getfolder-operation
        return Calendar.get_distinguished(root=self.root)
