"""exchangelib failures -> our provider errors, in one place (CONVENTIONS, habit 3).

EWS response codes: https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/responsecode
Throttling: https://learn.microsoft.com/en-us/exchange/client-developer/exchange-web-services/ews-throttling-in-exchange
"""

from __future__ import annotations

import enum
import logging

import requests
from exchangelib import errors as ews

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
from calendarsync.providers.exchange.client import HttpStatusError, NotAnEwsEndpoint, PasswordRefused
from calendarsync.providers.exchange.network import blocked_address_in
from calendarsync.providers.redaction import error_code, redact
from calendarsync.providers.retry import parse_retry_after

logger = logging.getLogger(__name__)

# Everything the client stack raises for a failed call.
EXCHANGE_FAILURES: tuple[type[BaseException], ...] = (
    ews.EWSError,  # every EWS response code, SOAP faults, transport errors
    requests.RequestException,
    OSError,
)

# Response codes that mean "try again later" (besides ErrorServerBusy, which says how long).
TRANSIENT_CODES: tuple[type[BaseException], ...] = (
    ews.ErrorTimeoutExpired,  # exchangelib's name for timeouts, resets and refused connections
    ews.ErrorInternalServerTransientError,
    ews.ErrorInternalServerError,
    ews.ErrorMailboxStoreUnavailable,
    ews.ErrorMailboxMoveInProgress,
    ews.ErrorTooManyObjectsOpened,
    ews.ErrorExceededConnectionCount,
    ews.ErrorConnectionFailed,
    ews.ErrorBatchProcessingStopped,
)
DENIED_CODES: tuple[type[BaseException], ...] = (
    ews.ErrorAccessDenied,
    ews.ErrorFolderNotFound,  # the calendar folder is not visible to this login
    ews.ErrorNonExistentMailbox,
    ews.ErrorImpersonateUserDenied,
    ews.ErrorNoPublicFolderReplicaAvailable,
)
INVALID_ITEM_CODES: tuple[type[BaseException], ...] = (
    ews.ErrorCalendarEndDateIsEarlierThanStartDate,
    ews.ErrorCalendarDurationIsTooLong,
    ews.ErrorInvalidValueForProperty,
    ews.ErrorInvalidPropertySet,
    ews.ErrorInvalidRecipients,
    ews.ErrorCalendarInvalidRecurrence,
    ews.ErrorUnsupportedRecurrence,
    ews.ErrorRequiredPropertyMissing,
    ews.ErrorSchemaValidation,
    ews.ErrorItemSave,
)


class Operation(enum.Enum):
    """What a call was doing: the same code means different things per operation."""

    LIST = "list"
    CHANGES = "changes"
    READ = "read"
    CREATE = "create"
    WRITE = "write"


class AppPasswordRequired(AuthRevoked):
    """The account uses two-factor sign-in: it takes an app password, not the normal password (C5)."""


class ServerUnusable(ProviderError):
    """The server URL does not lead to Exchange Web Services (wrong address, or not EWS at all)."""


class AddressNotAllowed(ServerUnusable):
    """The server's address is not public and not in EXCHANGE_ALLOWED_NETWORKS: CalSync may not go there."""


def map_exchange_error(exc: BaseException, operation: Operation = Operation.READ) -> ProviderError:
    """The one place an exchangelib failure becomes one of our provider errors.

    The code we keep is the EWS ResponseCode (exchangelib's class name), the HTTP status, or the
    name of the connection failure; the server's message text goes to the debug log only.
    """
    if isinstance(exc, ProviderError):
        return exc
    error = _mapped(exc, operation)
    logger.debug("Exchange failure %s: %s", type(exc).__name__, redact(exc))
    if error.code is None:
        error.code = error_code(type(exc).__name__)
    return error


def _mapped(exc: BaseException, operation: Operation) -> ProviderError:
    if blocked_address_in(exc) is not None:
        return AddressNotAllowed("CalSync may not connect to the Exchange server at this address")
    name = type(exc).__name__
    if isinstance(exc, PasswordRefused):
        if exc.two_factor:
            return AppPasswordRequired("Exchange wants an app password: the account uses two-factor sign-in")
        return AuthRevoked("Exchange refused the e-mail address and password")
    if isinstance(exc, ews.UnauthorizedError):
        return AuthRevoked("Exchange refused the e-mail address and password")
    if isinstance(exc, ews.ErrorServerBusy):
        return TransientError("Exchange is busy (ErrorServerBusy)", retry_after=exc.back_off)
    if isinstance(exc, HttpStatusError):
        if exc.status in (404, 405, 410):
            return ServerUnusable(
                f"No Exchange Web Services at this address (HTTP {exc.status})", code=exc.status
            )
        return TransientError(
            f"Exchange answered HTTP {exc.status}",
            retry_after=parse_retry_after(exc.retry_after),
            code=exc.status,
        )
    if isinstance(exc, NotAnEwsEndpoint | ews.RedirectError | ews.SOAPError | ews.MalformedResponseError):
        return ServerUnusable(f"This address does not answer like Exchange Web Services ({name})")
    if isinstance(exc, ews.ErrorInvalidSyncStateData):
        return CursorExpired("Exchange no longer accepts the sync state")
    if isinstance(
        exc,
        ews.ErrorIrresolvableConflict
        | ews.ErrorInvalidChangeKey
        | ews.ErrorChangeKeyRequiredForWriteOperations,
    ):
        return Conflict(f"The Exchange item changed since it was read ({name})")
    if isinstance(
        exc,
        ews.ErrorItemNotFound
        | ews.ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange
        | ews.ErrorInvalidIdMalformed,
    ):
        return NotFound(f"The Exchange item does not exist ({name})")
    if isinstance(exc, ews.ErrorAccessDenied) and operation in (Operation.READ, Operation.WRITE):
        # R16: reading or changing one item was refused: that item's error, the rest goes on.
        return InvalidEvent(f"Exchange refused access to this item ({name})")
    if isinstance(exc, DENIED_CODES):
        return InsufficientPermissions(f"Exchange denied access to the calendar ({name})")
    if isinstance(exc, INVALID_ITEM_CODES) and operation in (Operation.CREATE, Operation.WRITE):
        return InvalidEvent(f"Exchange refused the event ({name}: {redact(exc)})")
    if isinstance(exc, TRANSIENT_CODES):
        return TransientError(f"Connection to Exchange failed ({name})")
    if type(exc) is ews.TransportError:
        # exchangelib raises the bare class for TLS failures: retrying the same thing will not help.
        return ServerUnusable(f"Could not talk to the Exchange server ({name})")
    if isinstance(exc, requests.Timeout | TimeoutError):
        return TransientError("Exchange did not answer in time")
    if isinstance(exc, requests.RequestException | OSError):
        return TransientError(f"Connection to Exchange failed ({name})")
    return ProviderError(f"Unexpected Exchange failure ({name})")
