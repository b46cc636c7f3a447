"""What a push is about to create, kept until the link is recorded (R10: a crash loses no edit).

The calendar's create and our commit are two steps. A worker that dies between them leaves a
tagged event without a link; a later run adopts it. With the state both sides had at creation
(written before the call), the adopting merge tells a CRM edit made since (it wins) from a
calendar edit made since (it wins) by content, not by clocks that may tick in whole seconds
(EWS) or disagree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from calendarsync.models import CalendarAccount, PendingCreate

Snapshot = dict[str, Any]


def remember(
    account: CalendarAccount, snapshots: Mapping[int, Snapshot], now: dt.datetime
) -> dict[int, Snapshot]:
    """Record the snapshots about to be created (activity id -> snapshot); return the ones they replace."""
    if not snapshots:
        return {}
    previous = {
        row.activity_id: row.snapshot for row in PendingCreate.objects.filter(activity_id__in=list(snapshots))
    }
    PendingCreate.objects.bulk_create(
        [
            PendingCreate(activity_id=activity_id, account=account, snapshot=snapshot, created_at=now)
            for activity_id, snapshot in snapshots.items()
        ],
        update_conflicts=True,
        unique_fields=["activity"],
        update_fields=["account", "snapshot", "created_at"],
    )
    return previous


def agreed_at_creation(owner_id: int, activity_id: int) -> Snapshot | None:
    """The snapshot of the last create attempted for this activity by one of the owner's accounts."""
    row = PendingCreate.objects.filter(activity_id=activity_id, account__user_id=owner_id).first()
    return row.snapshot if row is not None else None


def forget(activity_ids: Iterable[int]) -> None:
    ids = list(activity_ids)
    if ids:
        PendingCreate.objects.filter(activity_id__in=ids).delete()
