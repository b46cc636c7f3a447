"""Provider errors -> account state and item sync status, in exactly one place (habit 3).

The engine and the runner never decide on their own what a failure means for the user: they
ask ``classify`` and store what it says.
"""

from __future__ import annotations

from dataclasses import dataclass

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

RECONNECT_HELP = (
    "Access to your calendar was revoked or has expired. Reconnect the account to resume syncing."
)
PERMISSIONS_HELP = (
    "CalSync may not use your calendar. Ask your IT admin to allow third-party calendar apps, "
    "then reconnect and allow calendar access."
)
DETAIL_MAX = 500


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
            RECONNECT_HELP,
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
            "The event no longer exists in the calendar",
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
