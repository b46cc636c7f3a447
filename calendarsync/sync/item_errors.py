"""Items the calendar refused (R16): each waits with its own backoff, the rest of the run goes on.

A refused push (a per-event 403, 400 or 404) is recorded as an ``ItemFailure`` of its activity
with the change the calendar refused (``changed_at``). While the backoff lasts the activity is
not due, so the run that finds nothing else to do stays one request and a few queries; a new
CRM change (a new ``sync_changed_at``) makes it due at once. A refused event deletion is
recorded on its event and waits the same way. The row goes when the item syncs.

How long an item waits, and when lasting refusals make the account show "Error", is decided
in ``calendarsync.sync.errors`` with every other error rule.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from activities.models import Activity, SyncStatus
from calendarsync.models import CalendarAccount, ItemFailure
from calendarsync.sync.errors import ITEM_FAILURES_ERROR_AFTER, item_retry_delay


def push_waiting(account: Any, now: dt.datetime) -> Exists:
    """For an activity queryset: its last change was refused and its backoff is not over.

    ``account`` is the account's id, or an ``OuterRef`` to it inside a subquery.
    """
    return Exists(
        ItemFailure.objects.filter(
            account_id=account,
            activity_id=OuterRef("pk"),
            retry_at__gt=now,
            changed_at=OuterRef("sync_changed_at"),
        )
    )


def push_recorded(account_id: int) -> Exists:
    """For an activity queryset: the account holds a refusal of this activity."""
    return Exists(ItemFailure.objects.filter(account_id=account_id, activity_id=OuterRef("pk")))


def deletion_waiting(account: Any, now: dt.datetime) -> Exists:
    """For an ``EventLink`` queryset: deleting its event was refused and the backoff is not over."""
    return Exists(
        ItemFailure.objects.filter(
            account_id=account,
            activity__isnull=True,
            external_id=OuterRef("external_id"),
            retry_at__gt=now,
        )
    )


def deletion_recorded(account_id: int) -> Exists:
    return Exists(
        ItemFailure.objects.filter(
            account_id=account_id, activity__isnull=True, external_id=OuterRef("external_id")
        )
    )


def record_push_failure(account: CalendarAccount, activity: Activity, reason: str) -> ItemFailure | None:
    """The calendar refused this activity's change: wait before sending it again (R16).

    The same change refused again waits twice as long; a new change refused starts over at the
    shortest wait, but the item keeps counting as failing since its first refusal, unless it
    synced in between (its status is no longer "error").
    """
    now = timezone.now()
    try:
        with transaction.atomic():
            failure = (
                ItemFailure.objects.select_for_update().filter(account=account, activity=activity).first()
            )
            if failure is None:
                failure = ItemFailure(account=account, activity=activity, first_failed_at=now, failures=0)
            elif activity.sync_status != SyncStatus.ERROR:
                failure.first_failed_at, failure.failures = now, 0  # it synced since its last refusal
            if failure.changed_at != activity.sync_changed_at:
                failure.failures = 0
            failure.failures += 1
            failure.changed_at = activity.sync_changed_at
            _stamp(failure, reason, now)
            failure.save()
    except IntegrityError:
        return None  # the activity was deleted meanwhile: nothing left to retry
    return failure


def record_deletion_failure(account: CalendarAccount, external_id: str, reason: str) -> ItemFailure:
    """The calendar refused to delete this event: wait before trying again (R16)."""
    now = timezone.now()
    with transaction.atomic():
        failure = (
            ItemFailure.objects.select_for_update()
            .filter(account=account, activity__isnull=True, external_id=external_id)
            .first()
        )
        if failure is None:
            failure = ItemFailure(account=account, external_id=external_id, first_failed_at=now, failures=0)
        failure.failures += 1
        _stamp(failure, reason, now)
        failure.save()
    return failure


def _stamp(failure: ItemFailure, reason: str, now: dt.datetime) -> None:
    failure.reason = reason[:500]
    failure.failed_at = now
    failure.retry_at = now + item_retry_delay(failure.failures)


def clear_pushes(account: CalendarAccount, activity_ids: Iterable[int], run_started: dt.datetime) -> None:
    """These activities were sent or settled by a run that started at ``run_started``: forget
    their refusals, except those this very run recorded."""
    ids = list(activity_ids)
    if ids:
        ItemFailure.objects.filter(account=account, activity_id__in=ids, failed_at__lt=run_started).delete()


def clear_deletion(account: CalendarAccount, external_id: str) -> None:
    ItemFailure.objects.filter(account=account, activity__isnull=True, external_id=external_id).delete()


def still_failing(account: Any) -> Q:
    """``ItemFailure`` rows of ``account`` (an id or an ``OuterRef``) whose item is still refused.

    A refused push counts while its activity's status says "error" (a pull or a later push that
    settled it makes the row stale); a refused deletion counts until it succeeds.
    """
    return Q(account_id=account) & (Q(activity__isnull=True) | Q(activity__sync_status=SyncStatus.ERROR))


def failing_items(account: CalendarAccount) -> QuerySet[ItemFailure]:
    return ItemFailure.objects.filter(still_failing(account.pk))


def lasting(account: Any, now: dt.datetime) -> Q:
    """Refusals that have lasted so long the account shows "Error" (see ``errors``)."""
    return still_failing(account) & Q(first_failed_at__lte=now - ITEM_FAILURES_ERROR_AFTER)


@dataclass(frozen=True)
class Counts:
    failing: int = 0  # refused and not settled since: the status says "N items could not be synced"
    lasting: int = 0  # ... for longer than the account may stay "Active"


def counts(account_id: int, now: dt.datetime) -> Counts:
    found = ItemFailure.objects.filter(still_failing(account_id)).aggregate(
        failing=Count("pk"),
        lasting=Count("pk", filter=Q(first_failed_at__lte=now - ITEM_FAILURES_ERROR_AFTER)),
    )
    return Counts(failing=found["failing"] or 0, lasting=found["lasting"] or 0)


def counts_subqueries(account: Any, now: dt.datetime) -> dict[str, Any]:
    """``counts`` as annotations of an account queryset (``refused_failing``, ``refused_lasting``):
    the runner reads them with the account, in the same query."""

    def count_of(condition: Q) -> Coalesce:
        rows = ItemFailure.objects.filter(condition).order_by().values("account_id")
        return Coalesce(Subquery(rows.annotate(count=Count("pk")).values("count")), 0)

    return {
        "refused_failing": count_of(still_failing(account)),
        "refused_lasting": count_of(lasting(account, now)),
    }


__all__ = [
    "Counts",
    "clear_deletion",
    "clear_pushes",
    "counts",
    "counts_subqueries",
    "deletion_recorded",
    "deletion_waiting",
    "failing_items",
    "lasting",
    "push_recorded",
    "push_waiting",
    "record_deletion_failure",
    "record_push_failure",
    "still_failing",
]
