"""Small display helpers for activity templates."""

from __future__ import annotations

import datetime as dt

from django import template

from activities.meeting_display import join_link as join_link_of
from activities.models import Activity
from activities.sync_display import SyncBadge, legend
from activities.sync_display import sync_badge as badge_of
from activities.type_colours import PRIVATE_CLASS, colour_class

register = template.Library()


@register.filter
def duration_label(value: dt.timedelta | None) -> str:
    """``1 h 30 min``, ``45 min``, ``2 d 1 h``; an em dash when there is no duration."""
    if not value:
        return "—"
    minutes = int(value.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    return " ".join(part for part in parts if part) or "0 min"


@register.simple_tag
def sync_badge(activity: Activity) -> SyncBadge:
    """``{% sync_badge activity as badge %}``: the status and account the activity shows (R9)."""
    return badge_of(activity)


@register.simple_tag
def sync_legend() -> list[SyncBadge]:
    """``{% sync_legend as badges %}``: one badge of each status, for the calendar's key."""
    return legend()


@register.filter
def type_colour(activity: Activity) -> str:
    """The CSS class of the activity type's colour (A2); none for a masked activity (A6)."""
    if getattr(activity, "masked", False):
        return PRIVATE_CLASS
    return colour_class(activity.type.color)


@register.filter
def join_link(activity: Activity) -> str:
    """The activity's video call link (M4), or "" (none, or not a web address)."""
    return join_link_of(activity)
