"""What every activity view shares: the signed-in user, the 404-or-own access check, htmx fragments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django_htmx.middleware import HtmxDetails

from accounts.auth import AuthedHttpRequest
from accounts.models import User
from activities.models import Activity
from activities.visibility import visible_activities

ROW_RELATIONS = ("type", "owner", "deal", "person", "organization", "calendar_account")
# A page shows the calendar account of a row (A7, R9), never its credentials: only the sync engine
# and the connect flows decrypt those (C7). Loading them would decrypt them on every render.
UNREAD_COLUMNS = ("calendar_account__credentials",)


class HtmxHttpRequest(AuthedHttpRequest):
    """A signed-in request (under ``login_required``) that went through django-htmx's middleware."""

    htmx: HtmxDetails


def access_own_activity(user: User, pk: int) -> Activity:
    """An activity ``user`` owns and may see; anything else (a colleague's, another company's) is a 404."""
    try:
        return (
            visible_activities(user)
            .select_related(*ROW_RELATIONS)
            .defer(*UNREAD_COLUMNS)
            .get(pk=pk, owner=user)
        )
    except Activity.DoesNotExist:
        raise Http404("No such activity.") from None


def wants_fragment(request: HtmxHttpRequest) -> bool:
    """htmx swaps a fragment in; a history restore needs the whole page."""
    return bool(request.htmx) and not request.htmx.history_restore_request and not request.htmx.boosted


def render_page_or_fragment(
    request: HtmxHttpRequest, page: str, fragment: str, context: Mapping[str, Any]
) -> HttpResponse:
    response = render(request, fragment if wants_fragment(request) else page, context)
    # The same URL answers with a page or a fragment: caches must tell them apart.
    patch_vary_headers(response, ("HX-Request",))
    return response
