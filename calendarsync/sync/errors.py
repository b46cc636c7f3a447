"""Provider errors -> account state and item sync status, in exactly one place (habit 3).

The engine and the runner never decide on their own what a failure means for the user: they
ask ``classify`` and store what it says. Every text stored or shown comes from our own wording
here, plus the provider's error code (``ProviderError.code``); what the provider said goes to
the log only, redacted (issue #13, finding 8).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import DatabaseError, DataError, IntegrityError, NotSupportedError, ProgrammingError

from activities.models import SyncStatus
from calendarsync.models import AccountState
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
from calendarsync.providers.redaction import error_code
from calendarsync.sync.accounts import CREDENTIALS_UNREADABLE, CredentialsUnreadable
from calendarsync.sync.reasons import Reason

RECONNECT_HELP = (
    "Access to your calendar was revoked or has expired. Reconnect the account to resume syncing."
)
PERMISSIONS_HELP = (
    "CalSync may not use your calendar. Ask your IT admin to allow third-party calendar apps, "
    "then reconnect and allow calendar access."
)
DETAIL_MAX = 500
# R16: an item the calendar refused is sent again after a wait that doubles from an hour to a
# day, or at once when the item changes; never every run.
ITEM_RETRY_FIRST = dt.timedelta(hours=1)
ITEM_RETRY_MAX = dt.timedelta(hours=24)
# Items refused for longer than this put the account in "Error" (the rest keeps syncing).
ITEM_FAILURES_ERROR_AFTER = dt.timedelta(hours=24)
# Database failures that repeat whenever the same item is saved again (the rest are transient).
PERMANENT_DATABASE_ERRORS = (DataError, IntegrityError, NotSupportedError, ProgrammingError)

# What each kind of failure is called in a run's error and an item's reason (the nearest class in
# the error's MRO wins); the provider's code follows in brackets.
SUMMARIES: dict[type[BaseException], str] = {
    CredentialsUnreadable: "CalSync can no longer read the sign-in it stored for this account",
    AuthRevoked: "The calendar refused CalSync's sign-in",
    InsufficientPermissions: "The calendar denied CalSync access",
    TransientError: "The calendar is busy or unreachable",
    CursorExpired: "The calendar no longer accepts the sync position",
    Conflict: "The event changed in the calendar meanwhile",
    NotFound: "The calendar could not find this event",
    InvalidEvent: "The calendar refused this item",
    ProviderError: "Calendar sync failed",
}
UNEXPECTED = "Calendar sync failed unexpectedly"
UNREADABLE_EVENT = "The calendar sent an event CalSync cannot read"
NOT_APPLIED = "CalSync could not apply this calendar change"
MISSING_UNREADABLE = "Missing from the calendar's listing, but could not be read"


@dataclass(frozen=True)
class ErrorOutcome:
    """What a failure means: for the account (whole run) and for the item it happened to."""

    account_state: AccountState
    account_detail: str
    item_status: SyncStatus
    item_reason: str
    # The item's reason code (D1): what its explanation says.
    item_code: Reason
    # Retry the run (the Celery task) after ``retry_after`` seconds, or at the next interval.
    retry: bool
    retry_after: float | None = None
    # The account cannot sync until the user acts: stop, keep everything (R10).
    blocks_account: bool = False


def code_suffix(code: str | int | None) -> str:
    """The code as shown after our words: ' (ErrorAccessDenied)', ' (HTTP 403)', or '' without one."""
    checked = error_code(code)
    if checked is None:
        return ""
    return f" (HTTP {checked})" if checked.isdigit() else f" ({checked})"


def with_code(text: str, code: str | int | None) -> str:
    return f"{text}{code_suffix(code)}"


def error_summary(error: BaseException) -> str:
    """Our words for ``error`` and the provider's code: what a run or an item stores about it."""
    if not isinstance(error, ProviderError):
        return f"{UNEXPECTED} ({type(error).__name__})"
    summary = next(SUMMARIES[kind] for kind in type(error).__mro__ if kind in SUMMARIES)
    return with_code(summary, error.code)


def unreadable_event_reason(code: str | None) -> str:
    """Why a change the calendar listed but CalSync could not read was skipped (R10)."""
    return with_code(UNREADABLE_EVENT, code)


def unapplied_change_reason(error: BaseException) -> str:
    """Why a calendar change that failed to apply was skipped (R10)."""
    if isinstance(error, ProviderError):
        return error_summary(error)
    return f"{NOT_APPLIED} ({type(error).__name__})"


