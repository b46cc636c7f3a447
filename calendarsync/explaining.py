"""D1 for the web: load what ``explain`` needs for one activity, for the user who looks at it.

``explain`` itself is pure; this reads the owner's calendar account and options, the activity's
event link and its refusal record (at most four small queries), for the activity page, the
list and calendar popovers.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import F, Prefetch

from accounts.models import User
from activities.models import Activity, ActivityType
from calendarsync.models import CalendarAccount, EventLink, ItemFailure, LinkRole, LinkState, SyncPreferences
from calendarsync.sync.explain import Explanation, explain


def explanation_for(activity: Activity, viewer: User, now: dt.datetime) -> Explanation | None:
    """Why ``activity`` syncs or not, as ``viewer`` may know it; None when it is masked (A6)."""
    if getattr(activity, "masked", False):
        return None
    account = _account_of(activity)
    preferences = _preferences_of(account)
    link = None
    failure = None
    if account is not None:
        link = (
            EventLink.objects.filter(account=account, activity=activity, role=LinkRole.OWN)
            .exclude(state=LinkState.DELETE_PENDING)
            .order_by("-updated_at")
            .first()
        )
        failure = ItemFailure.objects.filter(account=account, activity=activity).first()
    return explain(
        activity,
        account,
        preferences,
        link,
        now,
        viewer_id=viewer.pk,
        viewer_attends=activity.owner_id != viewer.pk
        and activity.attending_users.filter(pk=viewer.pk).exists(),
        failure=failure,
        tz=viewer.tzinfo,
    )


def _account_of(activity: Activity) -> CalendarAccount | None:
    """The account the activity syncs with, else the owner's connected one (or their last)."""
    accounts = CalendarAccount.objects.select_related("user").defer("credentials")  # never decrypted here
    if activity.calendar_account_id is not None:
        account = accounts.filter(pk=activity.calendar_account_id, user_id=activity.owner_id).first()
        if account is not None:
            return account
    return (
        accounts.filter(user_id=activity.owner_id)
        .order_by(F("stopped_at").asc(nulls_first=True), "-connected_at")
        .first()
    )


def _preferences_of(account: CalendarAccount | None) -> SyncPreferences | None:
    if account is None:
        return None
    return (
        SyncPreferences.objects.filter(account=account)
        .prefetch_related(Prefetch("outgoing_types", queryset=ActivityType.objects.only("pk")))
        .first()
    )
