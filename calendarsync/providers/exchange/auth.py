"""Which sign-in an Exchange server takes, NTLM or Basic: one request without credentials, read its 401.

Exchange Server on-premises answers EWS through IIS. A request without credentials gets a 401
with one ``WWW-Authenticate`` challenge per scheme the EWS virtual directory allows: ``Negotiate``
and ``NTLM`` (Windows authentication, the default) and, if the admin turned it on, ``Basic``.
https://learn.microsoft.com/en-us/exchange/architecture/client-access/virtual-directory-management
https://www.rfc-editor.org/rfc/rfc9110#section-11.6.1 (WWW-Authenticate)

``probe_auth_type`` sends that one request (no credentials: nothing secret leaves CalSync) through
the same network guard as every Exchange request (``network.GuardedHTTPAdapter``), without
following redirects, and chooses NTLM when the server offers it (under ``NTLM``, or ``Negotiate``,
which takes NTLM tokens too), else Basic. exchangelib's own guess (``transport.get_service_authtype``)
would try one request per API version and prefer Digest; ours is one request and says why it failed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

import requests
from django.conf import settings
from exchangelib.util import is_xml

from calendarsync.providers.exchange.client import AUTH_TYPES, BASIC, NTLM, HttpStatusError, NotAnEwsEndpoint
from calendarsync.providers.exchange.errors import ServerUnusable, map_exchange_error
from calendarsync.providers.exchange.network import GuardedHTTPAdapter

logger = logging.getLogger(__name__)

AUTO = "auto"
# What the connect page may ask for: "auto" probes the server, the others are the user's override.
AUTH_CHOICES = (AUTO, *AUTH_TYPES)
# Schemes that carry NTLM: IIS's Negotiate takes raw NTLM tokens as well (requests_ntlm sends them).
NTLM_SCHEMES = frozenset({"ntlm", "negotiate"})
# An EWS request without credentials: any valid SOAP body will do, the answer is the 401.
PROBE_BODY = b"""<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"
 xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
<s:Header><t:RequestServerVersion Version="Exchange2016"/></s:Header>
<s:Body><m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape>
<m:FolderIds><t:DistinguishedFolderId Id="calendar"/></m:FolderIds></m:GetFolder></s:Body>
</s:Envelope>"""


class NoSupportedSignIn(ServerUnusable):
    """The server asks for a sign-in CalSync does not speak (Kerberos only, OAuth, Digest...)."""


def _elements(value: str) -> list[str]:
    """A header value split at the commas outside quoted strings."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def offered_schemes(values: Iterable[str]) -> frozenset[str]:
    """The auth schemes (lower case) in ``WWW-Authenticate`` header values.

    A value may hold several challenges (``Negotiate, NTLM``) and parameters (``Basic
    realm="a, b", charset="UTF-8"``): an element starting with a token followed by ``=`` is a
    parameter; any other starts with a scheme (``NTLM TlRMTVNT...==`` has its token68 after it).
    """
    schemes: set[str] = set()
    for value in values:
        for element in _elements(value):
            token = re.split(r"[\s=]", element, maxsplit=1)[0]
            if token and not element[len(token) :].lstrip().startswith("="):
                schemes.add(token.lower())
    return frozenset(schemes)


def choose_auth_type(schemes: frozenset[str]) -> str:
    """NTLM when offered, else Basic; ``NoSupportedSignIn`` when the server takes neither."""
    if schemes & NTLM_SCHEMES:
        return NTLM
    if "basic" in schemes:
        return BASIC
    raise NoSupportedSignIn(
        "The Exchange server offers no sign-in CalSync supports (NTLM or Basic)", code="auth-unsupported"
    )


def _challenges(response: requests.Response) -> list[str]:
    """Every WWW-Authenticate header of the answer, kept apart (requests joins them with commas)."""
    raw = getattr(response.raw, "headers", None)
    if raw is not None and hasattr(raw, "getlist"):
        return [str(value) for value in raw.getlist("WWW-Authenticate")]
    value = response.headers.get("WWW-Authenticate")
    return [value] if value else []


def probe_auth_type(url: str) -> str:
    """ "ntlm" or "basic" for the EWS endpoint ``url``, from one request without credentials.

    Raises a ``ProviderError`` as the connect page expects it: ``AddressNotAllowed`` (the network
    guard refused the address), ``ServerUnusable`` (no EWS there: a 404, a web page, a redirect, a
    TLS failure; ``NoSupportedSignIn``), ``TransientError`` (unreachable, busy).
    """
    adapter = GuardedHTTPAdapter(max_retries=0)
    with requests.Session() as session:
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        try:
            # https://learn.microsoft.com/en-us/exchange/client-developer/exchange-web-services/how-to-authenticate-an-ews-application-by-using-ntlm
            response = session.post(
                url,
                data=PROBE_BODY,
                headers={"Content-Type": "text/xml; charset=utf-8"},
                timeout=settings.CALSYNC_HTTP_TIMEOUT_SECONDS,
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as exc:
            raise ServerUnusable("Could not talk to the Exchange server (SSLError)") from exc
        except (requests.RequestException, OSError) as exc:
            raise map_exchange_error(exc) from exc
        with response:
            return _auth_type_from(response)


def _auth_type_from(response: requests.Response) -> str:
    status = int(response.status_code)
    if status == 401:
        schemes = offered_schemes(_challenges(response))
        logger.debug("Exchange offers sign-in schemes %s", sorted(schemes))
        return choose_auth_type(schemes)
    if status == 200:
        if not is_xml(response.content or b""):
            raise map_exchange_error(NotAnEwsEndpoint("the server answered with a page, not with SOAP"))
        return BASIC  # asks for no sign-in: the credentials go to this (checked) host only, unused
    if 300 <= status < 400:
        raise ServerUnusable(f"The server redirects EWS requests (HTTP {status})", code=status)
    if status in (404, 405, 410, 429) or status >= 500:
        raise map_exchange_error(HttpStatusError(status, retry_after=response.headers.get("Retry-After")))
    raise ServerUnusable(f"The server answered HTTP {status} where Exchange asks for a sign-in", code=status)


def check_auth_type(auth_type: str) -> str:
    """The connect page's choice, checked: "auto", "ntlm" or "basic"."""
    if auth_type not in AUTH_CHOICES:
        raise ValueError(f"auth_type must be one of {AUTH_CHOICES}, not {auth_type!r}")
    return auth_type


__all__ = [
    "AUTH_CHOICES",
    "AUTO",
    "BASIC",
    "NTLM",
    "NoSupportedSignIn",
    "check_auth_type",
    "choose_auth_type",
    "offered_schemes",
    "probe_auth_type",
]
