"""Autocomplete options for the pickers of the activity form (participants, deal, person, organization).

Each answer is an htmx fragment of ``role="option"`` items, drawn only from what the
signed-in user may see (:mod:`activities.visibility`, A5/A6): another company's items
and a colleague's private ones are never offered.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from activities.bounds import parse_ids
from activities.pickers import PICKERS, clean_query, suggestions
from activities.views.common import HtmxHttpRequest


@login_required
@require_http_methods(["GET"])
def picker_options(request: HtmxHttpRequest, field: str) -> HttpResponse:
    """Options matching ``<field>_query``, leaving out what is already chosen (the posted ``<field>`` ids)."""
    kind = PICKERS.get(field)
    if kind is None:
        raise Http404("No such picker.")
    text = clean_query(request.GET.get(kind.query_name, ""))
    chosen = parse_ids(request.GET.getlist(kind.field))
    items, more = suggestions(kind, request.user, text, exclude=chosen)
    response = render(
        request,
        "activities/_picker_options.html",
        {"kind": kind, "items": items, "more": more, "text": text},
    )
    response["Cache-Control"] = "private, no-store"
    return response
