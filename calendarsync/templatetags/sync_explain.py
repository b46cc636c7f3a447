"""``{% sync_explanation activity as why %}``: the activity's sync explanation (D1) for the page's user."""

from __future__ import annotations

import itertools
from typing import Any

from django import template
from django.utils import timezone

from activities.models import Activity
from calendarsync.explaining import explanation_for
from calendarsync.sync.explain import Explanation

register = template.Library()


@register.simple_tag(takes_context=True)
def sync_explanation(context: dict[str, Any], activity: Activity) -> Explanation | None:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return explanation_for(activity, user, timezone.now())


_popover_ids = itertools.count(1)


@register.simple_tag
def why_popover_id(activity: Activity) -> str:
    """A page-unique id for an activity's "Why?" popover (the calendar may show an item twice)."""
    return f"why-{activity.pk}-{next(_popover_ids)}"
