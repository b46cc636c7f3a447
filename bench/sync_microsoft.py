"""``bench/sync.py``'s figures for Microsoft 365: msal + requests against the Graph emulator.

Run ``.venv/bin/python bench/sync_microsoft.py`` (``--accounts N`` to change the 1,000). Same
method and figures as ``bench/sync.py`` (see there), through the Microsoft adapter: the emulator
(identity over HTTPS with its test CA, Graph over HTTP) runs in a process of its own, each database
in a worker subprocess, and every sync goes through ``calendarsync.sync.runner.run_account_sync``.

* ``http_requests_per_no_change_sync``: requests Graph and the token endpoint received per
  account during a pass where nothing changed (goal: exactly 1, the delta call).
* ``sql_queries_per_no_change_sync``: max and mean over that pass (goal: <= 5, constant).
* ``push_200``: one account with 200 changed activities: JSON batch round trips (goal:
  <= ceil(200/20) = 10, Graph's batch limit), all HTTP requests (batch parts counted once, by
  their batch), the sync's time and the time of the bare HTTP calls that work needs (the delta
  call and the 10 batches, bodies made beforehand), median of three; ``engine_overhead`` is
  their ratio (goal: <= 1.5).
* ``no_change_syncs_per_second``: one process syncing every account in turn (goal: >= 100).

The last line printed is a JSON object with every figure, per database. The shared scaffolding is
in ``bench/common.py``.
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

CLIENT_ID = "bench-microsoft-client"
CLIENT_SECRET = "bench-microsoft-secret"  # noqa: S105 - a fixed credential of the local emulator
SCOPES = ["Calendars.ReadWrite", "User.Read"]
CONFIG = common.BenchConfig(
    script=Path(__file__).resolve(),
    postgres_db="calsync_bench_sync_microsoft",
    temp_prefix="calsync-bench-ms-",
    batch_size=20,  # Graph's JSON batch limit
    round_trip_name="batch round trips",
    bare_name="bare HTTP calls",
    label="Microsoft 365",
    provider="microsoft",
)
EMULATOR_CODE = (
    "import sys\n"
    "from pathlib import Path\n"
    "from calendarsync.emulators.microsoft_demo import start_microsoft_emulator\n"
    "running = start_microsoft_emulator(client_id=sys.argv[4], client_secret=sys.argv[5], host='127.0.0.1',\n"
    "    graph_port=int(sys.argv[1]), identity_port=int(sys.argv[2]), var_dir=Path(sys.argv[3]))\n"
    "running.graph.serve_until_interrupted()\n"
)


def worker(accounts: int) -> None:
    """Inside one database's process: the Microsoft 365 emulator, Django, then every figure."""
    var_dir = Path(os.environ["CALSYNC_VAR_DIR"])
    graph_port, identity_port = common.free_port(), common.free_port()
    # "authorize" is not an HTTP request to Graph or the token endpoint; the control endpoints are Graph's.
    emulator = common.Emulator(
        f"http://127.0.0.1:{graph_port}", not_counted=frozenset({"authorize"}), batch_part="events.create"
    )
    args = [str(graph_port), str(identity_port), str(var_dir), CLIENT_ID, CLIENT_SECRET]
    with common.emulator_process(EMULATOR_CODE, args, emulator):
        os.environ.update(
            {
                "MICROSOFT_CLIENT_ID": CLIENT_ID,
                "MICROSOFT_CLIENT_SECRET": CLIENT_SECRET,
                "MICROSOFT_AUTHORITY": f"https://127.0.0.1:{identity_port}/common",
                "MICROSOFT_GRAPH_BASE_URL": f"{emulator.url}/v1.0/",
                "MICROSOFT_CA_BUNDLE": str(var_dir / "microsoft-emulator-ca.pem"),
            }
        )
        common.setup_django()
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
    """``count`` users, each with a Microsoft 365 account whose sync has started; their account ids."""
    from calendarsync.models import Provider

    expiry = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()

    def link(email: str) -> tuple[dict[str, Any], str, str]:
        emulator.post("users", {"email": email})
        calendar_id = next(
            c["id"] for c in emulator.get("calendars", email=email)["value"] if c["is_default"]
        )
        issued = emulator.post("tokens", {"email": email, "scopes": SCOPES, "client_id": CLIENT_ID})
        credentials = {
            "access_token": issued["access_token"],
            "refresh_token": issued["refresh_token"],
            "expiry": expiry,
            "scopes": SCOPES,
        }
        return credentials, calendar_id, "Calendar"

    return common.connect_accounts(company, count, prefix, Provider.MICROSOFT, link)


def time_bare_client_push(account_id: int) -> float:
    """The HTTP calls the same push needs (one session, bodies made beforehand), timed alone."""
    import requests

    from calendarsync.models import CalendarAccount
    from calendarsync.providers.microsoft.adapter import BATCH_SIZE
    from calendarsync.providers.microsoft.client import graph_path
    from calendarsync.providers.microsoft.common import graph_base_url
    from calendarsync.providers.microsoft.mapping import event_body, transaction_id_for
    from calendarsync.sync.context import idempotency_key, tag_for
    from calendarsync.sync.mapping import crm_fields, event_data

    account = CalendarAccount.objects.select_related("user").prefetch_related("calendars").get(pk=account_id)
    tz = account.user.tzinfo
    calendar_id = account.calendars.get().external_id
    tokens = dict(account.credentials or {})
    activities = changed_activities(account_id)
    events = [
        event_data(crm_fields(a, [], frozenset()), tz=tz, tag=tag_for(a), details="") for a in activities
    ]
    requests_ = [
        {
            "id": str(n),
            "method": "POST",
            "url": "/" + graph_path("me", "calendars", calendar_id, "events"),
            "headers": {"Content-Type": "application/json"},
            "body": {
                **event_body(event),
                "transactionId": transaction_id_for(idempotency_key(a, account), event.tag),
            },
        }
        for n, (a, event) in enumerate(zip(activities, events, strict=True))
    ]
    base = graph_base_url()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    now = dt.datetime.now(dt.UTC)
    window = {
        "startDateTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endDateTime": (now + dt.timedelta(days=90)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    with requests.Session() as first:
        delta_link = first.get(
            base + graph_path("me", "calendars", calendar_id, "calendarView", "delta", query=window),
            headers=headers,
            timeout=30,
        ).json()["@odata.deltaLink"]

    started = time.perf_counter()
    with requests.Session() as session:
        session.get(delta_link, headers=headers, timeout=30).raise_for_status()
        for offset in range(0, len(requests_), BATCH_SIZE):
            session.post(
                base + "$batch",
                json={"requests": requests_[offset : offset + BATCH_SIZE]},
                headers=headers,
                timeout=30,
            ).raise_for_status()
    return (time.perf_counter() - started) * 1000


if __name__ == "__main__":
    common.main(CONFIG, worker)
