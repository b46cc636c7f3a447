"""Microsoft Graph plumbing: one HTTP session with a timeout, stored tokens, refresh through msal.

The stored token dict (``CalendarAccount.credentials`` for Microsoft 365) has the keys
``access_token``, ``refresh_token``, ``expiry`` (ISO 8601 UTC or ``None``) and ``scopes``
(list), like Google's. ``oauth.GrantedTokens.as_credentials()`` writes it. Microsoft rotates
refresh tokens: every refresh stores the new one through ``on_tokens_refreshed``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import requests
from django.conf import settings

from calendarsync.providers.microsoft.common import graph_base_url, parse_expiry
from calendarsync.providers.microsoft.errors import GraphFailure, TokenRefreshFailed
from calendarsync.providers.microsoft.oauth import refresh_access_token

logger = logging.getLogger(__name__)

TokenCallback = Callable[[dict[str, Any]], None]

# Refresh this long before the access token's expiry, so a call never starts with a dying token.
EXPIRY_MARGIN = timedelta(minutes=2)
JSON_BATCH_PATH = "$batch"


def graph_path(*segments: str, query: Mapping[str, str] | None = None) -> str:
    """A path relative to the Graph version root, e.g. ``me/events/{id}?...`` (ids quoted)."""
    path = "/".join(quote(segment, safe="") for segment in segments)
    if query:
        # %20 for spaces: OData filters read '+' literally.
        path += "?" + urlencode(dict(query), quote_via=quote, safe="$(),'")
    return path


def _body(response: requests.Response) -> object:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


class MicrosoftClient:
    """Graph requests for one account: bearer token, one refresh-and-retry on 401, typed failures.

    ``request`` returns the parsed JSON of a 2xx answer and raises ``GraphFailure`` for any
    other status (network errors raise ``requests`` exceptions, a failed refresh
    ``TokenRefreshFailed``); the adapter maps them all in ``errors.map_graph_error``.
    """

    def __init__(
        self,
        tokens: Mapping[str, Any],
        *,
        on_tokens_refreshed: TokenCallback | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self._tokens = dict(tokens)
        self._on_tokens_refreshed = on_tokens_refreshed
        self.base_url = graph_base_url()
        self.timeout = float(settings.CALSYNC_HTTP_TIMEOUT_SECONDS)
        self.session = session or requests.Session()
        # No redirects, retries or proxies-from-headers surprises: the adapter owns retrying.
        self.session.headers.update({"Accept": "application/json"})

    @property
    def access_token(self) -> str:
        return str(self._tokens.get("access_token") or "")

    def _expired(self) -> bool:
        expiry = parse_expiry(self._tokens.get("expiry"))
        return expiry is not None and datetime.now(UTC) >= expiry - EXPIRY_MARGIN

    def url(self, path: str) -> str:
        """The absolute URL of a path relative to the Graph root; absolute links must stay on it."""
        if path.startswith(("http://", "https://")):
            if not path.startswith(self.base_url):
                # A nextLink/deltaLink elsewhere (tampered or stale cursor) never gets our token.
                raise GraphFailure(410, "syncStateNotFound", "link outside the Graph base URL")
            return path
        return self.base_url + path.lstrip("/")

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """One Graph call; an expired token is refreshed first, a 401 refreshes once and repeats."""
        if self._expired():
            self.refresh()
        url = self.url(path)
        response = self._send(method, url, body, headers)
        if response.status_code == 401 and self._tokens.get("refresh_token"):
            self.refresh()
            response = self._send(method, url, body, headers)
        payload = _body(response)
        if response.status_code >= 300:
            raise GraphFailure.from_parts(response.status_code, response.headers, payload)
        if response.content and payload is None:
            raise ValueError("Graph answered with something other than JSON")
        return payload

    def _send(
        self, method: str, url: str, body: Mapping[str, Any] | None, headers: Mapping[str, str] | None
    ) -> requests.Response:
        all_headers = {"Authorization": f"Bearer {self.access_token}", **(headers or {})}
        data = None
        if body is not None:
            all_headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        return self.session.request(
            method, url, data=data, headers=all_headers, timeout=self.timeout, allow_redirects=False
        )

    def refresh(self) -> None:
        """New tokens from the refresh token (msal), reported to ``on_tokens_refreshed`` at once."""
        refresh_token = str(self._tokens.get("refresh_token") or "")
        if not refresh_token:
            raise TokenRefreshFailed("invalid_grant", "no refresh token stored")
        fresh = refresh_access_token(refresh_token)
        self._tokens.update(fresh.as_credentials(previous=self._tokens))
        logger.info("Microsoft access token refreshed")
        if self._on_tokens_refreshed is not None:
            self._on_tokens_refreshed(dict(self._tokens))
