"""Small display helpers for activity templates."""

from __future__ import annotations

import datetime as dt

from django import template

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