def unconfirmed_deletion_reason(error: ProviderError) -> str:
    """R12: an event a full listing lacks could not be read to confirm its deletion."""
    return with_code(MISSING_UNREADABLE, error.code)


def classify(error: BaseException) -> ErrorOutcome:
    """The one mapping of a failure to the account's state and the item's sync status (R9, C4)."""
    code = error.code if isinstance(error, ProviderError) else None
    if isinstance(error, AuthRevoked):
        return ErrorOutcome(
            AccountState.NEEDS_RECONNECT,
            CREDENTIALS_UNREADABLE if isinstance(error, CredentialsUnreadable) else RECONNECT_HELP,
            SyncStatus.PENDING,
            "Waiting for the calendar account to be reconnected",
            Reason.NEEDS_RECONNECT,
            retry=False,
            blocks_account=True,
        )
    if isinstance(error, InsufficientPermissions):
        return ErrorOutcome(
            AccountState.INSUFFICIENT_PERMISSIONS,
            PERMISSIONS_HELP,
            SyncStatus.PENDING,
            "Waiting for calendar access to be allowed",
            Reason.INSUFFICIENT_PERMISSIONS,
            retry=False,
            blocks_account=True,
        )
    if isinstance(error, TransientError):
        return ErrorOutcome(
            AccountState.ACTIVE,
            with_code("The calendar is busy or unreachable; retrying", code),
            SyncStatus.PENDING,
            "The calendar did not answer; will retry",
            Reason.CALENDAR_BUSY,
            retry=True,
            retry_after=error.retry_after,
        )
    if isinstance(error, InvalidEvent):
        return ErrorOutcome(
            AccountState.ACTIVE,
            "",
            SyncStatus.ERROR,
            error_summary(error),
            Reason.REFUSED,
            retry=False,
        )
    if isinstance(error, Conflict):
        return ErrorOutcome(
            AccountState.ACTIVE,
            "",
            SyncStatus.PENDING,
            "The event changed in the calendar meanwhile; will retry",
            Reason.CHANGED_MEANWHILE,
            retry=True,
        )
    if isinstance(error, NotFound):
        return ErrorOutcome(
            AccountState.ACTIVE,
            "",
            SyncStatus.ERROR,
            error_summary(error),
            Reason.NOT_FOUND,
            retry=False,
        )
    if isinstance(error, ProviderError):
        return ErrorOutcome(
            AccountState.ERROR,
            error_summary(error),
            SyncStatus.ERROR,
            error_summary(error),
            Reason.FAILED,
            retry=not error.permanent,
        )
    return ErrorOutcome(
        AccountState.ERROR,
        f"{UNEXPECTED}; it will be tried again.",
        SyncStatus.ERROR,
        UNEXPECTED,
        Reason.FAILED,
        retry=False,
    )


def unsettled_pull_failure(error: BaseException) -> TransientError | None:
    """A pulled change that failed to apply but a later run can settle, as the run's transient error.

    Such a change must be listed again, so the old cursor is kept (R10: no edit dropped): a
    database that was busy or lost its connection, or an event that kept changing while it was
    merged (``Conflict`` after the retries). None for a problem of the item itself (an
    unreadable payload, a value the CRM cannot store): that item is skipped with its reason so
    it never holds the cursor back for good.
    """
    if isinstance(error, TransientError):
        return error
    if isinstance(error, Conflict):
        return TransientError(
            f"The event kept changing in the calendar while it was merged ({error.message})", code=error.code
        )
    if isinstance(error, DatabaseError) and not isinstance(error, PERMANENT_DATABASE_ERRORS):
        return TransientError(f"A calendar change could not be saved yet ({type(error).__name__})")
    return None


def item_retry_delay(failures: int) -> dt.timedelta:
    """R16: how long an item refused ``failures`` times in a row waits before it is sent again."""
    return min(ITEM_RETRY_MAX, ITEM_RETRY_FIRST * (1 << max(0, min(failures, 16) - 1)))


def item_failures_detail(count: int) -> str:
    """The account's "Error" detail while items have been refused for longer than a day (R9, R16)."""
    items = "1 item" if count == 1 else f"{count} items"
    return (
        f"{items} could not be synced for more than a day: the calendar keeps refusing "
        f"{'it' if count == 1 else 'them'}. See each item's sync status for the reason."
    )
