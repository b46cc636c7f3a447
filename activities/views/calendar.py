"""The week and month calendar (A8): the list's filters, at most ``CALENDAR_MAX_ITEMS`` activities."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from activities.calendar import CalendarView, build_grid, grid_range, parse_anchor, parse_view
from activities.calendar_week import build_week
from activities.filters import ActivityFilterForm, SortChoice, days_condition, filter_activities, order_by_due
from activities.sync_display import sync_badge
from activities.views.common import UNREAD_COLUMNS, HtmxHttpRequest, render_page_or_fragment
from activities.visibility import visible_activities

CALENDAR_RELATIONS = ("type", "owner", "calendar_account")


@login_required
@require_http_methods(["GET"])
def activity_calendar(request: HtmxHttpRequest) -> HttpResponse:
    user = request.user
    tz = user.tzinfo
    now = timezone.now()
    today = now.astimezone(tz).date()
    view = parse_view(request.GET.get("view"))
    anchor = parse_anchor(request.GET.get("date"), today)
    form = ActivityFilterForm(user, request.GET)
    filters = form.filters()

    first, last = grid_range(view, anchor)
    # The calendar's own range replaces the list's time filter.
    in_range = filter_activities(
        visible_activities(user), filters, user=user, now=now, with_time=False
    ).filter(days_condition(first, last, tz))
    limit: int = settings.CALENDAR_MAX_ITEMS
    ordered = (
        order_by_due(in_range, SortChoice.ASC).select_related(*CALENDAR_RELATIONS).defer(*UNREAD_COLUMNS)
    )
    shown = list(ordered[: limit + 1])
    total = len(shown)
    if total > limit:
        shown = shown[:limit]
        total = in_range.count()

    grid = build_grid(view, anchor, today=today, tz=tz, activities=shown)
    context = {
        "nav": "calendar",
        "form": form,
        "grid": grid,
        "week": build_week(grid, tz=tz, now=now) if view is CalendarView.WEEK else None,
        "view": view.value,
        "anchor": anchor.isoformat(),
        # Empty at the ends of the range of dates the calendar shows: no link there.
        "previous_date": grid.previous_anchor.isoformat() if grid.previous_anchor else "",
        "next_date": grid.next_anchor.isoformat() if grid.next_anchor else "",
        "today_date": today.isoformat(),
        "limit": limit,
        "total": total,
        "truncated": total > limit,
        # The key to the status glyphs, once any item shown has one.
        "show_sync_legend": any(sync_badge(activity).is_shown for activity in shown),
        "viewer_tz": tz,
    }
    return render_page_or_fragment(request, "activities/calendar.html", "activities/_calendar.html", context)
