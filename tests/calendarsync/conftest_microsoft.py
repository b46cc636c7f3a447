"""Fixtures for the Microsoft 365 emulator: identity over HTTPS (a trustme test CA), Graph over HTTP.

One pair of servers for the whole run; ``microsoft_emulator`` resets the state for every test and
points the settings at it. Imported into tests/calendarsync/conftest.py and tests/browser/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pytest_django.fixtures import Settings

from calendarsync.emulators.microsoft import MicrosoftEmulator
from calendarsync.emulators.server import EmulatorServer
from calendarsync.emulators.tls import TestAuthority, TlsEmulatorServer

MICROSOFT_TEST_CLIENT_ID = "00000000-test-4c1e-8f00-c0ffee000001"
MICROSOFT_TEST_CLIENT_SECRET = "test-client-secret~ms"
MICROSOFT_TEST_USER = "alice@contoso.test"


@dataclass(frozen=True)
class MicrosoftServers:
    identity: TlsEmulatorServer
    graph: EmulatorServer
    emulator: MicrosoftEmulator
    ca_bundle: Path


@dataclass(frozen=True)
class RunningMicrosoftEmulator:
    identity_url: str
    graph_url: str
    emulator: MicrosoftEmulator
    ca_bundle: Path
    client_id: str = MICROSOFT_TEST_CLIENT_ID
    client_secret: str = MICROSOFT_TEST_CLIENT_SECRET
    user: str = MICROSOFT_TEST_USER

    @property
    def authority(self) -> str:
        return f"{self.identity_url}/common"

    @property
    def graph_base_url(self) -> str:
        return f"{self.graph_url}/v1.0/"

    @property
    def calendar_id(self) -> str:
        """The user's default calendar ("Calendar")."""
        return self.emulator.default_calendar_id(self.user)


@pytest.fixture(scope="session")
def microsoft_emulator_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MicrosoftServers]:
    emulator = MicrosoftEmulator()
    authority = TestAuthority()
    bundle = authority.write_ca_bundle(tmp_path_factory.mktemp("microsoft-ca") / "ca.pem")
    with (
        TlsEmulatorServer(emulator, authority.server_context()) as identity,
        EmulatorServer(emulator) as graph,
    ):
        assert isinstance(identity, TlsEmulatorServer)
        yield MicrosoftServers(identity=identity, graph=graph, emulator=emulator, ca_bundle=bundle)


@pytest.fixture
def microsoft_emulator(
    microsoft_emulator_servers: MicrosoftServers, settings: Settings
) -> Iterator[RunningMicrosoftEmulator]:
    """The emulator with one app and user alice@contoso.test; settings point at it.

    No REQUESTS_CA_BUNDLE is needed: the app hands msal the test CA per request, which wins over
    that environment variable (set to the system's bundle on this machine).
    """
    servers = microsoft_emulator_servers
    emulator = servers.emulator
    emulator.reset()
    emulator.authorize_base_url = None
    emulator.register_client(MICROSOFT_TEST_CLIENT_ID, MICROSOFT_TEST_CLIENT_SECRET)
    emulator.add_user(MICROSOFT_TEST_USER, "Alice Smith")
    running = RunningMicrosoftEmulator(
        identity_url=servers.identity.url,
        graph_url=servers.graph.url,
        emulator=emulator,
        ca_bundle=servers.ca_bundle,
    )
    settings.MICROSOFT_CLIENT_ID = MICROSOFT_TEST_CLIENT_ID
    settings.MICROSOFT_CLIENT_SECRET = MICROSOFT_TEST_CLIENT_SECRET
    settings.MICROSOFT_AUTHORITY = running.authority
    settings.MICROSOFT_GRAPH_BASE_URL = running.graph_base_url
    settings.MICROSOFT_CA_BUNDLE = str(servers.ca_bundle)
    yield running
    # Also releases any request still hanging in an injected "timeout" fault.
    emulator.reset()
