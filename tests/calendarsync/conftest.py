"""Fixtures for calendar sync tests: the provider emulators, served on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from pytest_django.fixtures import Settings

from calendarsync.emulators.google import GoogleEmulator
from calendarsync.emulators.server import EmulatorServer
from tests.calendarsync.conftest_exchange import exchange_emulator, exchange_emulator_server  # noqa: F401
from tests.calendarsync.conftest_microsoft import microsoft_emulator, microsoft_emulator_servers  # noqa: F401

GOOGLE_TEST_CLIENT_ID = "test-client-id"
GOOGLE_TEST_CLIENT_SECRET = "test-client-secret"
GOOGLE_TEST_USER = "alice@example.com"


@dataclass(frozen=True)
class RunningGoogleEmulator:
    url: str
    emulator: GoogleEmulator
    client_id: str = GOOGLE_TEST_CLIENT_ID
    client_secret: str = GOOGLE_TEST_CLIENT_SECRET
    user: str = GOOGLE_TEST_USER

    @property
    def auth_uri(self) -> str:
        return f"{self.url}/o/oauth2/auth"

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    @property
    def revoke_uri(self) -> str:
        return f"{self.url}/revoke"

    @property
    def api_base_url(self) -> str:
        return f"{self.url}/"

    @property
    def api_endpoint(self) -> str:
        """What googleapiclient's `client_options["api_endpoint"]` must be: it replaces rootUrl
        AND servicePath, so the Calendar API's path has to be part of it."""
        return f"{self.url}/calendar/v3/"

    @property
    def batch_uri(self) -> str:
        return f"{self.url}/batch/calendar/v3"


@pytest.fixture(scope="session")
def google_emulator_server() -> Iterator[tuple[EmulatorServer, GoogleEmulator]]:
    """One server for the whole run; `google_emulator` resets its state for every test."""
    emulator = GoogleEmulator()
    with EmulatorServer(emulator) as server:
        yield server, emulator


@pytest.fixture
def google_emulator(
    google_emulator_server: tuple[EmulatorServer, GoogleEmulator],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[RunningGoogleEmulator]:
    """The Google emulator with client test-client-id and user alice@example.com; settings point at it."""
    server, emulator = google_emulator_server
    emulator.reset()
    emulator.register_client(GOOGLE_TEST_CLIENT_ID, GOOGLE_TEST_CLIENT_SECRET)
    emulator.add_user(GOOGLE_TEST_USER)
    running = RunningGoogleEmulator(url=server.url, emulator=emulator)
    settings.GOOGLE_CLIENT_ID = GOOGLE_TEST_CLIENT_ID
    settings.GOOGLE_CLIENT_SECRET = GOOGLE_TEST_CLIENT_SECRET
    settings.GOOGLE_AUTH_URI = running.auth_uri
    settings.GOOGLE_TOKEN_URI = running.token_uri
    settings.GOOGLE_REVOKE_URI = running.revoke_uri
    settings.GOOGLE_API_BASE_URL = running.api_base_url
    settings.GOOGLE_BATCH_URI = running.batch_uri
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    yield running
    # Also releases any request still hanging in an injected "timeout" fault.
    emulator.reset()
