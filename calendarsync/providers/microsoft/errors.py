"""Microsoft Graph and identity-platform failures -> our provider errors, in one place (habit 3).

Graph error responses: https://learn.microsoft.com/en-us/graph/errors
Throttling: https://learn.microsoft.com/en-us/graph/throttling
Token errors: https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping

import requests

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

# Token-endpoint errors that mean the grant is dead: the user must sign in again (R9).
DEAD_GRANT_ERRORS = frozenset(
    {"invalid_grant", "interaction_required", "invalid_client", "unauthorized_client", "consent_required"}
)


class Operation(enum.Enum):
    """What a call was doing: the same status means different things per operation."""

    LIST = "list"
    CHANGES = "changes"
    READ = "read"
    CREATE = "create"
    WRITE = "write"


class GraphFailure(Exception):
    """A non-2xx answer from Graph (a whole request, or one request of a JSON batch)."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after

    @classmethod
    def from_parts(cls, status: int, headers: Mapping[str, str], body: object) -> GraphFailure:
        error = body.get("error") if isinstance(body, Mapping) else None
        code = str(error.get("code") or "") if isinstance(error, Mapping) else ""
        message = str(error.get("message") or "") if isinstance(error, Mapping) else ""
        retry_after = next((value for key, value in headers.items() if key.lower() == "retry-after"), None)
        return cls(status, code, message[:200], parse_retry_after(retry_after))


class TokenRefreshFailed(Exception):
    """msal could not refresh the access token (the token endpoint's ``error`` and description)."""

    def __init__(self, error: str, description: str = "") -> None:
        super().__init__(error)
        self.error = error
        self.description = description


class TransactionIdUsed(Conflict):
    """ErrorDuplicateTransactionId on create: the key made an event before (adopt it, if it still lives)."""


# Everything the client stack raises for a failed call.
GRAPH_FAILURES: tuple[type[BaseException], ...] = (
    GraphFailure,
    TokenRefreshFailed,
    requests.RequestException,  # timeouts, resets, refused connections
    ValueError,  # an unreadable (non-JSON) answer
    ProviderError,
)


def map_graph_error(exc: BaseException, operation: Operation = Operation.READ) -> ProviderError:
    """The one place a Graph or token failure becomes one of our provider errors."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, GraphFailure):
        return _map_graph_failure(exc, operation)
    if isinstance(exc, TokenRefreshFailed):
        logger.debug("Microsoft token refresh failed: %s %s", redact(exc.error), redact(exc.description))
        message = f"Microsoft refused the refresh token ({exc.error[:60]})"
        if exc.error in DEAD_GRANT_ERRORS:
            return AuthRevoked(message, code=exc.error)
        if exc.error in ("temporarily_unavailable", "server_error"):
            return TransientError(
                f"The Microsoft sign-in service is unavailable ({exc.error})", code=exc.error
            )
        return AuthRevoked(message, code=exc.error)
    name = type(exc).__name__
    if isinstance(exc, requests.exceptions.InvalidJSONError):
        return TransientError("Microsoft Graph sent an unreadable response", code=name)
    if isinstance(exc, requests.Timeout):
        return TransientError("Microsoft Graph did not answer in time", code=name)
    if isinstance(exc, requests.RequestException):
        return TransientError(f"Connection to Microsoft failed ({name})", code=name)
    if isinstance(exc, ValueError):
        return TransientError("Microsoft Graph sent an unreadable response", code=name)
    return ProviderError(f"Unexpected Microsoft Graph failure ({name})", code=name)


def _map_graph_failure(exc: GraphFailure, operation: Operation) -> ProviderError:
    """A Graph error answer: the status and error.code decide; error.code (or the status) is the
    code we keep, error.message goes to the debug log only."""
    status = exc.status
    code: str | int = error_code(exc.code) or status
    message = f"Microsoft Graph answered {status}" + (f" ({exc.code})" if exc.code else "")
    logger.debug("Microsoft Graph answered %s %s: %s", status, redact(exc.code), redact(exc.message))
    if status == 401:
        return AuthRevoked(message, code=code)
    if status == 403:
        if operation in (Operation.READ, Operation.WRITE):
            # R16: reading or changing one event was refused (e.g. ErrorAccessDenied on an
            # event the user may not change): that item's error, the rest goes on. Listing
            # or creating in the calendar refused concerns the whole account (C4).
            return InvalidEvent(message, code=code)
        return InsufficientPermissions(message, code=code)
    if status in (429, 500, 502, 503, 504):
        return TransientError(message, retry_after=exc.retry_after, code=code)
    if status == 400 and exc.code == "ErrorDuplicateTransactionId" and operation is Operation.CREATE:
        return TransactionIdUsed(message, code=code)
    if status == 400 and operation in (Operation.CREATE, Operation.WRITE):
        return InvalidEvent(message, code=code)
    if status == 404:
        return NotFound(message, code=code)
    if status in (409, 412):
        return Conflict(message, code=code)
    if status == 410:
        return (
            CursorExpired(message, code=code)
            if operation is Operation.CHANGES
            else NotFound(message, code=code)
        )
    return ProviderError(message, code=code)
