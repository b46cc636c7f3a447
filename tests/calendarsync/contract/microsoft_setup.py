"""The contract suite's Microsoft 365 entry: the real adapter (msal + requests) against the emulator."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pytest

from calendarsync.providers.base import CalendarProvider

if TYPE_CHECKING:
    from tests.calendarsync.contract.conftest import ContractSetup


def _when(moment: dt.datetime) -> dict[str, str]:
    return {"dateTime": moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat(), "timeZone": "UTC"}


class MicrosoftControl:
    def __init__(self, emulator: Any, email: str) -> None:
        self.emulator = emulator
        self.email = email
        self.calendar_id = emulator.default_calendar_id(email)

    def user_create_event(self, subject: str, start: dt.datetime, end: dt.datetime) -> str:
        body = {"subject": subject, "start": _when(start), "end": _when(end)}
        return str(self.emulator.user_create_event(self.email, body)["id"])

    def user_update_event(self, external_id: str, *, subject: str) -> None:
        self.emulator.user_update_event(self.email, external_id, {"subject": subject})

    def user_delete_event(self, external_id: str) -> None:
        self.emulator.user_delete_event(self.email, external_id)

    def create_recurring_series(self, subject: str, start: dt.datetime, end: dt.datetime, count: int) -> str:
        body = {
            "subject": subject,
            "start": _when(start),
            "end": _when(end),
            "recurrence": {
                "pattern": {"type": "daily", "interval": 1},
                "range": {
                    "type": "numbered",
                    "startDate": start.date().isoformat(),
                    "numberOfOccurrences": count,
                },
            },
        }
        return str(self.emulator.user_create_event(self.email, body)["id"])

    def expire_cursor(self) -> None:
        self.emulator.expire_sync_tokens(self.email)

    def revoke(self) -> None:
        self.emulator.revoke_tokens(self.email)

    def expire_access_token(self) -> None:
        self.emulator.expire_access_tokens(self.email)

    def inject_rate_limit(self, count: int, retry_after: int) -> None:
        self.emulator.inject_faults("429", count=count, path_contains="/v1.0/", retry_after=retry_after)

    def inject_failure(self, kind: str, count: int) -> None:
        from django.conf import settings

        if kind == "timeout":
            # Hang longer than the adapter's HTTP timeout, so the client gives up first.
            self.emulator.timeout_seconds = settings.CALSYNC_HTTP_TIMEOUT_SECONDS + 2
        fault = {"server_error": "503", "reset": "reset", "timeout": "timeout"}[kind]
        self.emulator.inject_faults(fault, count=count, path_contains="/v1.0/", retry_after=0)

    def inject_bulk_item_rate_limit(self, count: int) -> None:
        # Matches the creates inside a batch, not the batch request (/v1.0/$batch) itself.
        self.emulator.inject_faults("429", count=count, path_contains="/events", method="POST", retry_after=1)

    def provider_without_calendar_access(self) -> CalendarProvider:
        from django.conf import settings

        from calendarsync.providers.microsoft.adapter import MicrosoftProvider

        tokens = self.emulator.issue_tokens(self.email, ["User.Read"], settings.MICROSOFT_CLIENT_ID)
        return MicrosoftProvider.from_tokens(
            microsoft_token_dict(tokens, ["User.Read"]), sleep=lambda _: None
        )

    def bulk_requests_made(self) -> int:
        return int(self.emulator.request_counts().get("batch", 0))

    def reset_request_counts(self) -> None:
        self.emulator.reset_counts()

    def web_link(self, external_id: str) -> str | None:
        event = self.emulator.user_get_event(self.email, external_id)
        return None if event is None else event.get("webLink")


def microsoft_token_dict(issued: dict[str, Any], scopes: list[str]) -> dict[str, Any]:
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=int(issued.get("expires_in", 3600)))
    return {
        "access_token": issued["access_token"],
        "refresh_token": issued["refresh_token"],
        "expiry": expiry.isoformat(),
        "scopes": scopes,
    }


def microsoft_setup(request: pytest.FixtureRequest) -> ContractSetup:
    from django.conf import settings

    from calendarsync.providers import retry
    from calendarsync.providers.microsoft import adapter
    from tests.calendarsync.contract.conftest import ContractSetup

    running = request.getfixturevalue("microsoft_emulator")
    # A short outgoing timeout keeps the timeout tests quick (read when the client is built).
    request.getfixturevalue("settings").CALSYNC_HTTP_TIMEOUT_SECONDS = 1
    scopes = list(settings.MICROSOFT_SCOPES)
    issued = running.emulator.issue_tokens(running.user, scopes, settings.MICROSOFT_CLIENT_ID)
    setup = ContractSetup(
        provider=None,  # type: ignore[arg-type]  # set below: the callbacks need the setup
        control=MicrosoftControl(running.emulator, running.user),
        retry_attempts=retry.MAX_ATTEMPTS,
        bulk_batch_size=adapter.BATCH_SIZE,
        initial_access_token=issued["access_token"],
    )
    setup.provider = adapter.MicrosoftProvider.from_tokens(
        microsoft_token_dict(issued, scopes),
        on_tokens_refreshed=setup.refreshed_tokens.append,
        sleep=setup.sleeps.append,
    )
    return setup
