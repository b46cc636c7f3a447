"""Fixtures for the Exchange (EWS) emulator, served on loopback; imported by the conftest files that need it.

One server for the whole run (``exchange_emulator_server``); ``exchange_emulator`` resets its state
for every test and adds the test mailbox. The emulator offers NTLM and Basic and says it is
Exchange Server 2016 (the defaults a test may change with ``set_auth_methods`` and
``set_server_version``; the reset after each test restores them).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from calendarsync.emulators.exchange import EWS_PATH, ExchangeEmulator
from calendarsync.emulators.server import EmulatorServer

EXCHANGE_TEST_USER = "erin@example.com"
EXCHANGE_TEST_PASSWORD = "erin-password-1"
EXCHANGE_TWO_FACTOR_USER = "tom@example.com"
EXCHANGE_TWO_FACTOR_PASSWORD = "tom-password-1"
EXCHANGE_APP_PASSWORD = "tomapppassword42"


@dataclass(frozen=True)
class RunningExchangeEmulator:
    url: str
    emulator: ExchangeEmulator
    user: str = EXCHANGE_TEST_USER
    password: str = EXCHANGE_TEST_PASSWORD

    @property
    def server_url(self) -> str:
        """The EWS endpoint, as a user types it into the connect form."""
        return f"{self.url}{EWS_PATH}"

    def credentials(
        self,
        email: str | None = None,
        password: str | None = None,
        *,
        auth_type: str | None = None,
        version: str | None = None,
    ) -> dict[str, str]:
        """The stored credentials dict of an Exchange account (C7: encrypted by the model field).

        Without ``auth_type`` and ``version``, as stored before NTLM support (Basic, Exchange 2016)."""
        stored = {
            "email": email or self.user,
            "password": password or self.password,
            "server_url": self.server_url,
        }
        if auth_type is not None:
            stored["auth_type"] = auth_type
        if version is not None:
            stored["version"] = version
        return stored

    def connected_credentials(self, email: str | None = None, password: str | None = None) -> dict[str, str]:
        """What a connect with the automatic sign-in stores against this emulator: NTLM when it
        offers NTLM, and the build it reports."""
        emulator = self.emulator
        return self.credentials(
            email,
            password,
            auth_type="ntlm" if "ntlm" in emulator.auth_methods else "basic",
            version=emulator.server_version.build,
        )


@pytest.fixture(scope="session")
def exchange_emulator_server() -> Iterator[tuple[EmulatorServer, ExchangeEmulator]]:
    """One server for the whole run; `exchange_emulator` resets its state for every test."""
    emulator = ExchangeEmulator()
    with EmulatorServer(emulator) as server:
        yield server, emulator


@pytest.fixture
def exchange_emulator(
    exchange_emulator_server: tuple[EmulatorServer, ExchangeEmulator],
) -> Iterator[RunningExchangeEmulator]:
    """The Exchange emulator with the mailbox erin@example.com (password erin-password-1)."""
    server, emulator = exchange_emulator_server
    emulator.reset()
    emulator.add_user(EXCHANGE_TEST_USER, EXCHANGE_TEST_PASSWORD)
    yield RunningExchangeEmulator(url=server.url, emulator=emulator)
    # Also releases any request still hanging in an injected "timeout" fault.
    emulator.reset()
