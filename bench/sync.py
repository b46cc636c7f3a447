"""What the calendar sync costs, through the real Google client library against the emulator.

Run ``.venv/bin/python bench/sync.py`` (``--accounts N`` to change the 1,000). Each database
(SQLite, and PostgreSQL at ``postgres://postgres@127.0.0.1:5432/calsync_bench_sync`` when
reachable; created and dropped here) is measured in its own subprocess with ``DATABASE_URL``
set. That worker starts the Google emulator in a process of its own (so its CPU time is not
counted against the sync), migrates an empty database, connects N accounts with a started sync,
and measures through ``calendarsync.sync.runner.run_account_sync`` (claim, engine, record), the
path the Celery task takes:

* ``http_requests_per_no_change_sync``: requests the calendar API and token endpoint received
  per account during a pass where nothing changed (goal: exactly 1).
* ``sql_queries_per_no_change_sync``: max and mean over that pass (goal: <= 5, constant).
* ``push_200``: one account with 200 changed activities: the batch round trips it takes (goal:
  <= ceil(200/50) = 4), all HTTP requests (the batches, the listing, and the second listing a
  run that created events makes so change feeds that hide create-then-delete report a later
  deletion), the sync's time, and the time of the bare client-library calls that work needs
  (build the service, list with the sync token, insert the 200 events in batches of 50),
  median of three runs; ``engine_overhead`` is their ratio (goal: <= 1.5).
* ``no_change_syncs_per_second``: one process syncing every account in turn, nothing changed
  (goal: >= 100).

The last line printed is a JSON object with every figure, per database. What the three sync
benchmarks share is in ``bench/common.py``; this file keeps the Google emulator, account
connection and bare-client baseline.

Microsoft Exchange (exchangelib over EWS): the same figures by ``bench/sync_exchange.py``.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project root, for `bench.common`

from bench import common
from bench.common import changed_activities

CLIENT_ID = "bench-client"
CLIENT_SECRET = "bench-secret"  # noqa: S105 - a fixed credential of the local emulator
CONFIG = common.BenchConfig(
    script=Path(__file__).resolve(),
    postgres_db="calsync_bench_sync",
    temp_prefix="calsync-bench-",
    batch_size=50,
    round_trip_name="batch round trips",
    bare_name="bare client calls",
)
EMULATOR_CODE = (
    "import sys\n"
    "from calendarsync.emulators.google import GoogleEmulator\n"
    "from calendarsync.emulators.server import EmulatorServer\n"
    "EmulatorServer(GoogleEmulator(), port=int(sys.argv[1])).serve_until_interrupted()\n"
)


def worker(accounts: int) -> None:
    """Inside one database's process: the Google emulator, Django, then every figure."""
    port = common.free_port()
    emulator = common.Emulator(
        f"http://127.0.0.1:{port}", not_counted=frozenset({"auth"}), batch_part="events.insert"
    )
    with common.emulator_process(EMULATOR_CODE, [str(port)], emulator):
        os.environ.update(
            {
                "GOOGLE_CLIENT_ID": CLIENT_ID,
                "GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
                "GOOGLE_TOKEN_URI": f"{emulator.url}/token",
                "GOOGLE_API_BASE_URL": f"{emulator.url}/",
                "GOOGLE_BATCH_URI": f"{emulator.url}/batch/calendar/v3",
            }
        )
        common.setup_django()
        emulator.post("clients", {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
        common.report(
            common.measure_all(
                emulator,
                accounts,
                connect=lambda company, count, prefix: connect_accounts(emulator, company, count, prefix),
                bare_push=time_bare_client_push,
                round_trip_counter="batch",
            )
        )


def connect_accounts(emulator: common.Emulator, company: Any, count: int, prefix: str) -> list[int]:
    """``count`` users, each with a Google account whose sync has started; their account ids."""
    from django.conf import settings

    from calendarsync.models import Provider

    scopes = list(settings.GOOGLE_SCOPES)
    expiry = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()

    def link(email: str) -> tuple[dict[str, Any], str, str]:
        emulator.post("users", {"email": email})
        issued = emulator.post("tokens", {"email": email, "scopes": scopes, "client_id": CLIENT_ID})
        credentials = {
            "access_token": issued["access_token"],
            "refresh_token": issued["refresh_token"],
            "expiry": expiry,
            "scopes": scopes,
        }
        return credentials, email, email

    return common.connect_accounts(company, count, prefix, Provider.GOOGLE, link)


def time_bare_client_push(account_id: int) -> float:
    """The client-library calls the same push needs, with their request bodies made beforehand."""
    from calendarsync.models import CalendarAccount
    from calendarsync.providers.google.adapter import BATCH_SIZE
    from calendarsync.providers.google.client import GoogleClient
    from calendarsync.providers.google.mapping import event_body, event_id_for_key
    from calendarsync.sync.context import idempotency_key, tag_for
    from calendarsync.sync.mapping import crm_fields, event_data

    account = CalendarAccount.objects.select_related("user").get(pk=account_id)
    tz = account.user.tzinfo
    calendar_id = account.email
    tokens = dict(account.credentials or {})
    activities = changed_activities(account_id)
    bodies = [
        {
            **event_body(event_data(crm_fields(a, [], frozenset()), tz=tz, tag=tag_for(a), details="")),
            "id": event_id_for_key(idempotency_key(a, account)),
        }
        for a in activities
    ]
    first = GoogleClient(tokens)
    sync_token = first.execute(
        first.events.list(calendarId=calendar_id, singleEvents=True, showDeleted=True)
    )["nextSyncToken"]

    def ignore(*_args: Any) -> None:
        return None

    started = time.perf_counter()
    client = GoogleClient(tokens)
    events = client.events  # the method resource, built once
    client.execute(
        events.list(calendarId=calendar_id, syncToken=sync_token, singleEvents=True, showDeleted=True)
    )
    for offset in range(0, len(bodies), BATCH_SIZE):
        batch = client.new_batch()
        for body in bodies[offset : offset + BATCH_SIZE]:
            batch.add(events.insert(calendarId=calendar_id, body=body), callback=ignore)
        client.execute_batch(batch)
    return (time.perf_counter() - started) * 1000


if __name__ == "__main__":
    common.main(CONFIG, worker)
