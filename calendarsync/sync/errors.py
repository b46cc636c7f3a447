"""Provider errors -> account state and item sync status, in exactly one place (habit 3).

The engine and the runner never decide on their own what a failure means for the user: they
ask ``classify`` and store what it says.
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
    InsufficientPermissions,
    InvalidEvent,
    NotFound,
    ProviderError,
    TransientError,
)
from calendarsync.sync.accounts import CredentialsUnreadable

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


@dataclass(frozen=True)
class ErrorOutcome:
    """What a failure means: for the account (whole run) and for the item it happened to."""

    account_state: AccountState
    account_detail: str
    item_status: SyncStatus
    item_reason: str
    # Retry the run (the Celery task) after ``retry_after`` seconds, or at the next interval.
    retry: bool
    retry_after: float | None = None
    # The account cannot sync until the user acts: stop, keep everything (R10).
    blocks_account: bool = False


def classify(error: BaseException) -> ErrorOutcome:
    """The one mapping of a failure to the account's state and the item's sync status (R9, C4)."""
    message = (error.message if isinstance(error, ProviderError) else str(error))[:DETAIL_MAX]
    if isinstance(error, AuthRevoked):
        return ErrorOutcome(
            AccountState.NEEDS_RECONNECT,
            error.message if isinstance(error, CredentialsUnreadable) else RECONNECT_HELP,
            SyncStatus.PENDING,
            "Waiting for the calendar account to be reconnected",
            retry=False,
            blocks_account=True,
        )
    if isinstance(error, InsufficientPermissions):
        return ErrorOutcome(
            AccountState.INSUFFICIENT_PERMISSIONS,
            PERMISSIONS_HELP,
            SyncStatus.PENDING,
            "Waiting for calendar access to be allowed",
            retry=False,
            blocks_account=True,
        )
    if isinstance(error, TransientError):
        return ErrorOutcome(
            AccountState.ACTIVE,
            f"The calendar is busy or unreachable; retrying ({message})",
            SyncStatus.PENDING,
            "The calendar did not answer; will retry",
            retry=True,
            retry_after=error.retry_after,
        )
    if isinstance(error, InvalidEvent):
        return ErrorOutcome(
            AccountState.ACTIVE,
            "",
            SyncStatus.ERROR,
            f"The calendar refused this item: {message}",
            retry=False,
        )
    if isinstance(error, Conflict):
        return ErrorOutcome(
            AccountState.ACTIVE,
            "",
            SyncStatus.PENDING,
            "The event changed in the calendar meanwhile; will retry",
            retry=True,
        )
    if isinstance(error, NotFound):
        return ErrorOutcome(
            AccountState.ACTIVE,
            "",
            SyncStatus.ERROR,
            f"The calendar could not find this event: {message}",
            retry=False,
        )
    if isinstance(error, ProviderError):
        return ErrorOutcome(
            AccountState.ERROR,
            f"Calendar sync failed: {message}",
            SyncStatus.ERROR,
            f"Calendar sync failed: {message}",
            retry=not error.permanent,
        )
    return ErrorOutcome(
        AccountState.ERROR,
        "Calendar sync failed unexpectedly; it will be tried again.",
        SyncStatus.ERROR,
        "Calendar sync failed unexpectedly",
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
            f"The event kept changing in the calendar while it was merged ({error.message})"
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
