"""The Exchange emulator as `manage.py run_emulators` serves it: a seeded two-factor demo mailbox.

It signs in as an Exchange Server 2019 on-premises with Windows authentication and Basic on:
it offers NTLM and Basic, so the connect page's probe picks NTLM (the stored account then signs
in with NTLM on every sync); "Basic" under Advanced works too. NTLM needs the process's
``NTLM_USER_FILE``: the emulator keeps it under the var dir (``exchange_auth``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from calendarsync.emulators.exchange import EWS_PATH, EXCHANGE_2019, ExchangeEmulator
from calendarsync.emulators.exchange_auth import AUTH_METHODS
from calendarsync.emulators.server import EmulatorServer

DEMO_USER = "demo.exchange@example.com"
DEMO_PASSWORD = "exchange-password"  # noqa: S105 - a fixed credential of the local emulator
DEMO_APP_PASSWORD = "app-password-1234"  # noqa: S105 - a fixed credential of the local emulator
DEFAULT_PORT = 8704


def seeded_exchange_emulator(var_dir: Path | None = None) -> ExchangeEmulator:
    """The demo mailbox (two-factor sign-in: only the app password works) with events to sync."""
    emulator = ExchangeEmulator(auth_methods=AUTH_METHODS, server_version=EXCHANGE_2019, var_dir=var_dir)
    emulator.add_user(DEMO_USER, DEMO_PASSWORD, two_factor=True, app_password=DEMO_APP_PASSWORD)
    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    emulator.user_create_event(
        DEMO_USER,
        {
            "subject": "Quarterly planning",
            "location": "Board room",
            "start": dt.datetime.combine(tomorrow, dt.time(14, 0)),
            "end": dt.datetime.combine(tomorrow, dt.time(15, 30)),
            "time_zone": "Europe/Berlin",
        },
    )
    emulator.user_create_event(
        DEMO_USER,
        {
            "subject": "Team sync",
            "start": dt.datetime.combine(tomorrow, dt.time(9, 0)),
            "end": dt.datetime.combine(tomorrow, dt.time(9, 15)),
            "time_zone": "Europe/Berlin",
            "recurrence": {"pattern": "weekly", "count": 8},
        },
    )
    return emulator


def start_exchange_emulator(
    host: str = "127.0.0.1", port: int = DEFAULT_PORT, var_dir: Path | None = None
) -> EmulatorServer:
    return EmulatorServer(seeded_exchange_emulator(var_dir), host=host, port=port).start()


def server_url(server: EmulatorServer) -> str:
    """What to type into "Server URL" on the connect page."""
    return f"{server.url}{EWS_PATH}"
