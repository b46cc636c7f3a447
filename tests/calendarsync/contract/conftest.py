"""The provider contract suite's fixtures: one entry per provider, each against its emulator.

Adding a provider (Microsoft 365, Exchange) is one entry in ``PROVIDER_SETUPS``: a function
that takes the pytest request (to use that provider's emulator fixture) and returns a
``ContractSetup`` with the adapter under test and a small ``ProviderControl`` that plays the
user and the provider's operator (edit in the calendar UI, revoke access, inject faults).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pytest

from calendarsync.providers.base import CalendarProvider


class ProviderControl(Protocol):
    """What the contract tests need to do to the provider behind the adapter's back."""

    calendar_id: str

    def user_create_event(self, subject: str, start: dt.datetime, end: dt.datetime) -> str:
        """Create an event as the user would in the calendar app; returns its external id."""
        ...

    def user_update_event(self, external_id: str, *, subject: str) -> None: ...

    def user_delete_event(self, external_id: str) -> None: ...

    def create_recurring_series(self, subject: str, start: dt.datetime, end: dt.datetime, count: int) -> str:
        """A daily series of ``count`` occurrences; returns the series' external id."""
        ...

    def expire_cursor(self) -> None:
        """Make every outstanding change cursor invalid (the provider demands a full sync)."""
        ...

    def revoke(self) -> None:
        """The user revokes the app's access (refresh token dead)."""
        ...

    def expire_access_token(self) -> None: ...

    def inject_rate_limit(self, count: int, retry_after: int) -> None:
        """The next ``count`` API calls are throttled with ``Retry-After: retry_after``."""
        ...

    def inject_failure(self, kind: str, count: int) -> None:
        """The next ``count`` API calls fail: "server_error", "reset" (connection) or "timeout"."""
        ...

    def inject_bulk_item_rate_limit(self, count: int) -> None:
        """Inside bulk requests, the next ``count`` creates are throttled (the bulk call itself works)."""
        ...

    def provider_without_calendar_access(self) -> CalendarProvider:
        """An adapter whose grant lacks calendar access (partial consent, C4)."""
        ...

    def bulk_requests_made(self) -> int:
        """HTTP requests the bulk endpoint received since ``reset_request_counts``."""
        ...

    def reset_request_counts(self) -> None: ...

    def web_link(self, external_id: str) -> str | None:
        """The link that opens the event in the provider's web calendar, as the provider gives it."""
        ...


@dataclass
class ContractSetup:
    provider: CalendarProvider
    control: ProviderControl
    # What the adapter slept (its injected sleep records instead of sleeping).
    sleeps: list[float] = field(default_factory=list)
    # Every token dict the adapter asked to persist after a refresh.
    refreshed_tokens: list[dict[str, Any]] = field(default_factory=list)
    retry_attempts: int = 3
    # The access token the adapter started with (None for password-based providers).
    initial_access_token: str | None = None
    bulk_batch_size: int = 50


# --------------------------------------------------------------------------- Google

GOOGLE_USER = "alice@example.com"


