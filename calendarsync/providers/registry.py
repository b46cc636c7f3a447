"""Provider id -> factory building a ``CalendarProvider`` from stored credentials.

An explicit dict: adding a provider is one line here, nothing registers itself on import.
Providers know nothing of the ORM: the caller hands over the decrypted credentials and, for
OAuth providers, a callback that saves refreshed tokens (``calendarsync.sync.accounts``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from calendarsync.providers.base import AuthRevoked, CalendarProvider
from calendarsync.providers.exchange.adapter import ExchangeProvider
from calendarsync.providers.google.adapter import GoogleProvider
from calendarsync.providers.microsoft.adapter import MicrosoftProvider

TokenSaver = Callable[[dict[str, Any]], None]
ProviderFactory = Callable[[Mapping[str, Any], TokenSaver | None], CalendarProvider]


def _google(credentials: Mapping[str, Any], save_tokens: TokenSaver | None) -> CalendarProvider:
    return GoogleProvider.from_tokens(credentials, on_tokens_refreshed=save_tokens)


def _microsoft(credentials: Mapping[str, Any], save_tokens: TokenSaver | None) -> CalendarProvider:
    return MicrosoftProvider.from_tokens(credentials, on_tokens_refreshed=save_tokens)


def _exchange(credentials: Mapping[str, Any], save_tokens: TokenSaver | None) -> CalendarProvider:
    return ExchangeProvider.from_credentials(credentials)  # a password: nothing is ever refreshed


PROVIDERS: dict[str, ProviderFactory] = {
    "exchange": _exchange,
    "google": _google,
    "microsoft": _microsoft,
}
LABELS = {"exchange": "Exchange", "google": "Google", "microsoft": "Microsoft 365"}


def build_provider(
    provider: str, credentials: Mapping[str, Any] | None, *, save_tokens: TokenSaver | None = None
) -> CalendarProvider:
    """The adapter for ``provider``; ``KeyError`` for a provider we cannot sync yet.

    ``AuthRevoked`` when there are no credentials (stopped, or never connected): reconnect.
    """
    try:
        factory = PROVIDERS[provider]
    except KeyError:
        raise KeyError(f"No calendar provider adapter for {provider!r}") from None
    if not credentials:
        raise AuthRevoked(f"No stored {LABELS[provider]} credentials: reconnect the account")
    return factory(credentials, save_tokens)
