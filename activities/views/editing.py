"""Detail, create, edit, delete and mark-done of one activity (A3-A6).

Only the owner may change an activity; to anyone else it does not exist (404), so
a URL never tells whether a colleague's private activity is there.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from accounts.models import User
from activities.bounds import in_date_range
from activities.forms import ActivityForm
from activities.meeting_display import guest_answers
from activities.models import Activity, Person
from activities.views.common import (
    ROW_RELATIONS,
    UNREAD_COLUMNS,
    HtmxHttpRequest,
    access_own_activity,
    wants_fragment,
)
from activities.visibility import visible_activities, visible_persons

TRUE_VALUES = {"1", "on", "true", "yes"}


def _safe_next(request: HtmxHttpRequest, fallback: str = "activities:list") -> HttpResponseRedirect:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return HttpResponseRedirect(target)
    return redirect(fallback)


def _read_only_status(request: HtmxHttpRequest) -> int:
    """A read-only activity's page answers a change with 403 Forbidden (and shows why)."""
    return 403 if request.method == "POST" else 200


def _visible_participants(user: User, activity: Activity) -> list[Person]:
    """Participants the viewer may see; the activity itself stays visible (A5 covers its links only)."""
    return list(visible_persons(user).filter(participating_in=activity).order_by("name"))


@login_required
@require_http_methods(["GET"])
def activity_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    user = request.user
    try:
        activity = visible_activities(user).select_related(*ROW_RELATIONS).defer(*UNREAD_COLUMNS).get(pk=pk)
    except Activity.DoesNotExist:
        raise Http404("No such activity.") from None
    masked = bool(activity.masked)  # type: ignore[attr-defined]
    participants = [] if masked else _visible_participants(user, activity)
    return render(
        request,
        "activities/detail.html",
        {
            "activity": activity,
            "participants": participants,
            "guest_answers": [] if masked else guest_answers(activity),
            "attending": list(activity.attending_users.order_by("first_name", "last_name", "email")),
            "is_own": activity.owner_id == user.pk,
            "viewer_tz": user.tzinfo,
        },
    )


def _initial_for_new(request: HtmxHttpRequest) -> dict[str, object]:
    raw_date = request.GET.get("date", "")
    try:
        day = dt.date.fromisoformat(raw_date) if raw_date else None
    except ValueError:
        return {}
    return {"due_date": day} if day is not None and in_date_range(day) else {}


@login_required
@require_http_methods(["GET", "POST"])
def activity_create(request: HtmxHttpRequest) -> HttpResponse:
    user = request.user
    if user.company_id is None:
        raise Http404("You do not belong to a company.")
    form = ActivityForm(request.POST or None, user=user, initial=_initial_for_new(request))
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Activity saved.")
        return redirect("activities:list")
    return render(request, "activities/form.html", {"form": form, "activity": None, "viewer_tz": user.tzinfo})


@login_required
@require_http_methods(["GET", "POST"])
def activity_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    user = request.user
    activity = access_own_activity(user, pk)
    if activity.sync_read_only_reason:
        # R7, R14: shown read-only with the reason (once); a POST changes nothing.
        return render(
            request,
            "activities/form.html",
            {
                "form": ActivityForm(instance=activity, user=user),
                "activity": activity,
                "viewer_tz": user.tzinfo,
            },
            status=_read_only_status(request),
        )
    form = ActivityForm(request.POST or None, instance=activity, user=user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Activity saved.")
        return redirect("activities:list")
    return render(
        request, "activities/form.html", {"form": form, "activity": activity, "viewer_tz": user.tzinfo}
    )


@login_required
@require_http_methods(["GET", "POST"])
def activity_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    user = request.user
    activity = access_own_activity(user, pk)
    if activity.sync_read_only_reason:
        # R14: an occurrence cannot be deleted in the CRM; the page says why, a POST deletes nothing.
        return render(
            request,
            "activities/confirm_delete.html",
            {"activity": activity, "viewer_tz": user.tzinfo},
            status=_read_only_status(request),
        )
    if request.method == "POST":
        activity.delete()
        messages.success(request, "Activity deleted.")
        return redirect("activities:list")
    return render(request, "activities/confirm_delete.html", {"activity": activity, "viewer_tz": user.tzinfo})


@login_required
@require_http_methods(["POST"])
def activity_toggle_done(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Set the done flag from the posted ``done`` value (the last one wins), or flip it when none is sent."""
    user = request.user
    activity = access_own_activity(user, pk)
    posted = request.POST.getlist("done")
    activity.done = posted[-1].lower() in TRUE_VALUES if posted else not activity.done
    activity.save(update_fields=["done", "updated_at"])
    if wants_fragment(request):
        context = {"activity": activity, "viewer_tz": user.tzinfo, "next_url": request.POST.get("next", "")}
        return render(request, "activities/_row.html", context)
    messages.success(request, "Marked as done." if activity.done else "Marked as to do.")
    return _safe_next(request)
