"""exchangelib plumbing: one Account per stored credential, our timeout, fail-fast errors, no secrets in logs.

The stored credentials dict (``CalendarAccount.credentials`` for Exchange, encrypted at rest, C7)
has the keys ``email``, ``password`` (or app password, C5) and ``server_url`` (the EWS endpoint,
e.g. https://mail.example.com/EWS/Exchange.asmx). A connect without a server URL finds it with
autodiscover once (``discover_service_endpoint``) and stores what it found.

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
from exchangelib import (
    BASIC,
    DELEGATE,
    Account,
    Configuration,
    Credentials,
    EWSTimeZone,
    ExtendedProperty,
    Version,
)
from exchangelib.autodiscover import Autodiscovery
from exchangelib.errors import TransportError, UnauthorizedError
from exchangelib.folders import Calendar, DeletedItems, Root
from exchangelib.items import CalendarItem
from exchangelib.properties import DistinguishedFolderId, Mailbox
from exchangelib.protocol import FailFast
from exchangelib.util import is_xml
from exchangelib.version import EXCHANGE_2016

from calendarsync.providers.exchange.network import install_network_guard

logger = logging.getLogger(__name__)

# Our own property set: the CRM's tag (activity) and the idempotency key of a create.
# https://learn.microsoft.com/en-us/exchange/client-developer/exchange-web-services/properties-and-extended-properties-in-ews-in-exchange
CALSYNC_PROPERTY_SET = "0f3b6a39-5c8e-4f6a-9d5e-7a1c2b4d8e61"
TAG_FIELD = "calsync_tag"
KEY_FIELD = "calsync_key"
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


_log_filter_lock = threading.Lock()


def install_log_redaction() -> None:
    """Once per process: the exchangelib loggers that may write request headers get the filter."""
    with _log_filter_lock:
        for name in ("exchangelib.util", "exchangelib.protocol", "exchangelib.services.common"):
            target = logging.getLogger(name)
            if not any(isinstance(f, RedactAuthorization) for f in target.filters):
                target.addFilter(RedactAuthorization())


# --------------------------------------------------------------------------- the client


@dataclass(frozen=True)
class ExchangeLogin:
    email: str
    password: str
    server_url: str

    @classmethod
    def from_credentials(cls, credentials: Mapping[str, Any]) -> ExchangeLogin:
        return cls(
            email=str(credentials.get("email") or ""),
            password=str(credentials.get("password") or ""),
            server_url=str(credentials.get("server_url") or ""),
        )

    def __repr__(self) -> str:  # never the password (C7)
        return f"ExchangeLogin(email={self.email!r}, server_url={self.server_url!r})"

    __str__ = __repr__


def build_account(login: ExchangeLogin) -> Any:
    """An exchangelib Account on the given endpoint: Basic auth, Exchange 2016, our timeout, fail fast."""
    register_properties()
    install_log_redaction()
    install_network_guard()  # every connection of this account (connect and sync runs) is checked
    config = Configuration(
        service_endpoint=login.server_url,
        credentials=Credentials(login.email, login.password),
        auth_type=BASIC,  # explicit: no auth-type probing request (PROVIDERS.md)
        version=Version(build=EXCHANGE_2016),
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
    # Protocol objects are shared per endpoint and credentials; the timeout is ours, per call site.
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
