"""Small Graph helpers shared by the client and the sign-in module (no import cycle between them)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings


def graph_base_url() -> str:
    base = str(settings.MICROSOFT_GRAPH_BASE_URL)
    return base if base.endswith("/") else base + "/"


def format_expiry(expiry: datetime | None) -> str | None:
    return expiry.astimezone(UTC).isoformat() if expiry is not None else None


def parse_expiry(raw: object) -> datetime | None:
    if not raw:
        return None
    try:
        parsed = datetime.fromisoformat(str(raw))
    except ValueError:
        return None  # unknown expiry: the first 401 refreshes instead
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
