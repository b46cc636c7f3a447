"""Provider id -> factory building a ``CalendarProvider`` for a stored account.

An explicit dict: adding a provider is one line here, nothing registers itself on import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from calendarsync.providers.base import CalendarProvider
from calendarsync.providers.exchange.adapter import ExchangeProvider
from calendarsync.providers.google.adapter import GoogleProvider
from calendarsync.providers.microsoft.adapter import MicrosoftProvider

if TYPE_CHECKING:
    from calendarsync.models import CalendarAccount

ProviderFactory = Callable[["CalendarAccount"], CalendarProvider]

PROVIDERS: dict[str, ProviderFactory] = {
    "exchange": ExchangeProvider.from_account,
    "google": GoogleProvider.from_account,
    "microsoft": MicrosoftProvider.from_account,
}


def provider_for(account: CalendarAccount) -> CalendarProvider:
    """The provider adapter of ``account``; ``KeyError`` for a provider we cannot sync yet."""
    try:
        factory = PROVIDERS[account.provider]
    except KeyError:
        raise KeyError(f"No calendar provider adapter for {account.provider!r}") from None
    return factory(account)
