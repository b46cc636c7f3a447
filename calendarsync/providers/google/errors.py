"""Google client failures -> our provider errors, in one place (CONVENTIONS, habit 3).

Status meanings: https://developers.google.com/calendar/api/guides/errors
"""

from __future__ import annotations

import enum
import http.client
import json
from collections.abc import Mapping

import httplib2  # type: ignore[import-untyped]
from google.auth.exceptions import GoogleAuthError, RefreshError
from google.auth.exceptions import TransportError as AuthTransportError
from googleapiclient.errors import Error as GoogleApiClientError
from googleapiclient.errors import HttpError

from calendarsync.providers.base import (
    AuthRevoked,
    Conflict,
    CursorExpired,
    InsufficientPermissions,
    InvalidEvent,
    NotFound,
    ProviderError,
    TransientError,
)
from calendarsync.providers.retry import parse_retry_after

RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"})
REVOKED_GRANT_ERRORS = frozenset({"invalid_grant", "unauthorized_client", "invalid_client"})
# 403 reasons that concern the whole calendar or grant (C4), whatever the call was doing.
ACCOUNT_REFUSAL_REASONS = frozenset(
    {
        "insufficientPermissions",
        "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
        "requiredAccessLevel",
        "notACalendarUser",
        "accessNotConfigured",
        "SERVICE_DISABLED",
    }
)
# 403 reasons that concern one event only (R16), e.g. a change only the organizer may make.
EVENT_REFUSAL_REASONS = frozenset({"forbiddenForNonOrganizer"})

# Everything the client stack raises for a failed call.
GOOGLE_FAILURES: tuple[type[BaseException], ...] = (
    GoogleApiClientError,  # HttpError, BatchError
    GoogleAuthError,  # RefreshError, TransportError
    httplib2.HttpLib2Error,
    http.client.HTTPException,
    OSError,  # timeouts, resets, refused connections
)


class Operation(enum.Enum):
    """What a call was doing: the same status means different things per operation."""

    LIST = "list"
    CHANGES = "changes"
    READ = "read"
    CREATE = "create"
    WRITE = "write"


class AlreadyExists(Conflict):
    """409 on insert: an event with our idempotent id exists already (adopt it)."""


def _error_reasons(content: bytes) -> set[str]:
    try:
        data = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return set()
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return {error} if isinstance(error, str) else set()
    reasons: set[str] = set()
    for key in ("errors", "details"):
        for entry in error.get(key) or ():
            if isinstance(entry, dict) and isinstance(entry.get("reason"), str):
                reasons.add(entry["reason"])
    if isinstance(error.get("status"), str):
        reasons.add(error["status"])
    return reasons


def _retry_after_of(exc: HttpError) -> float | None:
    # The client library ignores Retry-After; the header is on the httplib2 response.
    resp = getattr(exc, "resp", None)
    header = resp.get("retry-after") if isinstance(resp, Mapping) else None
    return parse_retry_after(str(header) if header is not None else None)


def _refuses_one_event(reasons: set[str], operation: Operation) -> bool:
    """A 403 about one event: a reason saying so, or a refused read or write of one event that
    names no account-level reason (listing and creating speak for the calendar: C4)."""
    if reasons & ACCOUNT_REFUSAL_REASONS:
        return False
    return bool(reasons & EVENT_REFUSAL_REASONS) or operation in (Operation.READ, Operation.WRITE)


def map_google_error(exc: BaseException, operation: Operation = Operation.READ) -> ProviderError:
    """The one place a Google client failure becomes one of our provider errors."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, HttpError):
        status = int(exc.resp.status)
        reasons = _error_reasons(exc.content)
        detail = ", ".join(sorted(reasons)) or str(getattr(exc.resp, "reason", "") or "")
        message = f"Google Calendar answered {status}" + (f" ({detail})" if detail else "")
        if status == 401:
            return AuthRevoked(message)
        if status == 403:
            if reasons & RATE_LIMIT_REASONS:
                return TransientError(message, retry_after=_retry_after_of(exc))
            if _refuses_one_event(reasons, operation):
                # R16: that item's error; the account goes on syncing the rest.
                return InvalidEvent(message)
            return InsufficientPermissions(message)
        if status == 429 or status >= 500:
            return TransientError(message, retry_after=_retry_after_of(exc))
        if status == 400 and operation in (Operation.CREATE, Operation.WRITE):
            return InvalidEvent(message)
        if status == 404:
            return NotFound(message)
        if status == 409:
            return AlreadyExists(message) if operation is Operation.CREATE else Conflict(message)
        if status == 410:
            return CursorExpired(message) if operation is Operation.CHANGES else NotFound(message)
        if status == 412:
            return Conflict(message)
        return ProviderError(message)
    if isinstance(exc, RefreshError):
        data = exc.args[1] if len(exc.args) > 1 else None
        error = data.get("error") if isinstance(data, Mapping) else None
        if error in REVOKED_GRANT_ERRORS:
            return AuthRevoked(f"Google refused the refresh token ({error})")
        if exc.retryable:
            return TransientError("Google token endpoint is unavailable")
        return AuthRevoked("Google access token could not be refreshed")
    if isinstance(exc, AuthTransportError):
        return TransientError("Google token endpoint could not be reached")
    if isinstance(exc, TimeoutError):
        return TransientError("Google Calendar did not answer in time")
    if isinstance(exc, ConnectionError | http.client.HTTPException | httplib2.HttpLib2Error | OSError):
        return TransientError(f"Connection to Google Calendar failed ({type(exc).__name__})")
    if isinstance(exc, GoogleApiClientError):  # BatchError: a garbled batch response
        return TransientError(f"Google Calendar sent an unreadable response ({type(exc).__name__})")
    return ProviderError(f"Unexpected Google Calendar failure ({type(exc).__name__})")
