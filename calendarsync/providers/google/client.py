"""Google API plumbing: credentials from stored tokens, one timeout, refreshed tokens persisted.

The stored token dict (``CalendarAccount.credentials`` for Google) has the keys
``access_token``, ``refresh_token``, ``expiry`` (ISO 8601 UTC or ``None``) and
``scopes`` (list). ``oauth.GrantedTokens.as_credentials()`` writes it;
``credentials_from_tokens`` reads it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urljoin

import google_auth_httplib2  # type: ignore[import-untyped]
import httplib2  # type: ignore[import-untyped]
from django.conf import settings
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.http import BatchHttpRequest

logger = logging.getLogger(__name__)

TokenCallback = Callable[[dict[str, Any]], None]

# The Calendar API lives under this path of GOOGLE_API_BASE_URL (as on www.googleapis.com).
CALENDAR_API_PATH = "calendar/v3/"
USERINFO_PATH = "oauth2/v3/userinfo"


def calendar_api_endpoint() -> str:
    return urljoin(settings.GOOGLE_API_BASE_URL, CALENDAR_API_PATH)


def userinfo_uri() -> str:
    return urljoin(settings.GOOGLE_API_BASE_URL, USERINFO_PATH)


def _parse_expiry(raw: object) -> datetime | None:
    if not raw:
        return None
    try:
        parsed = datetime.fromisoformat(str(raw))
    except ValueError:
        return None  # unknown expiry: google-auth refreshes on the first 401 instead
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC)
    # google-auth compares expiry against its own naive-UTC clock.
    return parsed.replace(tzinfo=None)


def format_expiry(expiry: datetime | None) -> str | None:
    """Store expiries as ISO 8601 in UTC; google-auth hands us naive UTC datetimes."""
    if expiry is None:
        return None
    if expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=UTC)
    return expiry.astimezone(UTC).isoformat()


def credentials_from_tokens(tokens: Mapping[str, Any]) -> Credentials:
    scopes = tokens.get("scopes") or None
    return Credentials(  # type: ignore[no-untyped-call]
        token=tokens.get("access_token"),
        refresh_token=tokens.get("refresh_token"),
        token_uri=settings.GOOGLE_TOKEN_URI,
        client_id=settings.GOOGLE_CLIENT_ID,
        client_secret=settings.GOOGLE_CLIENT_SECRET,
        scopes=list(scopes) if scopes else None,
        expiry=_parse_expiry(tokens.get("expiry")),
    )


def tokens_from_credentials(credentials: Credentials, previous: Mapping[str, Any]) -> dict[str, Any]:
    tokens = dict(previous)
    tokens["access_token"] = credentials.token
    # Google usually keeps the refresh token on refresh; keep ours unless a new one came back.
    if credentials.refresh_token:
        tokens["refresh_token"] = credentials.refresh_token
    tokens["expiry"] = format_expiry(credentials.expiry)
    return tokens


def build_http(credentials: Credentials | None = None) -> Any:
    """One outgoing timeout for every call (CALSYNC_HTTP_TIMEOUT_SECONDS)."""
    http = httplib2.Http(timeout=settings.CALSYNC_HTTP_TIMEOUT_SECONDS)
    if credentials is None:
        return http
    return google_auth_httplib2.AuthorizedHttp(credentials, http=http)


def build_calendar_service(http: Any) -> Any:
    # The discovery document ships with the package: no network access at build time.
    return build(
        "calendar",
        "v3",
        http=http,
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": calendar_api_endpoint()},
    )


@lru_cache(maxsize=8)
def _shared_resources(api_endpoint: str) -> tuple[Any, Any]:
    """One parsed Calendar service per process and endpoint (building one costs ~3 ms).

    Its requests are always executed with the account's own authorized ``http``, so the
    shared service holds no credentials; ``api_endpoint`` is the cache key so tests that
    point the settings elsewhere get their own service.
    """
    service = build_calendar_service(build_http())
    return service.events(), service.calendarList()


class GoogleClient:
    """A Calendar API service bound to one account's credentials.

    Every call goes through ``execute``/``execute_batch`` so a token refreshed by
    google-auth (on expiry or a 401) is reported to ``on_tokens_refreshed`` at once.
    """

    def __init__(
        self, tokens: Mapping[str, Any], *, on_tokens_refreshed: TokenCallback | None = None
    ) -> None:
        self._tokens = dict(tokens)
        self._on_tokens_refreshed = on_tokens_refreshed
        self.credentials = credentials_from_tokens(tokens)
        self.http = build_http(self.credentials)
        self.events, self.calendar_list = _shared_resources(calendar_api_endpoint())

    def execute(self, request: Any) -> Any:
        """Run one API request (no library retries: the adapter retries, honouring Retry-After).

        Always with this account's authorized ``http``: the request was built by the shared service.
        """
        token_before = self.credentials.token
        try:
            return request.execute(http=self.http, num_retries=0)
        finally:
            self._report_refresh(token_before)

    def new_batch(self) -> Any:
        # Batches do not follow api_endpoint: give the batch URI explicitly.
        return BatchHttpRequest(batch_uri=settings.GOOGLE_BATCH_URI)

    def execute_batch(self, batch: Any) -> None:
        token_before = self.credentials.token
        try:
            batch.execute(http=self.http)
        finally:
            self._report_refresh(token_before)

    def _report_refresh(self, token_before: str | None) -> None:
        if self.credentials.token == token_before or not self.credentials.token:
            return
        self._tokens = tokens_from_credentials(self.credentials, self._tokens)
        logger.info("Google access token refreshed")
        if self._on_tokens_refreshed is not None:
            self._on_tokens_refreshed(dict(self._tokens))
