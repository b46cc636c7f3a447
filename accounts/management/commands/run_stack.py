"""`make run`: web server, Celery worker with beat, and the provider emulators, in one terminal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Run the web server, a Celery worker with embedded beat, and the local provider emulators."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--emulator-port", type=int, default=8701, help="Google emulator")
        parser.add_argument("--microsoft-port", type=int, default=8702, help="Graph emulator")
        parser.add_argument("--microsoft-identity-port", type=int, default=8703, help="Microsoft sign-in")
        parser.add_argument("--exchange-port", type=int, default=8704, help="EWS emulator")

    def handle(self, *args: Any, **options: Any) -> None:
        python = sys.executable
        manage = str(settings.BASE_DIR / "manage.py")
        commands: dict[str, list[str]] = {
            "emulators": [
                python, manage, "run_emulators",
                "--google-port", str(options["emulator_port"]),
                "--microsoft-port", str(options["microsoft_port"]),
                "--microsoft-identity-port", str(options["microsoft_identity_port"]),
                "--exchange-port", str(options["exchange_port"]),
            ],
            "worker": [
                python, "-m", "celery", "-A", "calsync_project", "worker", "--beat",
                "--loglevel", "INFO", "--concurrency", "2",
                "--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME,
            ],
            "web": [python, manage, "runserver", f"127.0.0.1:{options['port']}", "--noreload"],
        }  # fmt: skip
        (settings.VAR_DIR / "broker" / "queue").mkdir(parents=True, exist_ok=True)
        (settings.VAR_DIR / "broker" / "processed").mkdir(parents=True, exist_ok=True)
        (settings.VAR_DIR / "broker" / "control").mkdir(parents=True, exist_ok=True)
        processes = {name: subprocess.Popen(argv, env=os.environ.copy()) for name, argv in commands.items()}  # noqa: S603
        self.stdout.write(
            self.style.SUCCESS(
                f"\nCalSync is running at http://127.0.0.1:{options['port']}/\n"
                "Provider emulators (act as the user inside the calendar):\n"
                f"  Google         http://127.0.0.1:{options['emulator_port']}/  (demo.google@example.com)\n"
                f"  Microsoft 365  http://127.0.0.1:{options['microsoft_port']}/  (demo.microsoft@example.com)\n"
                f"  Exchange       http://127.0.0.1:{options['exchange_port']}/  (demo.exchange@example.com,"
                " app password app-password-1234)\n"
                "Demo logins (password demo-password-1): alice@demo.calsync.test, bob@demo.calsync.test, "
                "admin@demo.calsync.test (Django admin at /admin/)\n"
                "Press Ctrl-C to stop.\n"
            )
        )
        stopping = False

        def stop(*_: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                for name, process in processes.items():
                    if process.poll() is not None:
                        self.stderr.write(f"{name} exited with code {process.returncode}; stopping the rest.")
                        stopping = True
                time.sleep(0.5)
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.terminate()
            for process in processes.values():
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
