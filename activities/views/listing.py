"""The activity list (A7) and its CSV export, both built from the shared filters."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from accounts.models import User
from activities.filters import ActivityFilterForm, ActivityFilters, filter_activities, order_by_due
from activities.models import Activity
from activities.sync_display import sync_badge
from activities.views.common import (
    ROW_RELATIONS,
    UNREAD_COLUMNS,
    HtmxHttpRequest,
    render_page_or_fragment,
)
from activities.visibility import PRIVATE_LABEL, visible_activities

PAGE_SIZE = 50
CSV_HEADER = (
    "Subject",
    "Type",
    "Date",
    "Start time",
    "End time",
    "Duration (minutes)",
    "Owner",
    "Location",
    "Deal",
    "Person",
    "Organization",
    "Note",
    "Done",
    "Sync status",
    "Calendar account",
)
# Spreadsheet programs run cells that start like a formula (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def listed_activities(user: User, filters: ActivityFilters) -> QuerySet[Activity]:
    """The list's rows (A5 via ``visible_activities``), filtered and sorted, with everything a row shows."""
    activities = filter_activities(visible_activities(user), filters, user=user, now=timezone.now())
    return order_by_due(activities, filters.sort).select_related(*ROW_RELATIONS).defer(*UNREAD_COLUMNS)


@login_required
@require_http_methods(["GET"])
def activity_list(request: HtmxHttpRequest) -> HttpResponse:
    user = request.user
    form = ActivityFilterForm(user, request.GET)
    filters = form.filters()
    page = Paginator(listed_activities(user, filters), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "nav": "list",
        "form": form,
        "filters": filters,
        "page_obj": page,
        "viewer_tz": user.tzinfo,
        "toggle_sort": "asc" if filters.sort == "desc" else "desc",
    }
    return render_page_or_fragment(request, "activities/list.html", "activities/_table.html", context)


class _Echo:
    """A file-like object whose ``write`` hands back the line, for streaming with ``csv.writer``."""

    def write(self, value: str) -> str:
        return value


def _cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_row(activity: Activity, tz: dt.tzinfo) -> list[object]:
    if activity.start_at is not None:
        starts = activity.start_at.astimezone(tz)
        ends = starts + (activity.duration or dt.timedelta(0))
        day, start_time, end_time = starts.date().isoformat(), f"{starts:%H:%M}", f"{ends:%H:%M}"
    else:
        day, start_time, end_time = activity.due_date.isoformat(), "", ""
    minutes = int(activity.duration.total_seconds() // 60) if activity.duration is not None else ""
    owner = activity.owner.display_name
    if getattr(activity, "masked", False):
        # A6: other users get the time block only.
        return [
            PRIVATE_LABEL,
            "",
            day,
            start_time,
            end_time,
            minutes,
            _cell(owner),
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
        ]
    badge = sync_badge(activity)
    return [
        _cell(activity.subject),
        _cell(activity.type.name),
        day,
        start_time,
        end_time,
        minutes,
        _cell(owner),
        _cell(activity.location),
        _cell(activity.deal.title if activity.deal else ""),
        _cell(activity.person.name if activity.person else ""),
        _cell(activity.organization.name if activity.organization else ""),
        _cell(activity.note),
        "yes" if activity.done else "no",
        badge.label if badge.is_shown else "",
        badge.account_email,
    ]


@login_required
@require_http_methods(["GET"])
def export_csv(request: HtmxHttpRequest) -> StreamingHttpResponse:
    user = request.user
    filters = ActivityFilterForm(user, request.GET).filters()
    activities = listed_activities(user, filters)
    tz = user.tzinfo

    def lines() -> Iterator[str]:
        writer = csv.writer(_Echo())
        yield writer.writerow(CSV_HEADER)
        for activity in activities.iterator(chunk_size=1000):
            yield writer.writerow(csv_row(activity, tz))

    filename = f"activities-{timezone.now().astimezone(tz):%Y-%m-%d}.csv"
    return StreamingHttpResponse(
        lines(),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
