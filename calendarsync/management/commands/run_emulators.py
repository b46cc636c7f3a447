"""Serve the local Google emulator for development and demos: `manage.py run_emulators`."""

from __future__ import annotations

import datetime as dt
import signal
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from calendarsync.emulators import exchange_demo
from calendarsync.emulators.google import GoogleEmulator
from calendarsync.emulators.microsoft_demo import DEMO_USER as MICROSOFT_DEMO_USER
from calendarsync.emulators.microsoft_demo import LOCAL_CLIENT_ID as MICROSOFT_CLIENT_ID
from calendarsync.emulators.microsoft_demo import LOCAL_CLIENT_SECRET as MICROSOFT_CLIENT_SECRET
from calendarsync.emulators.microsoft_demo import start_microsoft_emulator
from calendarsync.emulators.server import EmulatorServer

DEMO_USER = "demo.google@example.com"
TEAM_CALENDAR_ID = "team-calendar@group.calendar.google.com"
LOCAL_CLIENT_ID = "calsync-local-client"
LOCAL_CLIENT_SECRET = "calsync-local-secret"  # noqa: S105 - a fixed credential of the local emulator


def seeded_google_emulator(client_id: str, client_secret: str) -> GoogleEmulator:
    """An emulator with the demo user, a team calendar and two events to sync."""
    emulator = GoogleEmulator()
    emulator.register_client(client_id, client_secret)
    emulator.add_user(DEMO_USER)
    emulator.add_calendar(DEMO_USER, TEAM_CALENDAR_ID, "Team calendar")
    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    emulator.user_create_event(
        DEMO_USER,
        {
            "summary": "Dentist",
            "visibility": "private",
            "start": {"dateTime": f"{tomorrow}T08:00:00Z"},
            "end": {"dateTime": f"{tomorrow}T09:00:00Z"},
        },
    )
    emulator.user_create_event(
        DEMO_USER,
        {
            "summary": "Team stand-up",
            "location": "Room 1",
            "start": {"dateTime": f"{tomorrow}T09:30:00", "timeZone": "Europe/Berlin"},
            "end": {"dateTime": f"{tomorrow}T09:45:00", "timeZone": "Europe/Berlin"},
            "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=8"],
        },
        calendar_id=TEAM_CALENDAR_ID,
    )
    return emulator


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # One stop request is enough: `make run`'s Ctrl-C reaches us, then run_stack's SIGTERM follows,
    # and a second KeyboardInterrupt during shutdown would only print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Serve the Google OAuth + Calendar API emulator on loopback until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--google-port", type=int, default=8701, help="port of the Google emulator")
        parser.add_argument(
            "--microsoft-port", type=int, default=8702, help="port of the Microsoft Graph emulator"
        )
        parser.add_argument(
            "--microsoft-identity-port",
            type=int,
            default=8703,
            help="HTTPS port of the Microsoft sign-in emulator",
        )
        parser.add_argument(
            "--exchange-port",
            type=int,
            default=exchange_demo.DEFAULT_PORT,
            help="port of the Exchange (EWS) emulator",
        )
        parser.add_argument(
            "--host", default="127.0.0.1", help="interface to listen on (loopback by default)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        client_id = str(getattr(settings, "GOOGLE_CLIENT_ID", "") or LOCAL_CLIENT_ID)
        client_secret = str(getattr(settings, "GOOGLE_CLIENT_SECRET", "") or LOCAL_CLIENT_SECRET)
        emulator = seeded_google_emulator(client_id, client_secret)
        server = EmulatorServer(emulator, host=options["host"], port=options["google_port"])
        server.start()
        base = server.url
        self.stdout.write(f"Google emulator at {base}/ (demo user {DEMO_USER}); Ctrl-C to stop.")
        self.stdout.write("Point the app at it with:")
        for name, value in (
            ("GOOGLE_CLIENT_ID", client_id),
            ("GOOGLE_CLIENT_SECRET", client_secret),
            ("GOOGLE_AUTH_URI", f"{base}/o/oauth2/auth"),
            ("GOOGLE_TOKEN_URI", f"{base}/token"),
            ("GOOGLE_REVOKE_URI", f"{base}/revoke"),
            ("GOOGLE_API_BASE_URL", f"{base}/"),
            ("GOOGLE_BATCH_URI", f"{base}/batch/calendar/v3"),
            ("OAUTHLIB_INSECURE_TRANSPORT", "1"),
        ):
            self.stdout.write(f"export {name}={value}")
        ms_client_id = str(getattr(settings, "MICROSOFT_CLIENT_ID", "") or MICROSOFT_CLIENT_ID)
        ms_client_secret = str(getattr(settings, "MICROSOFT_CLIENT_SECRET", "") or MICROSOFT_CLIENT_SECRET)
        microsoft = start_microsoft_emulator(
            client_id=ms_client_id,
            client_secret=ms_client_secret,
            host=options["host"],
            graph_port=options["microsoft_port"],
            identity_port=options["microsoft_identity_port"],
            var_dir=settings.VAR_DIR,
        )
        self.stdout.write(
            f"Microsoft 365 emulator at {microsoft.graph.url}/ (Graph), {microsoft.identity.url}/ (sign-in, "
            f"HTTPS with the test CA in {microsoft.ca_file}); demo user {MICROSOFT_DEMO_USER}."
        )
        for name, value in microsoft.settings(ms_client_id, ms_client_secret).items():
            self.stdout.write(f"export {name}={value}")
        exchange = exchange_demo.start_exchange_emulator(
            options["host"], options["exchange_port"], var_dir=settings.VAR_DIR
        )
        self.stdout.write(
            f"Exchange (EWS) emulator at {exchange.url}/ (Exchange Server 2019, NTLM and Basic); connect with "
            f"server URL {exchange_demo.server_url(exchange)}, e-mail {exchange_demo.DEMO_USER}, password "
            f"{exchange_demo.DEMO_PASSWORD} (two-factor: refused) or app password {exchange_demo.DEMO_APP_PASSWORD}."
        )
        self.stdout.flush()
        # Process managers stop us with SIGTERM: shut down as cleanly as on Ctrl-C.
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            server.serve_until_interrupted()
        finally:
            microsoft.stop()
            exchange.stop()
        self.stdout.write("Google and Microsoft 365 emulators stopped.")
