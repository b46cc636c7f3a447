"""The contract suite's Exchange entry: the real adapter (exchangelib over HTTP) against the EWS emulator."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from calendarsync.emulators.exchange_xml import EXCHANGE_2016, EXCHANGE_2019, ServerVersion
from calendarsync.providers.base import CalendarProvider

if TYPE_CHECKING:
    from tests.calendarsync.contract.conftest import ContractSetup

NO_ACCESS_USER = "no-calendar@example.com"
NO_ACCESS_PASSWORD = "no-calendar-password"


class ExchangeControl:
    """The user in Outlook and the Exchange admin, behind the adapter's back."""

    def __init__(self, running: Any) -> None:
        self.running = running
        self.emulator = running.emulator
        self.email = running.user
        self.calendar_id = self.emulator.calendar_folder_id(self.email)

    def user_create_event(self, subject: str, start: dt.datetime, end: dt.datetime) -> str:
        return str(
            self.emulator.user_create_event(self.email, {"subject": subject, "start": start, "end": end})[
                "id"
            ]
        )

    def user_update_event(self, external_id: str, *, subject: str) -> None:
        self.emulator.user_update_event(self.email, external_id, {"subject": subject})

    def user_delete_event(self, external_id: str) -> None:
        self.emulator.user_delete_event(self.email, external_id)

    def create_recurring_series(self, subject: str, start: dt.datetime, end: dt.datetime, count: int) -> str:
        fields = {
            "subject": subject,
            "start": start,
            "end": end,
            "recurrence": {"pattern": "daily", "count": count},
        }
        return str(self.emulator.user_create_event(self.email, fields)["id"])

    def expire_cursor(self) -> None:
        self.emulator.expire_sync_tokens(self.email)

    def revoke(self) -> None:
        self.emulator.revoke(self.email)  # the user changes their password

    def expire_access_token(self) -> None:
        pass  # Exchange signs in with a password on every request: there is no access token

    def inject_rate_limit(self, count: int, retry_after: int) -> None:
        self.emulator.inject_faults("busy", count=count, back_off_ms=retry_after * 1000)

    def inject_failure(self, kind: str, count: int) -> None:
        from django.conf import settings

        if kind == "timeout":
            # Hang longer than the adapter's HTTP timeout, so the client gives up first.
            self.emulator.timeout_seconds = settings.CALSYNC_HTTP_TIMEOUT_SECONDS + 2
        fault = {"server_error": "500", "reset": "reset", "timeout": "timeout"}[kind]
        self.emulator.inject_faults(fault, count=count)

    def inject_bulk_item_rate_limit(self, count: int) -> None:
        self.emulator.inject_faults("busy-item", count=count)

    def provider_without_calendar_access(self) -> CalendarProvider:
        from calendarsync.providers.exchange.adapter import ExchangeProvider

        # An admin took the calendar folder away from this mailbox (C4).
        self.emulator.add_user(NO_ACCESS_USER, NO_ACCESS_PASSWORD)
        self.emulator.set_calendar_access(NO_ACCESS_USER, False)
        credentials = self.running.credentials(NO_ACCESS_USER, NO_ACCESS_PASSWORD)
        return ExchangeProvider.from_credentials(credentials, sleep=lambda _: None)

    def bulk_requests_made(self) -> int:
        return int(self.emulator.request_counts().get("CreateItem", 0))

    def reset_request_counts(self) -> None:
        self.emulator.reset_counts()

    def web_link(self, external_id: str) -> str | None:
        """Outlook on the web of the server (https, on the EWS host) + the item's read-form query."""
        from calendarsync.emulators.exchange_items import read_form_query_string

        if self.emulator.user_get_event(self.email, external_id) is None:
            return None
        return f"https://{urlsplit(self.running.url).hostname}/owa/{read_form_query_string(external_id)}"


def exchange_setup(request: pytest.FixtureRequest) -> ContractSetup:
    from calendarsync.providers import retry
    from calendarsync.providers.exchange import adapter
    from tests.calendarsync.contract.conftest import ContractSetup

    running = request.getfixturevalue("exchange_emulator")
    # A short outgoing timeout keeps the timeout tests quick (read when the client is built).
    request.getfixturevalue("settings").CALSYNC_HTTP_TIMEOUT_SECONDS = 1
    setup = ContractSetup(
        provider=None,  # type: ignore[arg-type]  # set below: the sleep callback needs the setup
        control=ExchangeControl(running),
        retry_attempts=retry.MAX_ATTEMPTS,
        bulk_batch_size=adapter.BATCH_SIZE,
        initial_access_token=None,  # password sign-in: nothing to refresh
    )
    setup.provider = adapter.ExchangeProvider.from_credentials(
        running.credentials(), sleep=setup.sleeps.append
    )
    return setup


# --------------------------------------------------------------------------- sign-in variants (issue #16)


@dataclass(frozen=True)
class SignInVariant:
    """An Exchange Server as the connect meets it: what it offers, what it says it is, what the user
    chose under Advanced, and the sign-in the connect should store."""

    name: str
    offered: tuple[str, ...]
    version: ServerVersion
    auth_type: str
    stored: str


SIGN_IN_VARIANTS = (
    SignInVariant("ntlm-only-2016", ("ntlm",), EXCHANGE_2016, "auto", "ntlm"),
    SignInVariant("basic-only-2019", ("basic",), EXCHANGE_2019, "auto", "basic"),
    SignInVariant("both-2019", ("ntlm", "basic"), EXCHANGE_2019, "auto", "ntlm"),
    SignInVariant("both-basic-chosen-2016", ("ntlm", "basic"), EXCHANGE_2016, "basic", "basic"),
)


def exchange_sign_in_setup(request: pytest.FixtureRequest, variant: SignInVariant) -> ContractSetup:
    """The adapter as a connect leaves it: ``verify_login`` against the emulator set up as
    ``variant``, then the provider built from the credentials it returned (as a sync run does)."""
    from calendarsync.providers import retry
    from calendarsync.providers.exchange import adapter
    from calendarsync.providers.exchange.connect import verify_login
    from tests.calendarsync.contract.conftest import ContractSetup

    running = request.getfixturevalue("exchange_emulator")
    request.getfixturevalue("settings").CALSYNC_HTTP_TIMEOUT_SECONDS = 1
    running.emulator.set_auth_methods(variant.offered)
    running.emulator.set_server_version(variant.version)
    login = verify_login(running.user, running.password, running.server_url, auth_type=variant.auth_type)
    assert login.credentials["auth_type"] == variant.stored
    assert login.credentials["version"] == variant.version.build
    setup = ContractSetup(
        provider=None,  # type: ignore[arg-type]  # set below: the sleep callback needs the setup
        control=ExchangeControl(running),
        retry_attempts=retry.MAX_ATTEMPTS,
        bulk_batch_size=adapter.BATCH_SIZE,
        initial_access_token=None,
    )
    setup.provider = adapter.ExchangeProvider.from_credentials(login.credentials, sleep=setup.sleeps.append)
    running.emulator.reset_counts()
    return setup
