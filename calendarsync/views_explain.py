"""D1: the sync explanation of one activity, as the popover of the list and the calendar loads it."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.auth import AuthedHttpRequest
from activities.visibility import visible_activities
from calendarsync.explaining import explanation_for


@login_required
@require_GET
def activity_sync(request: AuthedHttpRequest, pk: int) -> HttpResponse:
    """The fragment; 404 for an activity the user may not see (A5), "Private" for a masked one (A6)."""
    activity = visible_activities(request.user).select_related("owner", "type").filter(pk=pk).first()
    if activity is None:
        raise Http404
    why = explanation_for(activity, request.user, timezone.now())
    return render(
        request, "calendarsync/_explanation.html", {"why": why, "activity": activity, "popover": True}
    )