class GoogleControl:
    calendar_id = "primary"

    def __init__(self, emulator: Any, email: str) -> None:
        self.emulator = emulator
        self.email = email

    @staticmethod
    def _when(moment: dt.datetime) -> dict[str, str]:
        return {"dateTime": moment.astimezone(dt.UTC).isoformat(), "timeZone": "UTC"}

    def user_create_event(self, subject: str, start: dt.datetime, end: dt.datetime) -> str:
        body = {"summary": subject, "start": self._when(start), "end": self._when(end)}
        return str(self.emulator.user_create_event(self.email, body)["id"])

    def user_update_event(self, external_id: str, *, subject: str) -> None:
        self.emulator.user_update_event(self.email, external_id, {"summary": subject})

    def user_delete_event(self, external_id: str) -> None:
        self.emulator.user_delete_event(self.email, external_id)

    def create_recurring_series(self, subject: str, start: dt.datetime, end: dt.datetime, count: int) -> str:
        body = {
            "summary": subject,
            "start": self._when(start),
            "end": self._when(end),
            "recurrence": [f"RRULE:FREQ=DAILY;COUNT={count}"],
        }
        return str(self.emulator.user_create_event(self.email, body)["id"])

    def expire_cursor(self) -> None:
        self.emulator.expire_sync_tokens(self.email)

    def revoke(self) -> None:
        self.emulator.revoke_tokens(self.email)

    def expire_access_token(self) -> None:
        self.emulator.expire_access_tokens(self.email)

    def inject_rate_limit(self, count: int, retry_after: int) -> None:
        self.emulator.inject_faults(
            "429", count=count, path_contains="/calendar/v3/", retry_after=retry_after
        )

    def inject_failure(self, kind: str, count: int) -> None:
        from django.conf import settings

        if kind == "timeout":
            # Hang longer than the adapter's HTTP timeout, so the client gives up first.
            self.emulator.timeout_seconds = settings.CALSYNC_HTTP_TIMEOUT_SECONDS + 2
        fault = {"server_error": "503", "reset": "reset", "timeout": "timeout"}[kind]
        self.emulator.inject_faults(fault, count=count, path_contains="/calendar/v3/", retry_after=0)

    def inject_bulk_item_rate_limit(self, count: int) -> None:
        self.emulator.inject_faults(
            "403-user-rate",
            count=count,
            path_contains="/calendar/v3/calendars/",
            method="POST",
            retry_after=1,
        )

    def provider_without_calendar_access(self) -> CalendarProvider:
        from django.conf import settings

        from calendarsync.providers.google.adapter import GoogleProvider

        scopes = [scope for scope in settings.GOOGLE_SCOPES if scope != settings.GOOGLE_CALENDAR_SCOPE]
        tokens = self.emulator.issue_tokens(self.email, scopes, settings.GOOGLE_CLIENT_ID)
        return GoogleProvider.from_tokens(google_token_dict(tokens, scopes), sleep=lambda _: None)

    def bulk_requests_made(self) -> int:
        return int(self.emulator.request_counts().get("batch", 0))

    def reset_request_counts(self) -> None:
        self.emulator.reset_counts()

    def web_link(self, external_id: str) -> str | None:
        event = self.emulator.user_get_event(self.email, external_id, self.calendar_id)
        return None if event is None else event.get("htmlLink")


def google_token_dict(issued: dict[str, Any], scopes: list[str]) -> dict[str, Any]:
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=int(issued.get("expires_in", 3600)))
    return {
        "access_token": issued["access_token"],
        "refresh_token": issued["refresh_token"],
        "expiry": expiry.isoformat(),
        "scopes": scopes,
    }


def google_setup(request: pytest.FixtureRequest) -> ContractSetup:
    from django.conf import settings

    from calendarsync.providers import retry
    from calendarsync.providers.google import adapter

    emulator = request.getfixturevalue("google_emulator").emulator
    # A short outgoing timeout keeps the timeout tests quick (read when the client is built).
    request.getfixturevalue("settings").CALSYNC_HTTP_TIMEOUT_SECONDS = 1
    scopes = list(settings.GOOGLE_SCOPES)
    issued = emulator.issue_tokens(GOOGLE_USER, scopes, settings.GOOGLE_CLIENT_ID)
    setup = ContractSetup(
        provider=None,  # type: ignore[arg-type]  # set below: the callbacks need the setup
        control=GoogleControl(emulator, GOOGLE_USER),
        retry_attempts=retry.MAX_ATTEMPTS,
        bulk_batch_size=adapter.BATCH_SIZE,
        initial_access_token=issued["access_token"],
    )
    setup.provider = adapter.GoogleProvider.from_tokens(
        google_token_dict(issued, scopes),
        on_tokens_refreshed=setup.refreshed_tokens.append,
        sleep=setup.sleeps.append,
    )
    return setup


# --------------------------------------------------------------------------- registry of setups

from tests.calendarsync.contract.exchange_setup import exchange_setup  # noqa: E402  (it needs ContractSetup)
from tests.calendarsync.contract.microsoft_setup import microsoft_setup  # noqa: E402  (it needs ContractSetup)

PROVIDER_SETUPS: dict[str, Callable[[pytest.FixtureRequest], ContractSetup]] = {
    "google": google_setup,
    "microsoft": microsoft_setup,
    "exchange": exchange_setup,
}


@pytest.fixture(params=sorted(PROVIDER_SETUPS))
def contract(request: pytest.FixtureRequest) -> ContractSetup:
    return PROVIDER_SETUPS[request.param](request)


@pytest.fixture
def provider(contract: ContractSetup) -> CalendarProvider:
    return contract.provider


@pytest.fixture
def control(contract: ContractSetup) -> ProviderControl:
    return contract.control
