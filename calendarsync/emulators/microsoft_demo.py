"""The Microsoft 365 emulator as `manage.py run_emulators` serves it: seeded, on fixed ports, with a CA file."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from calendarsync.emulators.microsoft import MicrosoftEmulator
from calendarsync.emulators.server import EmulatorServer
from calendarsync.emulators.tls import TestAuthority, TlsEmulatorServer

DEMO_USER = "demo.microsoft@example.com"
LOCAL_CLIENT_ID = "calsync-local-microsoft-client"
LOCAL_CLIENT_SECRET = "calsync-local-microsoft-secret"  # noqa: S105 - a fixed credential of the local emulator
CA_FILE_NAME = "microsoft-emulator-ca.pem"


def seeded_microsoft_emulator(client_id: str, client_secret: str) -> MicrosoftEmulator:
    """An emulator with the demo user, a team calendar and two events to sync."""
    emulator = MicrosoftEmulator()
    emulator.register_client(client_id, client_secret)
    emulator.add_user(DEMO_USER, "Demo User")
    team = emulator.add_calendar(DEMO_USER, None, "Team calendar")
    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    emulator.user_create_event(
        DEMO_USER,
        {
            "subject": "Dentist",
            "sensitivity": "private",
            "start": {"dateTime": f"{tomorrow}T08:00:00", "timeZone": "UTC"},
            "end": {"dateTime": f"{tomorrow}T09:00:00", "timeZone": "UTC"},
        },
    )
    emulator.user_create_event(
        DEMO_USER,
        {
            "subject": "Team stand-up",
            "location": {"displayName": "Room 1"},
            "start": {"dateTime": f"{tomorrow}T09:30:00", "timeZone": "Europe/Berlin"},
            "end": {"dateTime": f"{tomorrow}T09:45:00", "timeZone": "Europe/Berlin"},
            "recurrence": {
                "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [tomorrow.strftime("%A").lower()]},
                "range": {"type": "numbered", "startDate": tomorrow.isoformat(), "numberOfOccurrences": 8},
            },
        },
        calendar_id=team,
    )
    return emulator


@dataclass
class RunningMicrosoftEmulator:
    identity: TlsEmulatorServer
    graph: EmulatorServer
    emulator: MicrosoftEmulator
    ca_file: Path

    def settings(self, client_id: str, client_secret: str) -> dict[str, str]:
        """What the app's environment needs to use this emulator."""
        return {
            "MICROSOFT_CLIENT_ID": client_id,
            "MICROSOFT_CLIENT_SECRET": client_secret,
            "MICROSOFT_AUTHORITY": f"{self.identity.url}/common",
            "MICROSOFT_GRAPH_BASE_URL": f"{self.graph.url}/v1.0/",
            "MICROSOFT_CA_BUNDLE": str(self.ca_file),
        }

    def stop(self) -> None:
        self.identity.stop()
        self.graph.stop()


def start_microsoft_emulator(
    *, client_id: str, client_secret: str, host: str, graph_port: int, identity_port: int, var_dir: Path
) -> RunningMicrosoftEmulator:
    """Serve Graph over HTTP and the identity platform over HTTPS (a fresh test CA, written to var_dir)."""
    emulator = seeded_microsoft_emulator(client_id, client_secret)
    authority = TestAuthority()
    ca_file = authority.write_ca_bundle(var_dir / CA_FILE_NAME)
    identity = TlsEmulatorServer(emulator, authority.server_context(), host=host, port=identity_port).start()
    graph = EmulatorServer(emulator, host=host, port=graph_port).start()
    # A person's browser does not trust the test CA: discovery sends it to the same sign-in page
    # over plain HTTP. msal itself still only talks HTTPS (discovery and token endpoint).
    emulator.authorize_base_url = graph.url
    return RunningMicrosoftEmulator(identity=identity, graph=graph, emulator=emulator, ca_file=ca_file)
