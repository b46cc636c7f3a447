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
from calendarsync.providers.google import oauth as google_oauth
from calendarsync.providers.google.adapter import GoogleProvider
from calendarsync.providers.microsoft import oauth as microsoft_oauth
from calendarsync.providers.microsoft.adapter import MicrosoftProvider

TokenSaver = Callable[[dict[str, Any]], None]
ProviderFactory = Callable[[Mapping[str, Any], TokenSaver | None], CalendarProvider]
Revoker = Callable[[Mapping[str, Any]], None]


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

# Giving access back on disconnect. Google revokes the grant; Microsoft has no revocation for an
# app, the user removes its consent on these pages; an Exchange password has nothing to revoke.
REVOKERS: dict[str, Revoker] = {"google": google_oauth.revoke_grant}
CONSENT_PAGES: dict[str, tuple[tuple[str, str], ...]] = {"microsoft": microsoft_oauth.CONSENT_PAGES}


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


def can_revoke(provider: str) -> bool:
    """Whether the provider lets CalSync withdraw its own access (a call ``revoke_access`` makes)."""
    return provider in REVOKERS


def revoke_access(provider: str, credentials: Mapping[str, Any]) -> None:
    """Withdraw the access ``credentials`` give at the provider; a no-op where there is nothing to call.

    Raises ``ProviderError`` (``TransientError`` for network trouble and 5xx) when the call fails.
    """
    revoker = REVOKERS.get(provider)
    if revoker is not None:
        revoker(credentials)


def consent_pages(provider: str) -> tuple[tuple[str, str], ...]:
    """Where the user removes CalSync's access themselves, as (kind of account, URL), if anywhere."""
    return CONSENT_PAGES.get(provider, ())
