"""Microsoft Graph and identity-platform failures -> our provider errors, in one place (habit 3).

Graph error responses: https://learn.microsoft.com/en-us/graph/errors
Throttling: https://learn.microsoft.com/en-us/graph/throttling
Token errors: https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes
"""

from __future__ import annotations

import enum
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
from calendarsync.providers.retry import parse_retry_after

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
        status = exc.status
        message = f"Microsoft Graph answered {status}" + (f" ({exc.code})" if exc.code else "")
        if status == 401:
            return AuthRevoked(message)
        if status == 403:
            if operation in (Operation.READ, Operation.WRITE):
                # R16: reading or changing one event was refused (e.g. ErrorAccessDenied on an
                # event the user may not change): that item's error, the rest goes on. Listing
                # or creating in the calendar refused concerns the whole account (C4).
                return InvalidEvent(message)
            return InsufficientPermissions(message)
        if status in (429, 500, 502, 503, 504):
            return TransientError(message, retry_after=exc.retry_after)
        if status == 400 and exc.code == "ErrorDuplicateTransactionId" and operation is Operation.CREATE:
            return TransactionIdUsed(message)
        if status == 400 and operation in (Operation.CREATE, Operation.WRITE):
            return InvalidEvent(message)
        if status == 404:
            return NotFound(message)
        if status in (409, 412):
            return Conflict(message)
        if status == 410:
            return CursorExpired(message) if operation is Operation.CHANGES else NotFound(message)
        return ProviderError(message)
    if isinstance(exc, TokenRefreshFailed):
        if exc.error in DEAD_GRANT_ERRORS:
            return AuthRevoked(f"Microsoft refused the refresh token ({exc.error})")
        if exc.error in ("temporarily_unavailable", "server_error"):
            return TransientError(f"The Microsoft sign-in service is unavailable ({exc.error})")
        return AuthRevoked(f"The Microsoft access token could not be refreshed ({exc.error[:60]})")
    if isinstance(exc, requests.exceptions.InvalidJSONError):
        return TransientError("Microsoft Graph sent an unreadable response")
    if isinstance(exc, requests.Timeout):
        return TransientError("Microsoft Graph did not answer in time")
    if isinstance(exc, requests.RequestException):
        return TransientError(f"Connection to Microsoft failed ({type(exc).__name__})")
    if isinstance(exc, ValueError):
        return TransientError("Microsoft Graph sent an unreadable response")
    return ProviderError(f"Unexpected Microsoft Graph failure ({type(exc).__name__})")
