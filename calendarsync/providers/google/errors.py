"""Google client failures -> our provider errors, in one place (CONVENTIONS, habit 3).

Status meanings: https://developers.google.com/calendar/api/guides/errors
"""

from __future__ import annotations

import enum
import http.client
import json
import logging
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
from calendarsync.providers.redaction import error_code, redact
from calendarsync.providers.retry import parse_retry_after

logger = logging.getLogger(__name__)

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


def _error_reasons(content: bytes) -> list[str]:
    """The reasons of a Google error body, most specific first (errors[].reason, then status)."""
    try:
        data = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return []
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return [error] if isinstance(error, str) else []
    reasons: list[str] = []
    for key in ("errors", "details"):
        for entry in error.get(key) or ():
            if isinstance(entry, dict) and isinstance(entry.get("reason"), str):
                reasons.append(entry["reason"])
    if isinstance(error.get("status"), str):
        reasons.append(error["status"])
    return list(dict.fromkeys(reasons))


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


def _map_http_error(exc: HttpError, operation: Operation) -> ProviderError:
    """An HTTP error answer: the status and the body's reasons decide; the first reason (or the
    status) is the code we keep, the body itself goes to the debug log only."""
    status = int(exc.resp.status)
    ordered = _error_reasons(exc.content)
    reasons = set(ordered)
    code: str | int = next((reason for reason in ordered if error_code(reason)), status)
    message = f"Google Calendar answered {status}" + (f" ({', '.join(ordered)})" if ordered else "")
    logger.debug("Google Calendar answered %s: %s", status, redact(exc.content.decode("utf-8", "replace")))
    if status == 401:
        return AuthRevoked(message, code=code)
    if status == 403:
        if reasons & RATE_LIMIT_REASONS:
            return TransientError(message, retry_after=_retry_after_of(exc), code=code)
        if _refuses_one_event(reasons, operation):
            # R16: that item's error; the account goes on syncing the rest.
            return InvalidEvent(message, code=code)
        return InsufficientPermissions(message, code=code)
    if status == 429 or status >= 500:
        return TransientError(message, retry_after=_retry_after_of(exc), code=code)
    if status == 400 and operation in (Operation.CREATE, Operation.WRITE):
        return InvalidEvent(message, code=code)
    if status == 404:
        return NotFound(message, code=code)
    if status == 409:
        return (
            AlreadyExists(message, code=code)
            if operation is Operation.CREATE
            else Conflict(message, code=code)
        )
    if status == 410:
        return (
            CursorExpired(message, code=code)
            if operation is Operation.CHANGES
            else NotFound(message, code=code)
        )
    if status == 412:
        return Conflict(message, code=code)
    return ProviderError(message, code=code)


def map_google_error(exc: BaseException, operation: Operation = Operation.READ) -> ProviderError:
    """The one place a Google client failure becomes one of our provider errors."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, HttpError):
        return _map_http_error(exc, operation)
    if isinstance(exc, RefreshError):
        data = exc.args[1] if len(exc.args) > 1 else None
        error = data.get("error") if isinstance(data, Mapping) else None
        logger.debug("Google token refresh failed: %s", redact(data if data is not None else exc))
        if error in REVOKED_GRANT_ERRORS:
            return AuthRevoked(f"Google refused the refresh token ({error})", code=error)
        if exc.retryable:
            return TransientError("Google token endpoint is unavailable", code=error)
        return AuthRevoked("Google access token could not be refreshed", code=error)
    name = type(exc).__name__
    if isinstance(exc, AuthTransportError):
        return TransientError("Google token endpoint could not be reached", code=name)
    if isinstance(exc, TimeoutError):
        return TransientError("Google Calendar did not answer in time", code=name)
    if isinstance(exc, ConnectionError | http.client.HTTPException | httplib2.HttpLib2Error | OSError):
        return TransientError(f"Connection to Google Calendar failed ({name})", code=name)
    if isinstance(exc, GoogleApiClientError):  # BatchError: a garbled batch response
        return TransientError(f"Google Calendar sent an unreadable response ({name})", code=name)
    return ProviderError(f"Unexpected Google Calendar failure ({name})", code=name)
