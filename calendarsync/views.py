"""Personal Preferences > Calendar Sync (C1-C6)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from accounts.auth import AuthedHttpRequest
from accounts.models import User
from calendarsync.models import CalendarAccount


def connected_account(user: User) -> CalendarAccount | None:
    return user.calendar_accounts.filter(stopped_at__isnull=True).prefetch_related("calendars").first()


@login_required
@require_http_methods(["GET"])
def page(request: AuthedHttpRequest) -> HttpResponse:
    return render(
        request,
        "calendarsync/page.html",
        {"account": connected_account(request.user), "section": "calendar_sync"},
    )
